"""Handler plans: how a handler is called.

Everything about a handler that can be known before the first request is
decided here once, at registration: which arguments it takes (``request``,
``params``, ``context``, path parameters or provided names, by name), whether a
request object must be built at all, and a small calling function specialised
for that shape. A handler that takes no provided name gets the same plan as if
providers did not exist (:mod:`microroute.providers`).
Per request, :meth:`Endpoint.invoke` just calls; :mod:`microroute.replies`
turns what it returns into a WSGI reply.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import StartupError
from .providers import ProviderPlan, UnresolvedName, finish, plan_providers, visible_providers
from .requests import Request
from .routing import RESERVED_NAMES, Middleware, ProviderSpec, RouteConfig
from .typed import Binder, read_annotations

__all__ = ["Context", "Endpoint"]

Invoke = Callable[[Request | None, dict[str, Any]], Any]


class Context:
    """The second argument of a Next.js route handler: ``context.params``."""

    __slots__ = ("params",)

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def __repr__(self) -> str:
        return f"Context(params={self.params!r})"


class Endpoint:
    """One handler bound to one method of one route, with its calling plan."""

    __slots__ = (
        "config",
        "dynamic_reason",
        "handler",
        "invoke",
        "layers",
        "method",
        "middleware",
        "needs_request",
        "path_params",
        "provided",
        "providers",
        "security",
        "source",
        "streams",
        "template",
        "unresolved",
    )

    def __init__(
        self,
        handler: Callable[..., Any],
        method: str,
        path_params: Iterable[str],
        config: RouteConfig,
        source: str,
        template: str = "",
        middleware: tuple[Middleware, ...] = (),
        providers: tuple[ProviderSpec, ...] = (),
    ) -> None:
        self.handler = handler
        self.method = method
        #: The route's path as written (``/api/posts/[id]``): what logs,
        #: traces and metrics name it by, never the raw path.
        self.template = template
        self.config = config
        self.source = source
        self.path_params = tuple(path_params)
        #: Its routers' providers (the app's own come in :meth:`plan`).
        self.providers = providers
        #: Scoped middleware, outermost first, and the chain the app built of
        #: them (None: none, and dispatch calls the handler directly).
        self.middleware = middleware
        self.layers: Callable[[Request], Any] | None = None
        #: A generator function: its response streams, known before it ever runs.
        self.streams = inspect.isgeneratorfunction(inspect.unwrap(handler))
        #: Why this handler's responses are not cached (None: a static GET);
        #: set by the app at start-up, and again when a build proves it dynamic.
        self.dynamic_reason: str | None = "not a GET" if method != "GET" else None
        self.plan({})

    def plan(self, app_providers: Mapping[str, ProviderSpec]) -> None:
        """Decide how the handler is called, with the app's providers and its routers'.

        A handler that takes a name no provider fills yet may be waiting for
        ``app.provide()``, which comes after ``App()``: what its plan cannot
        decide without that provider (the name is unknown; ``user: User`` reads
        as a second body) is kept in :attr:`unresolved` rather than raised,
        the handler answers 500 naming it, and the app reports it when it
        starts (:meth:`~microroute.App.check`).
        """
        providers = visible_providers(app_providers.values(), self.providers)
        #: The handler's parameters that providers fill, and the OpenAPI
        #: security schemes of the providers it relies on.
        self.provided: tuple[str, ...] = ()
        self.security: dict[str, dict[str, Any]] = {}
        #: The start-up error its plan is waiting on, if any.
        self.unresolved: StartupError | None = None
        try:
            self.invoke, self.needs_request, plan = _plan(
                self.handler, self.path_params, self.source, providers
            )
        except StartupError as problem:
            if not isinstance(problem, UnresolvedName):
                waiting = self._may_wait(providers)
                if not waiting:
                    raise
                names = ", ".join(f"app.provide({name!r})" for name in waiting)
                problem = StartupError(f"{problem} (unless a provider fills it: {names})")
            self.unresolved = problem
            self.invoke, self.needs_request = _unresolved(problem), False
            return
        if plan is not None:
            self.provided, self.security = plan.names, plan.security

    def takes(self, name: str) -> bool:
        """Whether the handler has a parameter called *name*."""
        try:
            return name in inspect.signature(self.handler).parameters
        except (TypeError, ValueError):
            return False

    def _may_wait(self, providers: Mapping[str, ProviderSpec]) -> tuple[str, ...]:
        """The parameters whose provider, still to come, would make the plan work.

        Empty when the plan fails whatever is provided: then it fails now.
        """
        try:
            names = inspect.signature(self.handler).parameters
        except (TypeError, ValueError):
            return ()
        known = {*RESERVED_NAMES, *self.path_params, *providers, "body"}
        waiting = tuple(name for name in names if name not in known)
        if not waiting:
            return ()
        assumed = {**providers, **{n: ProviderSpec(n, _nothing, None, "") for n in waiting}}
        try:
            _plan(self.handler, self.path_params, self.source, assumed)
        except StartupError:
            return ()
        return waiting


def _nothing() -> None:
    """A stand-in provider: what a plan would be once the real one comes."""


def _unresolved(missing: StartupError) -> Invoke:
    def invoke(request: Request | None, params: dict[str, Any]) -> Any:
        raise missing

    return invoke


def _plan(
    fn: Callable[..., Any],
    path_params: tuple[str, ...],
    source: str,
    providers: Mapping[str, ProviderSpec],
) -> tuple[Invoke, bool, ProviderPlan | None]:
    """Inspect *fn* once and return a function that calls it with the right arguments.

    Also whether it needs the request, and the plan of its provided names
    (None when it takes none: then nothing below differs from a world without
    providers).
    """
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        # A WSGI app has no event loop: every request would get a coroutine
        # object back, a 500. Say so at start-up, naming the function.
        kind = "an async generator" if inspect.isasyncgenfunction(fn) else "a coroutine"
        raise StartupError(
            f"{source}: the handler is {kind} function (async def); microroute is WSGI and"
            " calls handlers synchronously (gevent gives them concurrency): use a plain def"
        )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise StartupError(f"{source}: cannot read the handler's signature: {exc}") from None
    # A path parameter is nearer than any provider of the same name: it wins.
    provided = [n for n in signature.parameters if n in providers and n not in path_params]
    plan: ProviderPlan | None = None
    if provided:
        plan = plan_providers(provided, providers, path_params, source)
        # What a provider fills is not typed input, whatever its annotation says.
        signature = signature.replace(
            parameters=[p for p in signature.parameters.values() if p.name not in provided]
        )
    # Annotations that ask for work (conversion, query, body) get a binder;
    # an untyped handler gets None and exactly the plans below.
    binder = read_annotations(fn, signature, path_params, source)
    typed_names = binder.names if binder is not None else frozenset()
    wanted: list[str] = []
    takes_rest = False
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            continue
        if parameter.kind is parameter.VAR_KEYWORD:
            takes_rest = True
            continue
        name = parameter.name
        if name in typed_names or name in provided:
            continue
        known = name in RESERVED_NAMES or name in path_params
        if parameter.kind is parameter.POSITIONAL_ONLY and parameter.default is parameter.empty:
            raise StartupError(
                f"{source}: parameter {name!r} is positional-only; handler arguments are"
                " passed by name"
            )
        if known and parameter.kind is not parameter.POSITIONAL_ONLY:
            wanted.append(name)
        elif parameter.default is parameter.empty:
            choices = ", ".join([*sorted(RESERVED_NAMES), *path_params, *sorted(providers)])
            raise UnresolvedName(
                f"{source}: unknown parameter {name!r}; a handler may take {choices}"
                f" (or a name given to app.provide({name!r}))",
                name,
            )
    if takes_rest:
        wanted.extend(p for p in path_params if p not in wanted)
    needs_request = "request" in wanted
    if plan is not None:
        needs_request = needs_request or plan.needs_request
        if binder is not None:
            needs_request = needs_request or binder.needs_request
        return _provided_invoke(fn, wanted, binder, plan), needs_request, plan
    if binder is not None:
        return _typed_invoke(fn, wanted, binder), needs_request or binder.needs_request, None

    # The common shapes get a dedicated closure: no loop, no dict building.
    if not wanted:
        return (lambda request, params: fn()), False, None
    if set(wanted) == set(path_params) and len(wanted) == len(path_params):
        return (lambda request, params: fn(**params)), False, None
    if wanted == ["request"]:
        return (lambda request, params: fn(request=request)), True, None

    def invoke(request: Request | None, params: dict[str, Any]) -> Any:
        return fn(**_kwargs(wanted, request, params))

    return invoke, needs_request, None


def _kwargs(wanted: list[str], request: Request | None, params: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for name in wanted:
        if name == "request":
            kwargs[name] = request
        elif name == "params":
            kwargs[name] = params
        elif name == "context":
            kwargs[name] = Context(params)
        else:
            kwargs[name] = params[name]
    return kwargs


def _typed_invoke(fn: Callable[..., Any], wanted: list[str], binder: Binder) -> Invoke:
    """Call *fn* with its by-name arguments plus what its annotations read and convert."""
    bind, finish = binder.bind, binder.finish
    if not wanted and finish is None:  # the typed handler that takes only typed input
        return lambda request, params: fn(**bind(request, params))

    def invoke(request: Request | None, params: dict[str, Any]) -> Any:
        kwargs = _kwargs(wanted, request, params)
        kwargs.update(bind(request, params))
        result = fn(**kwargs)
        return finish(result) if finish is not None else result

    return invoke


def _provided_invoke(
    fn: Callable[..., Any], wanted: list[str], binder: Binder | None, plan: ProviderPlan
) -> Invoke:
    """Call *fn* with its providers' values, made before its typed input is read."""
    solve, names = plan.solve, plan.names
    bind = binder.bind if binder is not None else None
    done = binder.finish if binder is not None else None

    def invoke(request: Request | None, params: dict[str, Any]) -> Any:
        values, opened = solve(request, params)
        try:
            kwargs = {name: values[name] for name in names}
            kwargs.update(_kwargs(wanted, request, params))
            if bind is not None:  # after the providers: a 401 comes before a 422
                kwargs.update(bind(request, params))
            result = fn(**kwargs)
            if done is not None:
                result = done(result)
        except BaseException as exc:
            if opened is not None:
                finish(opened, exc)
            raise
        if opened is not None:
            finish(opened, None)
        return result

    return invoke
