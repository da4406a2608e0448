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
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from werkzeug.middleware.proxy_fix import ProxyFix

from .buildid import default_build_id
from .builds import Builder
from .cache import (
    DEFAULT_MAX_BYTES,
    CacheStore,
    DevCache,
    MemoryStore,
    RouteCache,
    static_reason,
)
from .datacache import DataCache, register
from .discovery import discover, discover_middleware
from .dispatch import Dispatcher
from .docs import DocsUI, docs_router
from .errorpages import ErrorHandler, ErrorPages
from .errors import StartupError
from .health import Check, Health
from .lifecycle import Observer, Observers
from .logs import AccessLog
from .middleware import Middleware, chain, check_middleware
from .openapi import document as openapi_document
from .pipeline import Pipeline
from .requestids import RequestIds, install_record_factory
from .routing import ProviderSpec, Router, RouteSpec, normalize_path
from .running import Runner
from .settings import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_JSON_DEPTH,
    DEFAULT_SESSION_MAX_AGE,
    Settings,
    proxy_hops,
)
from .table import Route, RouteTable, build_routes
from .warming import static_paths, warm

__all__ = ["App"]

WSGIEnviron = dict[str, Any]
E = TypeVar("E", bound=ErrorHandler)
M = TypeVar("M", bound=Middleware)
Obs = TypeVar("Obs", bound=Observer)
F = TypeVar("F", bound=Callable[..., Any])


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

    :param app_dir: the ``app/`` folder to discover; a relative one is beside
        the file that calls ``App()``.

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
        ``MICROROUTE_BUILD_ID``, else a hash of the application's modules loaded
        at start-up and the microroute version, so a deploy never serves the old
        code's entries.
    :param static_by_default: ``False`` gives Next.js 15's default: a GET is
        dynamic unless it says ``dynamic = "force-static"`` or ``revalidate = N``.
    :param max_json_depth: ``request.json`` refuses deeper nesting with a 400 (64).
    :param max_form_parts: multipart parts/fields accepted in a form (1000).
    :param max_form_memory_size: bytes a non-file form field may hold (500 kB).
    :param handler_timeout: seconds a handler may run before the client gets a
        504 and the handler is interrupted (``None``: no limit). It relies on
        gevent: the handler is stopped at its next cooperative (I/O) call.
        Streams are exempt once their first chunk is out. In a process gevent
        has not monkey-patched (granian's threads) a handler blocked in plain
        I/O is not interrupted, and the first timed call logs a warning saying so.
    :param request_id_header: the header that carries each request's id, in and
        out (``X-Request-ID``); ``None`` turns request ids off. See
        :mod:`microroute.requestids`.
    :param access_log: write one ``microroute.access`` record per request while
        that logger is enabled for INFO (:mod:`microroute.logs`); ``False``
        writes none and costs nothing, as uvicorn's ``access_log=False``.
    :param docs: a path (``"/docs"``) to serve the API's documentation page at,
        with the OpenAPI document at ``/openapi.json`` (``None``: neither).
    :param docs_ui: the page at *docs*: ``"swagger"`` (Swagger UI, with
        try-it-out, served from the app itself; needs ``pip install
        "microroute[docs]"``) or ``"plain"`` (a page without script that loads
        nothing). See :mod:`microroute.docs`.
    :param title: the API's name, in the OpenAPI document and on the docs page.
    :param version: the API's version (not microroute's), in the document.
    :param description: a paragraph about the API, in the document and on the page.
    :param metrics: a path (``"/metrics"``) to serve Prometheus metrics at, never
        cached and not behind middleware (:mod:`microroute.metrics`; needs the
        ``metrics`` extra).
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
        docs_ui: DocsUI = "swagger",
        title: str = "microroute app",
        version: str = "0.1.0",
        description: str | None = None,
        request_id_header: str | None = "X-Request-ID",
        access_log: bool = True,
        metrics: str | None = None,
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
        self._info = {"title": title, "version": version, "description": description}
        self._providers: dict[str, ProviderSpec] = {}
        self._static_by_default = static_by_default
        #: Paths answered without the middleware around them (the metrics endpoint).
        self._outside_middleware: set[str] = set()

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
            app_dir = _beside_caller(Path(app_dir))
            self.app_dir: Path | None = app_dir
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
            specs.extend(docs_router(self.openapi, docs, ui=docs_ui).specs())
        if metrics is not None:
            from .metrics import Metrics

            scraped = Metrics(metrics)
            specs.extend(scraped.router().specs())
            self._outside_middleware.add(scraped.path)
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
        # @cached functions called while this app serves (and outside any request,
        # until another App is made) keep their values in the same store.
        register(self._table, DataCache(self._cache.store if self._cache is not None else None))
        self._judge_static()
        dispatcher = self._dispatcher = Dispatcher(self._table, self._cache, runner, self._errors)
        # ProxyFix rewrites the environ in place, once, before anything reads it.
        proxy_fix: Any = (
            ProxyFix(_environ_of, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
            if hops
            else None
        )
        Pipeline.__init__(self, settings, self._table, dispatcher, self._errors, proxy_fix)
        if metrics is not None:
            self.observe(scraped)
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
        if access_log:
            self.observe(AccessLog())

    def _judge_static(self, endpoints: Iterable[object] | None = None) -> None:
        """Decide, for each GET (or those of *endpoints*), whether it is static, and why not."""
        for route in self._table.routes:
            get = route.endpoints.get("GET")
            if get is None or (endpoints is not None and get not in endpoints):
                continue
            get.dynamic_reason = (
                static_reason(route, get, self._static_by_default)
                if self._cache is not None
                else "cache off"
            )

    @property
    def debug(self) -> bool:
        """Whether 500 responses carry the traceback (never in production)."""
        return self.settings.debug

    @debug.setter
    def debug(self, value: bool) -> None:
        self._configure(dataclasses.replace(self.settings, debug=value))

    def develop(self) -> None:
        """Serve as ``microroute dev`` does: debug on, static GETs built on every request.

        Each static GET is built again for its request (still as at build
        time: no query, no cookies, outside middleware) and never kept, so a
        change shows at once; its reply says ``X-Microroute-Cache: DEV``. Never
        in production: nothing is cached, and errors show your code.
        """
        self.debug = True
        if self._cache is not None and not isinstance(self._cache, DevCache):
            cache = DevCache(self._builder.build, self._dispatcher.runner.run)
            self._cache = self._dispatcher.cache = cache
            self._wire_fast_path()

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
        the contents of every application module loaded at start-up (outside
        the standard library and site-packages), the handlers' files and the
        microroute version (:mod:`microroute.buildid`).
        """
        if self._build_id is None:
            self._build_id = default_build_id(self._table.routes)
        return self._build_id

    def revalidate_path(self, path: str, *, subtree: bool = False, expire: bool = False) -> int:
        """Revalidate the cached response of *path*; returns how many entries it reached.

        As Next.js 16's ``revalidatePath`` with the ``"max"`` profile: the entry
        turns stale, and the next request gets the old response while one build
        refreshes it. ``expire=True`` drops it instead, so the next request
        waits for a fresh one (a webhook, reading your own write). With
        ``subtree=True`` everything below *path* too
        (``app.revalidate_path("/blog", subtree=True)``). With a shared store
        this reaches every worker; a ``RedisStore`` revalidates a subtree with
        one counter, without finding its entries, so it returns 0 for one.
        """
        if self._cache is None:
            return 0
        # Entries are keyed by the WSGI path: UTF-8 bytes spelled as latin-1.
        key = normalize_path(unquote(path)).encode().decode("latin-1")
        return self._cache.delete_path(key, subtree, expire)

    def revalidate_tag(self, tag: str, *, expire: bool = False) -> int:
        """Revalidate every cached response and ``@cached`` value carrying *tag*.

        As Next.js 16's ``revalidateTag(tag, "max")``: ``tags = ["posts"]`` in a
        ``route.py`` (or ``@route.get("/posts", tags=["posts"])``, or
        ``@cached(tags=["posts"])``), then ``app.revalidate_tag("posts")`` after
        a write. By default tagged entries turn stale: the next request gets
        the old one while one build refreshes it. ``expire=True`` drops them,
        so the next request waits for a fresh one. With a shared store this
        reaches every worker. Returns how many entries it reached (0 on a
        ``RedisStore``, which revalidates a tag with one counter, race-free).
        """
        if self._cache is None:
            return 0
        return self._cache.delete_tag(tag, expire)

    def warm(self, paths: Iterable[str] = ()) -> list[tuple[str, str]]:
        """Build the static entries of this build id now, before traffic arrives.

        Every static route without parameters, the paths each route file's
        ``generate_static_params()`` lists, and *paths*, built as at build
        time and stored; returns ``(path, what happened)`` for each
        (:mod:`microroute.warming`). ``microroute warm`` calls this.
        """
        return warm(self._table, self._cache, dict.fromkeys([*static_paths(self._table), *paths]))

    @property
    def cache_store(self) -> CacheStore | None:
        """Where this app's static responses and ``@cached`` values live (None: cache off)."""
        return self._cache.store if self._cache is not None else None

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

    def openapi(self, *, title: str | None = None, version: str | None = None) -> dict[str, Any]:
        """The OpenAPI 3.1 document of every route (typed parameters, bodies, responses).

        Its ``info`` is ``App(title=..., version=..., description=...)``; *title*
        and *version* override them for this call. ``App(docs="/docs")`` serves it
        at ``/openapi.json``, with a page at ``/docs``.
        """
        return openapi_document(
            self.routes,
            title=title if title is not None else self._info["title"] or "microroute app",
            version=version if version is not None else self._info["version"] or "0.1.0",
            description=self._info["description"],
        )

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

    def provide(self, name: str, *, security: dict[str, Any] | None = None) -> Callable[[F], F]:
        """Fill every handler parameter called *name* with what a function returns.

        >>> @app.provide("user", security={"type": "http", "scheme": "bearer"})  # doctest: +SKIP
        ... def current_user(request):
        ...     user = users.by_token(request.headers.get("Authorization", ""))
        ...     if user is None:
        ...         abort(401)
        ...     return user

        The function may take ``request``, ``params``, the route's path
        parameters and other provided names; it runs once per request, before
        the body is validated (a 401 before a 422); a generator function's code
        after its ``yield`` runs once the response is done. A route whose
        handler takes it is dynamic. *security*, an OpenAPI security scheme, is
        documented on every route that relies on it. A router's own provider
        of the same name (``router.provide``) wins for its routes. See
        :mod:`microroute.providers`.
        """

        def register(fn: F) -> F:
            spec = ProviderSpec.build(name, fn, security)
            if name in self._providers:
                raise ValueError(
                    f"{spec.source}: the app already provides {name!r}"
                    f" ({self._providers[name].source})"
                )
            self._providers[name] = spec
            # The plans this can change: those waiting for a provider, and those
            # of handlers that take the name (``user: int`` read as a query
            # parameter until now). A router's own provider of it still wins.
            again = [
                endpoint
                for route in self._table.routes
                for endpoint in route.endpoints.values()
                if endpoint.unresolved is not None or endpoint.takes(name)
            ]
            for endpoint in again:
                endpoint.plan(self._providers)
            self._judge_static(again)
            return fn

        return register

    def check(self) -> App:
        """Raise what ``App()`` had to leave for the app's start; returns the app.

        A handler (or provider) parameter that nothing fills is not an error
        inside ``App()``, since ``app.provide(name)`` may still come after it.
        ``microroute run``, ``dev``, ``routes`` and ``openapi``,
        ``microroute.wsgi`` and the TestClient call this once the app is
        built; under another server such a route answers 500 naming the
        parameter. Call it yourself at the end of your module to make that
        server refuse to start instead.

        :raises StartupError: naming the file, the function and the parameter.
        """
        for route in self.routes:
            for method in route.methods:
                missing = route.endpoints[method].unresolved
                if missing is not None:
                    raise missing
        return self

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
        self._call_next = chain(
            self._middleware, self._core, self._errors, self._outside_middleware
        )
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


def _beside_caller(app_dir: Path) -> Path:
    """A relative ``app_dir`` is the folder beside the file that wrote ``App(...)``.

    So ``App(app_dir="app")`` in ``project/main.py`` is ``project/app`` whatever
    folder the server started in; typed at a prompt (no file), it is the
    current folder's.
    """
    if app_dir.is_absolute():
        return app_dir
    frame = sys._getframe(2)  # App.__init__'s caller (_beside_caller is one down)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("microroute."):
        frame = frame.f_back  # type: ignore[assignment]
    file = frame.f_globals.get("__file__") if frame is not None else None
    if not file:
        return app_dir
    return Path(file).resolve().parent / app_dir
