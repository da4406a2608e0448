"""Error pages: any exception, or a routing miss, rendered as a reply.

Every failure renders as JSON ``{"error": message}``: an ``HTTPError``, a
werkzeug HTTP exception, a control-flow signal (``redirect()``: a Location and
no body; ``abort()``, ``not_found()``), a ``RequestValidationError`` with its
``detail``. Anything else is a 500 logged with its traceback on the
``microroute`` logger (``App(debug=True)`` adds the traceback to the body, or
answers a browser with the debug page: :mod:`microroute.debugpage`).

``app.errorhandler(key)`` registers a function here, found by the exception's
MRO or by status; as in Flask, an exception no handler claims by class is a
500, so ``errorhandler(500)`` catches it too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urljoin

from gevent.timeout import Timeout as _GeventTimeout
from werkzeug.exceptions import HTTPException as _WerkzeugHTTPException
from werkzeug.routing import RequestRedirect
from werkzeug.sansio.utils import get_current_url
from werkzeug.urls import iri_to_uri

from .context import BUILD_MARK, active
from .debugpage import debug_reply
from .errors import ControlFlow, HTTPError, RequestValidationError, status_phrase
from .replies import ReturnValueError, coerce
from .responses import Headers, Reply, error_reply, status_line
from .settings import Settings

__all__ = [
    "HANDLER_ERRORS",
    "PATH_SAFE",
    "ErrorHandler",
    "ErrorPages",
    "current_url",
    "status_of",
]

logger = logging.getLogger("microroute")

WSGIEnviron = dict[str, Any]
ErrorHandler = Callable[[BaseException], Any]

#: What a handler's exception is caught as: ControlFlow is a BaseException, and
#: so is a gevent.Timeout the user's own code started and let escape.
HANDLER_ERRORS = (Exception, ControlFlow, _GeventTimeout)
#: Safe characters for a path echoed back in a Location header.
PATH_SAFE = "/:@!$&'()*+,;=-._~"


class ErrorPages:
    """The error handlers an app registered, and the default rendering of the rest."""

    __slots__ = ("handlers", "settings")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.handlers: dict[type[BaseException] | int, ErrorHandler] = {}

    def routing_error(
        self, status: int, message: str, environ: WSGIEnviron, headers: Headers | None = None
    ) -> Reply:
        """A 400, 404 or 405 from routing: an ``errorhandler(status)`` may answer it."""
        handler = self.handlers.get(status)
        if handler is not None:
            error = HTTPError(status, message, headers)
            return self._custom(handler, error, environ)
        return error_reply(status, message, headers)

    def render(self, exc: BaseException, environ: WSGIEnviron, where: str) -> Reply:
        """Any exception from a handler (or middleware, or a build) as a reply.

        *where* names what raised it, for the log.
        """
        status = status_of(exc)
        if status is None:
            _tell_observers(exc)
        handler = self._find(exc, status)
        if handler is None and status is None and not isinstance(exc, RequestRedirect):
            handler = self.handlers.get(500)
            if handler is not None:
                _log_unhandled(exc, environ, where)
        if handler is not None:
            return self._custom(handler, exc, environ)
        if isinstance(exc, ControlFlow):
            return _control_flow(exc, environ)
        if isinstance(exc, RequestValidationError):
            return error_reply(exc.status, exc.message, exc.headers, detail=exc.detail)
        if isinstance(exc, HTTPError):
            return error_reply(exc.status, exc.message, exc.headers)
        if isinstance(exc, RequestRedirect):
            return status_line(exc.code), [("Location", exc.new_url), ("Content-Length", "0")], []
        if isinstance(exc, _WerkzeugHTTPException):
            code = exc.code or 500
            headers = [h for h in exc.get_headers() if h[0].lower() != "content-type"]
            return error_reply(code, exc.description or status_phrase(code), headers)
        return self._internal(exc, environ, where)

    def _find(self, exc: BaseException, status: int | None) -> ErrorHandler | None:
        if self.handlers:
            for kind in type(exc).__mro__:
                handler = self.handlers.get(kind)
                if handler is not None:
                    return handler
            if status is not None:
                return self.handlers.get(status)
        return None

    def _internal(self, exc: BaseException, environ: WSGIEnviron, where: str) -> Reply:
        _log_unhandled(exc, environ, where)
        if self.settings.debug:  # a browser gets the debug page, an API client JSON
            return debug_reply(exc, environ)
        return error_reply(500, "Internal Server Error")

    def _custom(self, handler: ErrorHandler, exc: BaseException, environ: WSGIEnviron) -> Reply:
        where = f"error handler {getattr(handler, '__qualname__', None) or handler!r}"
        try:
            return coerce(handler(exc), where, environ)
        except (Exception, _GeventTimeout) as failure:
            # An error handler that fails gets the plain 500, not another handler.
            return self._internal(failure, environ, where)
        except ControlFlow as signal:  # abort()/redirect() from the error handler
            return _control_flow(signal, environ)


def _control_flow(signal: ControlFlow, environ: WSGIEnviron) -> Reply:
    """A redirect() (Location, empty body) or an abort()/not_found() (JSON)."""
    if signal.location is not None:
        # A build has no host of its own: a path-absolute Location serves any.
        if BUILD_MARK in environ:  # WSGI spells the path's UTF-8 bytes as latin-1
            base = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
        else:
            base = current_url(environ)
        # An IRI ("/users/東京") is sent percent-encoded: header values are
        # latin-1 on the wire, and browsers decode %-escapes as UTF-8.
        location = iri_to_uri(urljoin(base, signal.location))
        headers = [("Location", location), ("Content-Length", "0"), *signal.headers]
        return status_line(signal.status), headers, []
    return error_reply(signal.status, signal.message, signal.headers)


def _tell_observers(exc: BaseException) -> None:
    """Note *exc* on the request's exchange, when something observes it (a span records it)."""
    try:
        exchange = active().exchange
    except LookupError:  # rendered outside a request
        return
    if exchange is not None:
        exchange.failed(exc)


def _log_unhandled(exc: BaseException, environ: WSGIEnviron, where: str) -> None:
    if isinstance(exc, ReturnValueError):
        logger.error("Bad return value: %s", exc)
    else:
        logger.error(
            "Unhandled %s in %s (%s %s)",
            type(exc).__name__,
            where,
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
            exc_info=exc,
        )


def status_of(exc: BaseException) -> int | None:
    """The status an exception asks for (``abort(404)``, ``HTTPError``), or None."""
    if isinstance(exc, (ControlFlow, HTTPError)):
        return exc.status
    if isinstance(exc, _WerkzeugHTTPException):
        return exc.code
    return None


def current_url(environ: WSGIEnviron) -> str:
    """The request URL (ASCII), to resolve relative redirect targets against."""
    host = (
        environ.get("HTTP_HOST")
        or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    )
    # WSGI paths are bytes spelled as latin-1: percent-encode those bytes, so
    # a UTF-8 path is not read back as mojibake.
    root = quote(environ.get("SCRIPT_NAME", "").encode("latin-1"), safe=PATH_SAFE)
    path = quote(environ.get("PATH_INFO", "").encode("latin-1"), safe=PATH_SAFE)
    return get_current_url(environ.get("wsgi.url_scheme", "http"), host, root, path)
