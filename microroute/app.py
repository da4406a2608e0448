"""The WSGI application: request in, route matched, handler called, reply out.

::

    server -> App.__call__ -> ProxyFix (trust_proxy) -> size check -> cache HIT?
           -> a copy of the context -> middleware -> route match
           -> cache (static GET: HIT, or a build) -> handler -> coerce -> Set-Cookie
           -> on the wire -> server (whose close() hands after() work to a pool)

A static GET is built as Next.js builds it, from no request: the handler runs on
a synthetic GET for the path alone, in a fresh context, outside middleware
(:meth:`App._build`); :mod:`microroute.cache` decides when.

"On the wire" is the last word on every reply, whoever made it: a header no
server may send becomes a logged 500 naming it, and a HEAD, 204 or 304 loses
its body, so what the TestClient sees is what gunicorn and ``microroute run``
send.

Everything that can be decided before the first request (the route table,
each handler's calling plan, ``Allow`` headers) is decided in ``App()``; a
bad route stops start-up there with an error naming the file.
"""

from __future__ import annotations

import contextvars
import hashlib
import inspect
import io
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urljoin

from gevent.timeout import Timeout as _GeventTimeout
from werkzeug.exceptions import HTTPException as _WerkzeugHTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import RequestRedirect
from werkzeug.sansio.utils import get_current_url
from werkzeug.urls import iri_to_uri
from werkzeug.wrappers import Response as _WerkzeugResponse

from .after_response import after_the_response, pending
from .cache import DEFAULT_MAX_BYTES, CacheStore, MemoryStore, RouteCache, static_reason
from .context import DynamicUsage, RequestState, active, bind
from .disconnect import DISCONNECT, Disconnect
from .discovery import discover, discover_middleware
from .errors import ControlFlow, HTTPError, RequestValidationError, StartupError, status_phrase
from .handlers import BUILD_MARK, Endpoint, ReturnValueError, coerce
from .middleware import (
    CallNext,
    Middleware,
    check_middleware,
    describe_middleware,
    reply_to_response,
    response_to_reply,
)
from .openapi import docs_router
from .openapi import document as openapi_document
from .requests import DEFAULT_MAX_JSON_DEPTH, Request
from .responses import (
    JSON_TYPE,
    Headers,
    Reply,
    SafeHeaders,
    StreamBody,
    chunk_bytes,
    close_body,
    encode_json,
    error_reply,
    status_line,
)
from .routing import Router, RouteSpec, dot_or_empty_segment, normalize_path
from .table import Route, RouteTable, build_routes
from .wire import headers_problem, without_body

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
# The early 413/400 from Content-Length, handed to the innermost call_next.
_EARLY_ERROR = "microroute.early_error"
#: What a handler's exception is caught as: ControlFlow is a BaseException, and
#: so is a gevent.Timeout the user's own code started and let escape.
_HANDLER_ERRORS = (Exception, ControlFlow, _GeventTimeout)


