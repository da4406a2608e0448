"""microroute: Next.js-style route handlers for WSGI.

>>> from microroute import App, route
>>> @route.get("/hello/[name]")
... def hello(name):
...     return {"message": f"Hello, {name}!"}
>>> app = App(route)

Public names are loaded on first use (PEP 562), so ``import microroute``
imports nothing heavy. That lets ``microroute run`` monkey-patch the standard
library with gevent before werkzeug, ssl or sockets are imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__ as __version__

_EXPORTS = {
    "App": "app",
    "Context": "handlers",
    "ControlFlow": "errors",
    "Event": "sse",
    "EventStream": "sse",
    "HTTPError": "errors",
    "Request": "requests",
    "RequestValidationError": "errors",
    "Response": "responses",
    "Router": "routing",
    "CacheKeyError": "datacache",
    "StartupError": "errors",
    "ValidationError": "errors",
    "abort": "errors",
    "after": "after_response",
    "cached": "datacache",
    "cookies": "context",
    "cors": "cors",
    "headers": "context",
    "session": "context",
    "not_found": "errors",
    "on_disconnect": "context",
    "permanent_redirect": "errors",
    "redirect": "errors",
    "request_id": "requestids",
    "route": "routing",
}

__all__ = [
    "App",
    "CacheKeyError",
    "Context",
    "ControlFlow",
    "Event",
    "EventStream",
    "HTTPError",
    "Request",
    "RequestValidationError",
    "Response",
    "Router",
    "StartupError",
    "ValidationError",
    "abort",
    "after",
    "cached",
    "cookies",
    "cors",
    "headers",
    "not_found",
    "on_disconnect",
    "permanent_redirect",
    "redirect",
    "request_id",
    "route",
    "session",
]

if TYPE_CHECKING:
    from .after_response import after
    from .app import App
    from .context import cookies, headers, on_disconnect, session
    from .cors import cors
    from .datacache import CacheKeyError, cached
    from .errors import (
        ControlFlow,
        HTTPError,
        RequestValidationError,
        StartupError,
        ValidationError,
        abort,
        not_found,
        permanent_redirect,
        redirect,
    )
    from .handlers import Context
    from .requestids import request_id
    from .requests import Request
    from .responses import Response
    from .routing import Router, route
    from .sse import Event, EventStream


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'microroute' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
