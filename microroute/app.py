"""The WSGI application: ``App`` names a request's stages and wires them, once.

::

    server -> Pipeline (request scope, limits, the HIT fast path, observers)
           -> middleware -> Dispatcher -> RouteCache (static GETs: Builder)
           -> Runner (the handler) -> replies (coercion) -> on the wire -> server

Each stage lives in its own module and can be read alone
(:mod:`~microroute.pipeline`, :mod:`~microroute.middleware`,
:mod:`~microroute.dispatch`, :mod:`~microroute.cache`,
:mod:`~microroute.builds`, :mod:`~microroute.running`,
:mod:`~microroute.replies`, :mod:`~microroute.errorpages`); they read their
configuration from one frozen :class:`~microroute.settings.Settings`, never
from the app. Everything that can be decided before the first request (the
route table, each handler's calling plan, ``Allow`` headers) is decided in
``App()``; a bad route stops start-up there with an error naming the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from werkzeug.middleware.proxy_fix import ProxyFix

from .builds import Builder
from .cache import DEFAULT_MAX_BYTES, CacheStore, MemoryStore, RouteCache, static_reason
from .discovery import discover, discover_middleware
from .dispatch import Dispatcher
from .errorpages import ErrorHandler, ErrorPages
from .errors import StartupError
from .health import Check, Health
from .lifecycle import Observer, Observers
from .logs import AccessLog
from .middleware import Middleware, chain, check_middleware
from .openapi import docs_router
from .openapi import document as openapi_document
from .pipeline import Pipeline
from .requestids import RequestIds, install_record_factory
from .routing import Router, RouteSpec, normalize_path
from .running import Runner
from .settings import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_JSON_DEPTH,
    DEFAULT_SESSION_MAX_AGE,
    Settings,
    proxy_hops,
)
from .table import Route, RouteTable, build_routes

__all__ = ["App"]

WSGIEnviron = dict[str, Any]
E = TypeVar("E", bound=ErrorHandler)
M = TypeVar("M", bound=Middleware)
Obs = TypeVar("Obs", bound=Observer)


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+").fullmatch


def _environ_of(environ: WSGIEnviron, start_response: Any) -> Any:
    """The "app" behind ProxyFix: hands back the environ it rewrote."""
    return environ


class App(Pipeline):
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
    :param request_id_header: the header that carries each request's id, in and
        out (``X-Request-ID``); ``None`` turns request ids off. See
        :mod:`microroute.requestids`.
    :param docs: a path (``"/docs"``) to serve an HTML page listing every
        operation, with the OpenAPI document at ``/openapi.json`` (``None``: neither).
    :param health: serve ``GET /healthz`` (200 while serving) and ``GET /readyz``
        (200 when ready; 503 once a graceful stop began, or while a check added
        with :meth:`ready_check` fails), before middleware, never cached, never
        logged at INFO. See :mod:`microroute.health`.
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
        request_id_header: str | None = "X-Request-ID",
        health: bool = False,
    ) -> None:
        for router in routers:
            if not isinstance(router, Router):
                raise TypeError(
                    f"App() takes Router objects, got {type(router).__name__};"
                    " pass a folder as App(app_dir=...)"
                )
        hops = proxy_hops(trust_proxy)
        settings = Settings(
            debug=debug,
            secret_key=Settings.secret_from_env(secret_key),
            max_body_size=max_body_size,
            trust_proxy=hops,
            session_cookie=session_cookie,
            session_max_age=session_max_age,
            max_json_depth=max_json_depth,
            max_form_parts=max_form_parts,
            max_form_memory_size=max_form_memory_size,
            handler_timeout=handler_timeout,
            static_host=static_host,
            static_by_default=static_by_default,
        )
        self._build_id = build_id or os.environ.get("MICROROUTE_BUILD_ID") or None
        self._middleware: list[Middleware] = []
        self._observers: list[Observer] = []

        specs: list[RouteSpec] = []
        found_middleware: Middleware | None = None
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
            found_middleware = discover_middleware(app_dir)
        else:
            self.app_dir = None
        for router in routers:
            try:
                specs.extend(router.specs())
            except ValueError as exc:
                raise StartupError(str(exc)) from None
        if docs is not None:
            specs.extend(docs_router(self.openapi, docs).specs())
        self._probes = Health() if health else None
        if self._probes is not None:
            specs.extend(self._probes.router().specs())
        self._table = RouteTable(build_routes(specs))

        # The stages, innermost first; each gets the settings, none the app.
        self._errors = ErrorPages(settings)
        runner = Runner(self._errors, settings.handler_timeout)
        self._builder = Builder(settings, self._table, runner, self._errors)
        if os.environ.get("MICROROUTE_CACHE", "").strip().lower() in ("0", "false", "no", "off"):
            cache = False
        self._cache: RouteCache | None = None
        if cache is not False:
            store = MemoryStore(cache_max_bytes) if cache is True else cache
            if not isinstance(store, CacheStore):
                raise TypeError(f"cache= takes True, False or a CacheStore, got {cache!r}")
            shared = not isinstance(store, MemoryStore)
            build_id = self.build_id if shared else ""
            self._cache = RouteCache(store, self._builder.build, runner.run, build_id)
        for route in self._table.routes:
            get = route.endpoints.get("GET")
            if get is not None:
                get.dynamic_reason = (
                    static_reason(route, get, static_by_default)
                    if self._cache is not None
                    else "cache off"
                )
        dispatcher = Dispatcher(self._table, self._cache, runner, self._errors)
        # ProxyFix rewrites the environ in place, once, before anything reads it.
        proxy_fix: Any = (
            ProxyFix(_environ_of, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
            if hops
            else None
        )
        Pipeline.__init__(self, settings, self._table, dispatcher, self._errors, proxy_fix)
        self._health = self._probes
        if found_middleware is not None:
            self.use(found_middleware)
        self._wire_fast_path()
        install_record_factory()  # every log record gets .request_id
        if request_id_header is not None:
            if not _TOKEN(request_id_header):
                raise ValueError(
                    f"request_id_header must be a header name, got {request_id_header!r}"
                )
            self.observe(RequestIds(request_id_header))
        self.observe(AccessLog())

    @property
    def debug(self) -> bool:
        """Whether 500 responses carry the traceback (never in production)."""
        return self.settings.debug

    @debug.setter
    def debug(self, value: bool) -> None:
        self._configure(dataclasses.replace(self.settings, debug=value))

    def _configure(self, settings: Settings) -> None:
        """Hand new settings to every stage that reads them."""
        self.settings = settings
        self._errors.settings = settings
        self._builder.settings = settings

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
        return self._table.has_handler(path, method)

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
            self._errors.handlers[key] = fn
            return fn

        return register

    def ready_check(self, check: Check) -> Check:
        """Add a readiness check: ``/readyz`` is a 503 while it returns a falsy value or raises.

        >>> @app.ready_check                              # doctest: +SKIP
        ... def database():
        ...     return db.ping()

        Needs ``App(health=True)``.
        """
        if self._probes is None:
            raise RuntimeError(
                "ready_check() needs the probes: App(..., health=True) serves /healthz and /readyz"
            )
        return self._probes.add(check)

    def use(self, middleware: M) -> M:
        """Add *middleware*, ``mw(request, call_next) -> response``; returns it.

        Middleware run in the order added, around routing; see
        :mod:`microroute.middleware`.
        """
        check_middleware(middleware)
        self._middleware.append(middleware)
        self._call_next = chain(self._middleware, self._core, self._errors)
        self._wire_fast_path()  # middleware must run around cached responses too
        return middleware

    def observe(self, observer: Obs) -> Obs:
        """Watch every request's life with *observer* (:mod:`microroute.lifecycle`).

        The seam the access log, request ids, tracing and metrics plug into;
        returns the observer.
        """
        self._observers.append(observer)
        self._observing = Observers(self._observers)
        return observer

    def _wire_fast_path(self) -> None:
        """A HIT skips every stage when no middleware must run around it.

        Observers still see it: the fast path tells them (the route is the
        entry's), and a HIT is a dict lookup plus their hooks.
        """
        cache = self._cache
        self._fast = cache.fast if cache is not None and not self._middleware else None


def _source_hash(routes: Iterable[Route]) -> str:
    """A build id: the handlers' source files and the microroute version, hashed.

    Contents only, never paths, so every machine running the same code agrees.
    """
    from .version import __version__

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
