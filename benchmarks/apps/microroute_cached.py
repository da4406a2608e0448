"""microroute with decorators and its defaults: static GETs answered from the cache.

The same router as :mod:`microroute_decorators`, built with ``App``'s defaults,
so once the response cache exists a warm ``/hello`` is a cache HIT (the issue's
">= 0.8x raw WSGI" target). Until then it is the handler path again.
"""

from __future__ import annotations

from microroute import App

from .microroute_decorators import api

app = App(api)
