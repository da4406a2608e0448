"""The WSGI application: request in, route matched, handler called, reply out.

::

    server -> App.__call__ -> cache HIT? -> size check -> middleware -> route match
           -> cache (static GET) -> handler -> coerce -> Set-Cookie -> server

Everything that can be decided before the first request (the route table,
each handler's calling plan, ``Allow`` headers) is decided in ``App()``; a
bad route stops start-up there with an error naming the file.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urljoin

from werkzeug.exceptions import HTTPException as _WerkzeugHTTPException
from werkzeug.routing import RequestRedirect
from werkzeug.sansio.utils import get_current_url
from werkzeug.wrappers import Response as _WerkzeugResponse

from .cache import DEFAULT_MAX_BYTES, CacheStore, MemoryStore, RouteCache, static_reason
from .context import RequestState, active, bind, unbind
from .discovery import discover, discover_middleware
from .errors import ControlFlow, HTTPError, StartupError, status_phrase
from .handlers import Endpoint, ReturnValueError, coerce
from .middleware import (
    CallNext,
    Middleware,
    check_middleware,
    describe_middleware,
    reply_to_response,
    response_to_reply,
)
from .requests import DEFAULT_MAX_JSON_DEPTH, Request
from .responses import (
    JSON_TYPE,
    Headers,
    Reply,
    StreamBody,
    encode_json,
    error_reply,
    status_line,
)
from .routing import Router, RouteSpec, dot_or_empty_segment, normalize_path
from .table import Route, RouteTable, build_routes

__all__ = ["App"]

logger = logging.getLogger("microroute")

StartResponse = Callable[..., Any]
WSGIEnviron = dict[str, Any]
ErrorHandler = Callable[[BaseException], Any]
E = TypeVar("E", bound=ErrorHandler)
M = TypeVar("M", bound=Middleware)

DEFAULT_MAX_BODY_SIZE = 16 * 1024 * 1024
DEFAULT_SESSION_MAX_AGE = 14 * 24 * 3600
_OK = status_line(200)
_JSON_TYPE = ("Content-Type", JSON_TYPE)
# Safe characters for a path echoed back in a Location header.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


class App:
    """A WSGI application built from routers and/or an ``app/`` folder.

    >>> app = App(route)                         # decorators     # doctest: +SKIP
    >>> app = App(app_dir="app")                 # file discovery # doctest: +SKIP
    >>> app = App(api, app_dir="app", debug=True)                 # doctest: +SKIP

    ``App()`` with neither discovers ``./app``. Serve it with
    ``microroute run`` or ``gunicorn -k gevent module:app``.

    :param debug: add the traceback to 500 responses (never in production).
    :param secret_key: the key that signs cookies and the session; defaults
        to ``MICROROUTE_SECRET_KEY``. To rotate keys, pass a list with the
        **newest key last**: the last one signs, every one verifies.
    :param max_body_size: request bodies larger than this get 413 before they
        are read (16 MiB by default).
    :param trust_proxy: believe ``X-Forwarded-Proto`` when deciding whether the
        request came over https (only behind a proxy that sets it).
    :param session_cookie: the name of the session cookie.
    :param session_max_age: seconds a session lives (14 days by default).
    :param cache: keep static GET responses (``True``), not at all (``False``,
        or ``MICROROUTE_CACHE=0``), or in a given :class:`~microroute.cache.CacheStore`
        such as :class:`~microroute.cache.RedisStore`.
    :param cache_max_bytes: the in-memory store's bound (64 MiB by default).
    :param max_json_depth: ``request.json`` refuses deeper nesting with a 400 (64).
    :param max_form_parts: multipart parts/fields accepted in a form (1000).
    :param max_form_memory_size: bytes a non-file form field may hold (500 kB).
    :param handler_timeout: seconds a handler may run before the client gets a
        504 and the handler is interrupted (``None``: no limit). It relies on
        gevent: the handler is stopped at its next cooperative (I/O) call.
        Streams are exempt once their first chunk is out.
    """

    def __init__(
        self,
        *routers: Router,
        app_dir: str | os.PathLike[str] | None = None,
        debug: bool = False,
        secret_key: str | bytes | list[str | bytes] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        trust_proxy: bool = False,
        session_cookie: str = "session",
        session_max_age: int = DEFAULT_SESSION_MAX_AGE,
        cache: bool | CacheStore = True,
        cache_max_bytes: int = DEFAULT_MAX_BYTES,
        max_json_depth: int = DEFAULT_MAX_JSON_DEPTH,
        max_form_parts: int = 1000,
        max_form_memory_size: int = 500_000,
        handler_timeout: float | None = None,
    ) -> None:
        for router in routers:
            if not isinstance(router, Router):
                raise TypeError(
                    f"App() takes Router objects, got {type(router).__name__};"
                    " pass a folder as App(app_dir=...)"
                )
        if (
            isinstance(max_body_size, bool)
            or not isinstance(max_body_size, int)
            or max_body_size < 0
        ):
            raise ValueError(f"max_body_size must be a number of bytes, got {max_body_size!r}")
        self.debug = debug
        self.secret_key = secret_key or os.environ.get("MICROROUTE_SECRET_KEY") or None
        self.max_body_size = max_body_size
        self.trust_proxy = trust_proxy
        self.session_cookie = session_cookie
        self.session_max_age = session_max_age
        self.max_json_depth = max_json_depth
        self.max_form_parts = max_form_parts
        self.max_form_memory_size = max_form_memory_size
        if handler_timeout is not None and not handler_timeout > 0:
            raise ValueError(
                f"handler_timeout must be a number of seconds > 0, got {handler_timeout!r}"
            )
        self.handler_timeout = handler_timeout
        self._error_handlers: dict[type[BaseException] | int, ErrorHandler] = {}
        self._middleware: list[Middleware] = []
        self._pipeline: CallNext | None = None

        specs: list[RouteSpec] = []
        if app_dir is None and not routers:
            app_dir = Path.cwd() / "app"
            if not app_dir.is_dir():
                raise StartupError(
                    f"no routes: {app_dir} does not exist; pass routers to App(...)"
                    " or App(app_dir=...)"
                )
        if app_dir is not None:
            self.app_dir: Path | None = Path(app_dir)
            specs.extend(discover(app_dir))
            found = discover_middleware(app_dir)
            if found is not None:
                self.use(found)
        else:
            self.app_dir = None
        for router in routers:
            try:
                specs.extend(router.specs())
            except ValueError as exc:
                raise StartupError(str(exc)) from None
        self._table = RouteTable(build_routes(specs))

        if os.environ.get("MICROROUTE_CACHE", "").strip().lower() in ("0", "false", "no", "off"):
            cache = False
        self._cache: RouteCache | None = None
        if cache is not False:
            store = MemoryStore(cache_max_bytes) if cache is True else cache
            if not isinstance(store, CacheStore):
                raise TypeError(f"cache= takes True, False or a CacheStore, got {cache!r}")
            self._cache = RouteCache(self, store, self._run)
        for route in self._table.routes:
            get = route.endpoints.get("GET")
            if get is not None:
                get.dynamic_reason = (
                    static_reason(route, get) if self._cache is not None else "cache off"
                )
        #: The memory store's entries, read directly for a HIT when no middleware runs.
        # Not with middleware (app/middleware.py included): it must run around HITs.
        self._fast = self._cache.fast if self._cache is not None and not self._middleware else None

    # -- introspection -----------------------------------------------------

    @property
    def routes(self) -> list[Route]:
        """The compiled routes, sorted by path (for the route table)."""
        return sorted(self._table.routes, key=lambda r: r.pattern.path)

    def revalidate_path(self, path: str, *, subtree: bool = False) -> int:
        """Drop the cached responses of *path* (every query string); returns how many.

        With ``subtree=True`` everything below *path* goes too
        (``app.revalidate_path("/blog", subtree=True)``). With a shared store
        this reaches every worker.
        """
        if self._cache is None:
            return 0
        # Entries are keyed by the WSGI path: UTF-8 bytes spelled as latin-1.
        key = normalize_path(unquote(path)).encode().decode("latin-1")
        return self._cache.store.delete_path(key, subtree)

    def route_table(self) -> list[dict[str, str]]:
        """One row per route: methods, path, source, and static or dynamic, with why.

        This is what ``microroute routes`` and the start-up banner print, so
        nobody has to guess what is cached.
        """
        rows = []
        for route in self.routes:
            get = route.endpoints.get("GET")
            if get is None:
                mode, reason = "dynamic", "no GET handler"
            elif get.dynamic_reason is None:
                revalidate = get.config.revalidate
                mode = "static"
                reason = f"revalidate {revalidate:g}s" if revalidate is not False else ""
                if get.config.dynamic == "force-static":
                    reason = ", ".join(filter(None, ['dynamic = "force-static"', reason]))
            else:
                mode, reason = "dynamic", get.dynamic_reason
            sources = dict.fromkeys(route.sources[m] for m in route.methods)
            rows.append(
                {
                    "methods": " ".join(route.methods),
                    "path": route.pattern.path,
                    "source": "; ".join(sources),
                    "mode": mode,
                    "reason": reason,
                }
            )
        return rows

    def has_handler(self, path: str, method: str) -> bool:
        """Whether *path* matches a route that exports *method* itself."""
        found = self._table.match(path.rstrip("/") or "/")
        return found is not None and method.upper() in found[0].endpoints

    def __repr__(self) -> str:
        return f"<App {len(self._table.routes)} routes>"

    # -- configuration -----------------------------------------------------

    def errorhandler(self, key: type[BaseException] | int) -> Callable[[E], E]:
        """Register a function that turns an error into a response.

        *key* is an exception class (matched along the exception's MRO) or a
        status code, which also catches the app's own 404 and 405.

        >>> @app.errorhandler(KeyError)                   # doctest: +SKIP
        ... def missing(exc):
        ...     return {"error": f"no such key {exc}"}, 404
        """
        valid = isinstance(key, int) or (isinstance(key, type) and issubclass(key, BaseException))
        if not valid:
            raise TypeError(f"errorhandler() takes an exception class or a status, got {key!r}")

        def register(fn: E) -> E:
            self._error_handlers[key] = fn
            return fn

        return register

    def use(self, middleware: M) -> M:
        """Add *middleware*, ``mw(request, call_next) -> response``; returns it.

        Middleware run in the order added, around routing; see
        :mod:`microroute.middleware`.
        """
        check_middleware(middleware)
        self._middleware.append(middleware)
        self._fast = None  # middleware must run around cached responses too
        pipeline: CallNext = self._core
        for mw in reversed(self._middleware):
            pipeline = self._layer(mw, pipeline)
        self._pipeline = pipeline
        return middleware

    def _layer(self, mw: Middleware, call_next: CallNext) -> CallNext:
        where = describe_middleware(mw)

        def layer(request: Request) -> _WerkzeugResponse:
            try:
                result = mw(request, call_next)
                if isinstance(result, _WerkzeugResponse):
                    return result
                return reply_to_response(coerce(result, where, request.environ))
            except Exception as exc:
                return reply_to_response(self._error(exc, request.environ, where))
            except ControlFlow as signal:
                return reply_to_response(self._error(signal, request.environ, where))

        return layer

    def _core(self, request: Request) -> _WerkzeugResponse:
        """The innermost ``call_next``: routing and the handler."""
        return reply_to_response(self._dispatch(request.environ, active()))

    # -- WSGI --------------------------------------------------------------

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH")
        if length:
            reply = self._check_length(length)
            if reply is not None:
                start_response(reply[0], reply[1])
                return reply[2]
        fast = self._fast
        if fast is not None:
            # A cache HIT without routing, context or a handler: one dict lookup.
            query = environ.get("QUERY_STRING")
            key = (
                environ.get("PATH_INFO", "") if not query else f"{environ.get('PATH_INFO')}?{query}"
            )
            entry = fast.get(key)
            if entry is not None and entry.servable(environ):
                try:  # noqa: SIM105 - contextlib.suppress costs more than the lookup
                    fast.move_to_end(key)  # keep the LRU order true
                except KeyError:  # evicted meanwhile by another thread
                    pass
                start_response(entry.status, entry.hit)
                return [entry.body]
        state = RequestState(self, environ)
        token = bind(state)
        try:
            if self._pipeline is None:
                status, headers, body = self._dispatch(environ, state)
            else:
                status, headers, body = response_to_reply(self._pipeline(state.request), environ)
            if state.touched:  # cookies() or session() was used
                status, headers, body = self._with_cookies(state, status, headers, body)
            state.sent = True
        finally:
            unbind(token)
        if type(body) is StreamBody:
            body.state = state  # the generator runs later, with cookies() etc. still usable
        start_response(status, headers)
        return body

    def _with_cookies(
        self, state: RequestState, status: str, headers: Headers, body: Iterable[bytes]
    ) -> Reply:
        """Add the ``Set-Cookie`` headers of cookies()/session() to any reply."""
        try:
            extra = state.set_cookie_headers()
        except Exception as exc:  # e.g. a session with no secret key to sign it
            close = getattr(body, "close", None)
            if close is not None:
                close()
            return self._error(exc, state.environ, "saving cookies")
        return status, headers + extra if extra else headers, body

    def _check_length(self, length: str) -> Reply | None:
        """413 from Content-Length alone, before a byte of the body is read."""
        digits = length.strip()
        # Digits only: int() would also take "+5" or "0_5", which the body
        # reader does not, and the two would disagree on where the body ends.
        size = int(digits) if digits.isascii() and digits.isdigit() else -1
        if size < 0:
            return error_reply(400, f"Invalid Content-Length header: {length[:40]!r}")
        if size > self.max_body_size:
            return error_reply(
                413, f"Request body too large: the limit is {self.max_body_size} bytes"
            )
        return None

    def _dispatch(self, environ: WSGIEnviron, state: RequestState) -> Reply:
        path = environ.get("PATH_INFO") or "/"
        if not path.isascii():
            # WSGI hands paths over as latin-1; URLs are UTF-8.
            path = path.encode("latin-1").decode("utf-8", "replace")
        if (problem := dot_or_empty_segment(path)) is not None:
            return self._routing_error(400, problem, environ)
        if path[-1] == "/" and path != "/":
            return self._slash_redirect(environ, path)
        found = self._table.match(path)
        if found is None:
            return self._routing_error(404, "Not Found", environ)
        route, params = found
        method = environ["REQUEST_METHOD"]
        endpoint = route.endpoints.get(method)
        if endpoint is None:
            if method == "HEAD" and "GET" in route.endpoints:
                return self._head(route.endpoints["GET"], state, params)
            if method == "OPTIONS":
                return status_line(204), [("Allow", route.allow)], []
            return self._routing_error(405, "Method Not Allowed", environ, [("Allow", route.allow)])
        if endpoint.dynamic_reason is None and self._cache is not None:
            return self._cache.serve(endpoint, state, params)
        return self._run(endpoint, state, params)

    def _run(self, endpoint: Endpoint, state: RequestState, params: dict[str, Any]) -> Reply:
        saved = state.enter_handler(endpoint.config.dynamic, endpoint.source)
        try:
            request = None
            if endpoint.needs_request:
                request = state.request
                request.params = params
            if self.handler_timeout is not None:
                return self._run_with_timeout(endpoint, state, request, params)
            try:
                result = endpoint.invoke(request, params)
                if type(result) is dict:  # the most common return, without the coerce call
                    body = encode_json(result)
                    return _OK, [_JSON_TYPE, ("Content-Length", str(len(body)))], [body]
                return coerce(result, endpoint.source, state.environ)
            except (Exception, ControlFlow) as exc:  # ControlFlow is a BaseException
                state.failed = True
                return self._error(exc, state.environ, endpoint.source)
        finally:
            state.leave_handler(saved)

    def _run_with_timeout(
        self, endpoint: Endpoint, state: RequestState, request: Request | None, params: Any
    ) -> Reply:
        """Run a handler under ``gevent.Timeout``: past the limit, a 504."""
        import gevent

        timeout = gevent.Timeout(self.handler_timeout)
        timeout.start()
        try:
            return coerce(endpoint.invoke(request, params), endpoint.source, state.environ)
        except gevent.Timeout as fired:
            if fired is not timeout:
                raise
            logger.error(
                "%s did not finish within handler_timeout=%ss; answered 504",
                endpoint.source,
                self.handler_timeout,
            )
            state.failed = True
            return error_reply(
                504, f"The handler did not finish within {self.handler_timeout:g} seconds"
            )
        except (Exception, ControlFlow) as exc:
            state.failed = True
            return self._error(exc, state.environ, endpoint.source)
        finally:
            timeout.close()

    def _head(self, get: Endpoint, state: RequestState, params: dict[str, Any]) -> Reply:
        """HEAD served from GET: GET's status and headers, no body."""
        if get.dynamic_reason is None and self._cache is not None:
            status, headers, body = self._cache.serve(get, state, params)
        else:
            status, headers, body = self._run(get, state, params)
        close = getattr(body, "close", None)
        if close is not None:
            close()
        return status, headers, []

    def _slash_redirect(self, environ: WSGIEnviron, path: str) -> Reply:
        """``/users/`` -> 308 ``/users``, keeping the query string."""
        # Collapse leading slashes: "//evil.example/" must not become a
        # protocol-relative redirect to another host.
        target = environ.get("SCRIPT_NAME", "") + "/" + path.strip("/")
        location = quote(target, safe=_PATH_SAFE)
        query = environ.get("QUERY_STRING")
        if query:
            location += "?" + query
        return status_line(308), [("Location", location), ("Content-Length", "0")], []

    # -- errors ------------------------------------------------------------

    def _routing_error(
        self, status: int, message: str, environ: WSGIEnviron, headers: Headers | None = None
    ) -> Reply:
        handler = self._error_handlers.get(status)
        if handler is not None:
            error = HTTPError(status, message, headers)
            return self._custom_error(handler, error, environ)
        return error_reply(status, message, headers)

    def _find_handler(self, exc: BaseException, status: int | None) -> ErrorHandler | None:
        if self._error_handlers:
            for kind in type(exc).__mro__:
                handler = self._error_handlers.get(kind)
                if handler is not None:
                    return handler
            if status is not None:
                return self._error_handlers.get(status)
        return None

    def _error(self, exc: BaseException, environ: WSGIEnviron, where: str) -> Reply:
        """Render any exception from a handler as a JSON reply."""
        status = _status_of(exc)
        handler = self._find_handler(exc, status)
        if handler is not None:
            return self._custom_error(handler, exc, environ)
        if isinstance(exc, ControlFlow):
            return self._control_flow(exc, environ)
        if isinstance(exc, HTTPError):
            return error_reply(exc.status, exc.message, exc.headers)
        if isinstance(exc, RequestRedirect):
            return status_line(exc.code), [("Location", exc.new_url), ("Content-Length", "0")], []
        if isinstance(exc, _WerkzeugHTTPException):
            code = exc.code or 500
            headers = [h for h in exc.get_headers() if h[0].lower() != "content-type"]
            return error_reply(code, exc.description or status_phrase(code), headers)
        return self._internal_error(exc, environ, where)

    @staticmethod
    def _control_flow(signal: ControlFlow, environ: WSGIEnviron) -> Reply:
        """A redirect() (Location, empty body) or an abort()/not_found() (JSON)."""
        if signal.location is not None:
            location = urljoin(get_current_url_from(environ), signal.location)
            headers = [("Location", location), ("Content-Length", "0"), *signal.headers]
            return status_line(signal.status), headers, []
        return error_reply(signal.status, signal.message, signal.headers)

    def _internal_error(self, exc: BaseException, environ: WSGIEnviron, where: str) -> Reply:
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
        if self.debug:
            trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            return error_reply(500, "Internal Server Error", traceback=trace)
        return error_reply(500, "Internal Server Error")

    def _custom_error(
        self,
        handler: ErrorHandler,
        exc: BaseException,
        environ: WSGIEnviron,
    ) -> Reply:
        where = f"error handler {getattr(handler, '__qualname__', None) or handler!r}"
        try:
            return coerce(handler(exc), where, environ)
        except Exception as failure:
            # An error handler that fails gets the plain 500, not another handler.
            return self._internal_error(failure, environ, where)
        except ControlFlow as signal:  # abort()/redirect() from the error handler
            return self._control_flow(signal, environ)


def _status_of(exc: BaseException) -> int | None:
    if isinstance(exc, (ControlFlow, HTTPError)):
        return exc.status
    if isinstance(exc, _WerkzeugHTTPException):
        return exc.code
    return None


def get_current_url_from(environ: WSGIEnviron) -> str:
    """The request URL, to resolve relative redirect targets against."""
    host = (
        environ.get("HTTP_HOST")
        or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    )
    return get_current_url(
        environ.get("wsgi.url_scheme", "http"),
        host,
        environ.get("SCRIPT_NAME", ""),
        environ.get("PATH_INFO", ""),
    )
