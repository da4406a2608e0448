"""How a server tells the app that its graceful stop began: ``environ[STOPPING]``.

A server that stops gracefully puts, in every request's environ, an object
whose ``stopping`` attribute turns true the moment its stop begins (SIGTERM,
a gunicorn reload, ``--max-requests``) and stays true. ``microroute run`` and
``gunicorn -k microroute.gunicorn.Worker`` give their
:class:`~microroute.server.Connections`. The app reads it per request —
``/readyz`` answers 503 from then on (:mod:`microroute.health`) — and so may
anything else that must know, without importing the server:

>>> stop = environ.get(STOPPING)                         # doctest: +SKIP
>>> if stop is not None and stop.stopping: ...           # doctest: +SKIP
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["STOPPING", "Stopping"]

#: The environ key of the server's :class:`Stopping`.
STOPPING = "microroute.stopping"


class Stopping(Protocol):
    """What a server offers under :data:`STOPPING`."""

    #: True from the moment the server's graceful stop began.
    stopping: bool
