"""Middleware: functions that wrap routing, ``mw(request, call_next) -> response``.

::

    def timing(request, call_next):
        started = time.perf_counter()
        response = call_next(request)          # routing, the handler, errors
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    app.use(timing)

Middleware run in the order added, the first added outermost. ``call_next``
always returns a :class:`~microroute.Response` — for a 404, a 405 or a
handler's 500 too — so headers a middleware adds reach error responses. A
middleware may also answer by itself (short-circuit) with any value a handler
may return. The chain is built once, when middleware is added
(:func:`chain`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Iterable
from typing import Any

from werkzeug.wrappers import Response as _WerkzeugResponse

from .errorpages import HANDLER_ERRORS, ErrorPages
from .replies import coerce
from .requests import Request
from .responses import Reply, Response, standard_status

__all__ = [
    "CallNext",
    "Middleware",
    "chain",
    "check_middleware",
    "reply_to_response",
    "response_to_reply",
]

CallNext = Callable[[Request], _WerkzeugResponse]
Middleware = Callable[[Request, CallNext], Any]


def reply_to_response(reply: Reply) -> _WerkzeugResponse:
    """Wrap a WSGI reply as a Response, for middleware to inspect and change."""
    status, headers, body = reply
    response = Response(body, status=status, headers=headers, direct_passthrough=True)
    if not any(name.lower() == "content-type" for name, _ in headers):
        # werkzeug adds a default Content-Type; a 204 or a redirect has none.
        del response.headers["Content-Type"]
    return response


def response_to_reply(response: _WerkzeugResponse, environ: dict[str, Any]) -> Reply:
    body: Iterable[bytes]
    body, status, headers = response.get_wsgi_response(environ)
    return standard_status(status), list(headers), body


def describe_middleware(mw: Middleware) -> str:
    return f"middleware {getattr(mw, '__qualname__', None) or mw!r}"


def check_middleware(mw: Middleware, where: str = "") -> None:
    """Fail at ``app.use()``, not at the first request, for a wrong signature."""
    name = where or describe_middleware(mw)
    if not callable(mw):
        raise TypeError(f"{name} is not callable; middleware is mw(request, call_next)")
    try:
        inspect.signature(mw).bind(None, None)
    except TypeError:
        raise TypeError(f"{name} must take two arguments: (request, call_next)") from None
    except ValueError:
        pass  # no signature to read (a builtin): trust it


def chain(
    middleware: Iterable[Middleware],
    core: CallNext,
    errors: ErrorPages,
    outside: Collection[str] = (),
) -> CallNext:
    """*core* wrapped in each middleware, the first one outermost.

    A request for one of the paths *outside* goes to *core* directly: an
    operational endpoint (metrics) that middleware must not lock out.
    """
    call_next = core
    for mw in reversed(list(middleware)):
        call_next = _layer(mw, call_next, errors)
    if outside:
        return _around(call_next, core, frozenset(outside))
    return call_next


def _around(call_next: CallNext, core: CallNext, paths: frozenset[str]) -> CallNext:
    def route(request: Request) -> _WerkzeugResponse:
        if request.environ.get("PATH_INFO") in paths:
            return core(request)
        return call_next(request)

    return route


def _layer(mw: Middleware, call_next: CallNext, errors: ErrorPages) -> CallNext:
    where = describe_middleware(mw)

    def layer(request: Request) -> _WerkzeugResponse:
        inner: list[_WerkzeugResponse] = []

        def tracked(given: Request) -> _WerkzeugResponse:
            response = call_next(given)
            inner.append(response)
            return response

        try:
            result = mw(request, tracked)
            if isinstance(result, _WerkzeugResponse):
                return result
            return reply_to_response(coerce(result, where, request.environ))
        except HANDLER_ERRORS as exc:
            # The middleware failed after call_next: the response it got
            # (a primed stream, say) is never sent, so close it now and
            # let the generator's finally: run.
            for response in inner:
                response.close()
            return reply_to_response(errors.render(exc, request.environ, where))

    return layer