def _environ_of(environ: WSGIEnviron, start_response: Any) -> Any:
    """The "app" behind ProxyFix: hands back the environ it rewrote."""
    return environ


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
    :param trust_proxy: the number of proxies in front of the app whose
        ``X-Forwarded-For``, ``-Proto``, ``-Host`` and ``-Port`` are believed
        (werkzeug's ``ProxyFix``: the value set by the nearest proxy wins);
        ``True`` means one. Scheme, host and client address then come from
        those headers for cookies, redirects, ``request.url`` and
        ``request.remote_addr`` alike. Leave it off unless a proxy you run
        sets (and overwrites) these headers.
    :param session_cookie: the name of the session cookie.
    :param session_max_age: seconds a session lives (14 days by default).
    :param cache: keep static GET responses (``True``), not at all (``False``,
        or ``MICROROUTE_CACHE=0``), or in a given :class:`~microroute.cache.CacheStore`
        such as :class:`~microroute.cache.RedisStore`.
    :param cache_max_bytes: the in-memory store's bound (64 MiB by default).
    :param static_host: the host a static build's synthetic request names
        (``localhost``): a static response never sees the client's ``Host``.
    :param build_id: scopes a shared store's entries to this code; defaults to
        ``MICROROUTE_BUILD_ID``, else a hash of the handlers' source files and
        the microroute version, so a deploy never serves the old code's entries.
    :param static_by_default: ``False`` gives Next.js 15's default: a GET is
        dynamic unless it says ``dynamic = "force-static"`` or ``revalidate = N``.
    :param max_json_depth: ``request.json`` refuses deeper nesting with a 400 (64).
    :param max_form_parts: multipart parts/fields accepted in a form (1000).
    :param max_form_memory_size: bytes a non-file form field may hold (500 kB).
    :param handler_timeout: seconds a handler may run before the client gets a
        504 and the handler is interrupted (``None``: no limit). It relies on
        gevent: the handler is stopped at its next cooperative (I/O) call.
        Streams are exempt once their first chunk is out.
    :param docs: a path (``"/docs"``) to serve an HTML page listing every
        operation, with the OpenAPI document at ``/openapi.json`` (``None``: neither).
    """

    def __init__(
        self,
        *routers: Router,
        app_dir: str | os.PathLike[str] | None = None,
        debug: bool = False,
        secret_key: str | bytes | list[str | bytes] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        trust_proxy: bool | int = False,
        session_cookie: str = "session",
        session_max_age: int = DEFAULT_SESSION_MAX_AGE,
        cache: bool | CacheStore = True,
        cache_max_bytes: int = DEFAULT_MAX_BYTES,
        static_host: str = "localhost",
        build_id: str | None = None,
        static_by_default: bool = True,
        max_json_depth: int = DEFAULT_MAX_JSON_DEPTH,
        max_form_parts: int = 1000,
        max_form_memory_size: int = 500_000,
        handler_timeout: float | None = None,
        docs: str | None = None,
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
        if isinstance(trust_proxy, bool):
            hops = int(trust_proxy)
        elif isinstance(trust_proxy, int) and trust_proxy >= 0:
            hops = trust_proxy
        else:
            raise ValueError(
                f"trust_proxy must be True, False or a number of proxies, got {trust_proxy!r}"
            )
        self.trust_proxy = hops
        # ProxyFix rewrites the environ in place, once, before anything reads it.
        self._proxy_fix: Any = (
            ProxyFix(_environ_of, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
            if hops
            else None
        )
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
        self.static_host = static_host
        self._build_id = build_id or os.environ.get("MICROROUTE_BUILD_ID") or None
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
        if docs is not None:
            specs.extend(docs_router(self.openapi, docs).specs())
        self._table = RouteTable(build_routes(specs))

        if os.environ.get("MICROROUTE_CACHE", "").strip().lower() in ("0", "false", "no", "off"):
            cache = False
        self._cache: RouteCache | None = None
        if cache is not False:
            store = MemoryStore(cache_max_bytes) if cache is True else cache
            if not isinstance(store, CacheStore):
                raise TypeError(f"cache= takes True, False or a CacheStore, got {cache!r}")
            shared = not isinstance(store, MemoryStore)
            build_id = self.build_id if shared else ""
            self._cache = RouteCache(store, self._build, self._run, build_id)
        for route in self._table.routes:
            get = route.endpoints.get("GET")
            if get is not None:
                get.dynamic_reason = (
                    static_reason(route, get, static_by_default)
                    if self._cache is not None
                    else "cache off"
                )
        #: The memory store's entries, read directly for a HIT when no middleware runs.
        # Not with middleware (app/middleware.py included): it must run around HITs.
        self._fast = self._cache.fast if self._cache is not None and not self._middleware else None

    # -- introspection -----------------------------------------------------

    @property
    def routes(self) -> list[Route]:
        """The compiled routes, sorted by path (for the route table)."""
        return sorted(self._table.routes, key=lambda r: r.pattern.path)

    @property
    def build_id(self) -> str:
        """What a shared store scopes this app's entries to.

        ``App(build_id=...)``, else ``MICROROUTE_BUILD_ID``, else a hash of
        every handler's source file and the microroute version.
        """
        if self._build_id is None:
            self._build_id = _source_hash(self._table.routes)
        return self._build_id

    def revalidate_path(self, path: str, *, subtree: bool = False) -> int:
        """Drop the cached response of *path*; returns how many entries went.

        With ``subtree=True`` everything below *path* goes too
        (``app.revalidate_path("/blog", subtree=True)``). With a shared store
        this reaches every worker.
        """
        if self._cache is None:
            return 0
        # Entries are keyed by the WSGI path: UTF-8 bytes spelled as latin-1.
        key = normalize_path(unquote(path)).encode().decode("latin-1")
        return self._cache.delete_path(key, subtree)

    def revalidate_tag(self, tag: str) -> int:
        """Drop every cached response of every route whose config has *tag*.

        As Next.js's ``revalidateTag``: ``tags = ["posts"]`` in a ``route.py``
        (or ``@route.get("/posts", tags=["posts"])``), then
        ``app.revalidate_tag("posts")`` after a write. With a shared store this
        reaches every worker. Returns how many entries went.
        """
        if self._cache is None:
            return 0
        return self._cache.delete_tag(tag)

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
                if get.config.dynamic in ("force-static", "error"):
                    forced = f'dynamic = "{get.config.dynamic}"'
                    reason = ", ".join(filter(None, [forced, reason]))
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

    def openapi(self, *, title: str = "microroute app", version: str = "0.1.0") -> dict[str, Any]:
        """The OpenAPI 3.1 document of every route (typed parameters, bodies, responses).

        ``App(docs="/docs")`` serves it at ``/openapi.json``, with a page at ``/docs``.
        """
        return openapi_document(self.routes, title=title, version=version)

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
            except _HANDLER_ERRORS as exc:
                # The middleware failed after call_next: the response it got
                # (a primed stream, say) is never sent, so close it now and
                # let the generator's finally: run.
                for response in inner:
                    response.close()
                return reply_to_response(self._error(exc, request.environ, where))

        return layer

    def _core(self, request: Request) -> _WerkzeugResponse:
        """The innermost ``call_next``: routing and the handler, for *request*.

        A middleware may pass a request of its own (a rewritten path, an added
        header): the handler, ``headers()``, ``cookies()`` and the cache key
        then all see that one.
        """
        state = active()
        state.use_request(request)
        early = request.environ.get(_EARLY_ERROR)
        if early is not None:  # the 413/400 decided from Content-Length alone
            return reply_to_response(self._error(early, request.environ, "Content-Length"))
        return reply_to_response(self._dispatch(request.environ, state))

    # -- WSGI --------------------------------------------------------------

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        if self._proxy_fix is not None:
            environ = self._proxy_fix(environ, None)
        early: HTTPError | None = None
        length = environ.get("CONTENT_LENGTH")
        if length:
            early = self._check_length(length)
            if early is not None and self._pipeline is None and not self._error_handlers:
                # Nothing could change it: answer without building a request.
                reply = error_reply(early.status, early.message)
                start_response(reply[0], reply[1])
                return reply[2] if environ["REQUEST_METHOD"] != "HEAD" else []
        fast = self._fast if early is None else None
        if fast is not None:
            # A cache HIT without routing, context or a handler: one dict lookup.
            # Static entries are keyed by path alone: a build never sees the query.
            key = environ.get("PATH_INFO", "")
            entry = fast.get(key)
            if entry is not None and entry.servable(environ):
                try:  # noqa: SIM105 - contextlib.suppress costs more than the lookup
                    fast.move_to_end(key)  # keep the LRU order true
                except KeyError:  # evicted meanwhile by another thread
                    pass
                start_response(entry.status, entry.hit)
                return [entry.body]
        watch: Disconnect | None = None
        if DISCONNECT not in environ:
            # gunicorn's own gevent worker does not watch its clients: we do.
            sock = environ.get("gunicorn.socket")
            if sock is not None:
                watch = environ[DISCONNECT] = Disconnect(sock)
        # Each request runs in a copy of the server's context: a ContextVar
        # that user code sets here is gone for the next request on the same
        # keep-alive connection (the same greenlet). Stream chunks run in it too.
        context = contextvars.copy_context()
        status, headers, body = context.run(self._respond, environ, early)
        if type(body) is StreamBody:
            body.context = context  # the generator runs later, with cookies() etc. still usable
            # Its generator may still call after(): close() looks then.
            body = after_the_response(body, context, environ)
        elif pending in context:  # after() was called: its work runs at close()
            body = after_the_response(body, context, environ)
        start_response(status, headers)
        if watch is not None:
            return watch.until_closed(body)
        return body

    def _respond(self, environ: WSGIEnviron, early: HTTPError | None) -> Reply:
        """The request inside its own context: middleware, routing, handler, cookies."""
        state = RequestState(self, environ)
        bind(state)  # no unbind: the context is dropped with the request
        if early is not None:
            environ[_EARLY_ERROR] = early
        if self._pipeline is None:
            if early is not None:
                status, headers, body = self._error(early, environ, "Content-Length")
            else:
                status, headers, body = self._dispatch(environ, state)
        else:
            status, headers, body = response_to_reply(self._pipeline(state.request), environ)
        if state.touched:  # cookies() or session() was used
            status, headers, body = self._with_cookies(state, status, headers, body)
        state.sent = True
        # In the context still: a stream closed here runs its finally: in it.
        status, headers, body = self._on_the_wire(environ, status, headers, body)
        if type(body) is StreamBody or isinstance(body, (list, tuple)):
            return status, headers, body
        if _is_file_wrapper(body, environ):  # sendfile: the server's own, untouched
            return status, headers, body
        return self._prime(environ, status, headers, body)

    def _prime(
        self, environ: WSGIEnviron, status: str, headers: Headers, body: Iterable[bytes]
    ) -> Reply:
        """A lazy body made another way (``Response(generator)``, middleware's): primed.

        As for a handler's generator: a failure before its first chunk is still
        a proper (JSON) error response, later chunks run in the request's
        context, and a failure after the first chunk cuts the body cleanly.
        """
        where = f"the response to {environ['REQUEST_METHOD']} {environ.get('PATH_INFO')}"
        watch = environ.get(DISCONNECT)
        if watch is not None:
            watch.watch(interrupt=True)
        try:
            iterator = iter(body)
            first = next(iterator, None)
            data = chunk_bytes(first, where) if first is not None else None
        except _HANDLER_ERRORS as exc:
            close_body(body)
            return self._on_the_wire(environ, *self._error(exc, environ, where))
        return status, headers, StreamBody.around(body, data, iterator, where)

    def _on_the_wire(
        self, environ: WSGIEnviron, status: str, headers: Headers, body: Iterable[bytes]
    ) -> Reply:
        """The last word before the server: headers it can send, no body where none is allowed.

        Whatever made the reply (a handler, an error handler, middleware, the
        cache), a header a server cannot send becomes a logged 500 naming it,
        not a server's HTML 500 or an injected header; a HEAD, 204 or 304 never
        carries a body, so a keep-alive connection stays in sync.
        """
        problem = None if type(headers) is SafeHeaders else headers_problem(headers)
        if problem is not None:
            close_body(body)
            logger.error(
                "Refused to send the response to %s %s: %s",
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
                problem,
            )
            status, headers, body = error_reply(500, "Internal Server Error")
        code = status[:3]
        if code == "204" or code == "304" or environ["REQUEST_METHOD"] == "HEAD":
            if code == "204":  # RFC 9110 §8.6: no Content-Length on a 204
                headers = [
                    h for h in headers if h[0].lower() not in ("content-length", "content-type")
                ]
            elif code == "304":  # allowed by RFC 9110, but gevent's pywsgi answers 500 to it
                headers = [h for h in headers if h[0].lower() != "content-length"]
            body = without_body(headers, body, int(code))
        return status, headers, body

    def _with_cookies(
        self, state: RequestState, status: str, headers: Headers, body: Iterable[bytes]
    ) -> Reply:
        """Add the ``Set-Cookie`` headers of cookies()/session() to any reply."""
        try:
            extra = state.set_cookie_headers()
        except Exception as exc:  # e.g. a session with no secret key to sign it
            close_body(body)
            return self._error(exc, state.environ, "saving cookies")
        return status, headers + extra if extra else headers, body

    def _check_length(self, length: str) -> HTTPError | None:
        """413 (or 400) from Content-Length alone, before a byte of the body is read.

        The error still goes through middleware and error handlers (CORS
        headers included, or a browser reports an opaque network error), but
        no handler runs.
        """
        digits = length.strip()
        # Digits only: int() would also take "+5" or "0_5", which the body
        # reader does not, and the two would disagree on where the body ends.
        size = int(digits) if digits.isascii() and digits.isdigit() else -1
        if size < 0:
            return HTTPError(400, f"Invalid Content-Length header: {length[:40]!r}")
        if size > self.max_body_size:
            return HTTPError(
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
            return self._static(endpoint, state, params)
        return self._run(endpoint, state, params)

    def _static(self, endpoint: Endpoint, state: RequestState, params: dict[str, Any]) -> Reply:
        """A static route's response from the cache: stored, or built now."""
        environ = state.environ
        assert self._cache is not None
        reply = self._cache.serve(
            endpoint,
            environ.get("PATH_INFO") or "/",
            params,
            state,
            environ.get("HTTP_IF_NONE_MATCH"),
        )
        if reply[0][0] == "3" and not reply[0].startswith("304"):
            # A build redirects with a path-absolute Location (it has no host):
            # resolve it against this request, as any other redirect is.
            status, headers, body = reply
            base = get_current_url_from(environ)
            headers = [
                (name, urljoin(base, value) if name.lower() == "location" else value)
                for name, value in headers
            ]
            return status, headers, body
        return reply

    def _run(self, endpoint: Endpoint, state: RequestState, params: dict[str, Any]) -> Reply:
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
                return _OK, SafeHeaders([_JSON_TYPE, ("Content-Length", str(len(body)))]), [body]
            return coerce(result, endpoint.source, state.environ)
        except _HANDLER_ERRORS as exc:  # ControlFlow and gevent.Timeout are BaseExceptions
            state.failed = True
            return self._error(exc, state.environ, endpoint.source)

    # -- static builds -------------------------------------------------------

    def _build(
        self, endpoint: Endpoint, path: str, params: dict[str, Any]
    ) -> tuple[Reply, bool] | None:
        """Run a static GET as at build time: the reply, and whether the handler made it.

        The handler gets a synthetic GET for *path* alone (no query, cookies
        or client headers; ``Host`` is ``static_host``), in a fresh context
        holding nothing the live request or its middleware set. ``None`` when
        it called ``cookies()``, ``headers()`` or ``session()``: the build is
        abandoned and the route is dynamic from then on.
        """
        environ = self._static_environ(path)
        return contextvars.Context().run(self._build_here, endpoint, environ, params)

    def _build_here(
        self, endpoint: Endpoint, environ: WSGIEnviron, params: dict[str, Any]
    ) -> tuple[Reply, bool] | None:
        state = RequestState(self, environ, endpoint.config.dynamic, endpoint.source)
        bind(state)  # this context is the build's alone: nothing to unbind
        try:
            reply = self._run(endpoint, state, params)
        except DynamicUsage:
            reply = None
        if state.dynamic_call is not None:  # even if the handler caught the signal
            if reply is not None:
                close_body(reply[2])
            endpoint.dynamic_reason = f"calls {state.dynamic_call}"
            return None
        assert reply is not None
        if state.touched:  # force-static's own cookie writes: never stored
            reply = self._with_cookies(state, *reply)
        if state.failed and reply[0].startswith("5"):
            logger.error(
                "The static build of %s failed. A static GET runs as at build time: once, for"
                " the path alone, with no request and outside middleware. If it needs"
                " something per request (a value middleware set, a DB session), make it"
                ' dynamic with dynamic = "force-dynamic".',
                endpoint.source,
            )
        return reply, not state.failed

    def _static_environ(self, path: str) -> WSGIEnviron:
        """The synthetic request a static build sees: the path, nothing from a client."""
        return {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": self.static_host,
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": self.static_host,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            BUILD_MARK: True,
        }

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
            if fired is not timeout:  # the handler's own timeout: a 500 like any error
                state.failed = True
                return self._error(fired, state.environ, endpoint.source)
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
        """HEAD served from GET: GET's status and headers, no body.

        A static route answers from its GET entry, or builds one exactly as a
        GET would: the build is a GET, so what it stores is GET's response.
        """
        if get.dynamic_reason is None and self._cache is not None:
            status, headers, body = self._static(get, state, params)
        else:
            status, headers, body = self._run(get, state, params)
        # A streamed GET keeps an unsized empty body, so HEAD is framed as GET
        # is (no "Content-Length: 0"), even through middleware's Response.
        return status, headers, without_body(headers, body, int(status[:3]))

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
        """Render any exception from a handler as a JSON reply.

        As in Flask, an exception no handler claims by class is a 500, so
        ``errorhandler(500)`` (and ``errorhandler(Exception)``, by the MRO)
        catches it; it is logged with its traceback first all the same.
        """
        status = _status_of(exc)
        handler = self._find_handler(exc, status)
        if handler is None and status is None and not isinstance(exc, RequestRedirect):
            handler = self._error_handlers.get(500)
            if handler is not None:
                self._log_unhandled(exc, environ, where)
        if handler is not None:
            return self._custom_error(handler, exc, environ)
        if isinstance(exc, ControlFlow):
            return self._control_flow(exc, environ)
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
        return self._internal_error(exc, environ, where)

    @staticmethod
    def _control_flow(signal: ControlFlow, environ: WSGIEnviron) -> Reply:
        """A redirect() (Location, empty body) or an abort()/not_found() (JSON)."""
        if signal.location is not None:
            # A build has no host of its own: a path-absolute Location serves any.
            if BUILD_MARK in environ:  # WSGI spells the path's UTF-8 bytes as latin-1
                base = environ["PATH_INFO"].encode("latin-1").decode("utf-8", "replace")
            else:
                base = get_current_url_from(environ)
            # An IRI ("/users/東京") is sent percent-encoded: header values are
            # latin-1 on the wire, and browsers decode %-escapes as UTF-8.
            location = iri_to_uri(urljoin(base, signal.location))
            headers = [("Location", location), ("Content-Length", "0"), *signal.headers]
            return status_line(signal.status), headers, []
        return error_reply(signal.status, signal.message, signal.headers)

    @staticmethod
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

    def _internal_error(self, exc: BaseException, environ: WSGIEnviron, where: str) -> Reply:
        self._log_unhandled(exc, environ, where)
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
        except (Exception, _GeventTimeout) as failure:
            # An error handler that fails gets the plain 500, not another handler.
            return self._internal_error(failure, environ, where)
        except ControlFlow as signal:  # abort()/redirect() from the error handler
            return self._control_flow(signal, environ)


def _source_hash(routes: Iterable[Route]) -> str:
    """A build id: the handlers' source files and the microroute version, hashed.

    Contents only, never paths, so every machine running the same code agrees.
    """
    from . import __version__

    parts = set()
    for route in routes:
        for endpoint in route.endpoints.values():
            handler = inspect.unwrap(endpoint.handler)
            code = getattr(handler, "__code__", None)
            try:
                source = Path(code.co_filename).read_bytes() if code is not None else None
            except OSError:
                source = None
            if source is None:  # no file (a handler made at run time): its name stands in
                source = endpoint.source.encode("utf-8", "replace")
            parts.add(hashlib.sha256(source).digest())
    digest = hashlib.sha256(__version__.encode())
    for part in sorted(parts):
        digest.update(part)
    return digest.hexdigest()[:16]


def _is_file_wrapper(body: object, environ: WSGIEnviron) -> bool:
    """A server's ``wsgi.file_wrapper`` (sendfile): handed back untouched."""
    wrapper = environ.get("wsgi.file_wrapper")
    return isinstance(wrapper, type) and isinstance(body, wrapper)


def _status_of(exc: BaseException) -> int | None:
    if isinstance(exc, (ControlFlow, HTTPError)):
        return exc.status
    if isinstance(exc, _WerkzeugHTTPException):
        return exc.code
    return None


def get_current_url_from(environ: WSGIEnviron) -> str:
    """The request URL (ASCII), to resolve relative redirect targets against."""
    host = (
        environ.get("HTTP_HOST")
        or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    )
    # WSGI paths are bytes spelled as latin-1: percent-encode those bytes, so
    # a UTF-8 path is not read back as mojibake.
    root = quote(environ.get("SCRIPT_NAME", "").encode("latin-1"), safe=_PATH_SAFE)
    path = quote(environ.get("PATH_INFO", "").encode("latin-1"), safe=_PATH_SAFE)
    return get_current_url(environ.get("wsgi.url_scheme", "http"), host, root, path)
