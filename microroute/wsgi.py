"""A ready WSGI app for servers that import one: ``gunicorn -k gevent microroute.wsgi:app``.

It discovers the routes of the ``app/`` folder named by the ``MICROROUTE_APP``
environment variable (default ``./app``, relative to the server's working
folder), exactly as ``App(app_dir=...)`` does, with the options of the
``microroute.toml`` beside that folder (:mod:`microroute.project`)::

    MICROROUTE_APP=/srv/blog/app gunicorn -k gevent -w 4 microroute.wsgi:app

Under gunicorn's gevent worker the process is monkey-patched before this
module is imported, as ``microroute run`` does.
"""

from __future__ import annotations

import os
from pathlib import Path

from microroute.project import discovered_app

__all__ = ["app"]

#: The discovered application. A start-up error (route conflict, import error
#: in a route file) raises here, so the server refuses to boot with it.
app = discovered_app(Path(os.environ.get("MICROROUTE_APP", "app")))
