"""Handler plans: how a handler is called.

Everything about a handler that can be known before the first request is
decided here once, at registration: which arguments it takes (``request``,
``params``, ``context`` or path parameters by name), whether a request object
must be built at all, and a small calling function specialised for that shape.
Per request, :meth:`Endpoint.invoke` just calls; :mod:`microroute.replies`
turns what it returns into a WSGI reply.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from .errors import StartupError
from .requests import Request
from .routing import RESERVED_NAMES, RouteConfig
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
        "method",
        "needs_request",
        "source",
        "streams",
        "template",
    )

    def __init__(
        self,
        handler: Callable[..., Any],
        method: str,
        path_params: Iterable[str],
        config: RouteConfig,
        source: str,
        template: str = "",
    ) -> None:
        self.handler = handler
        self.method = method
        #: The route's path as written (``/api/posts/[id]``): what logs,
        #: traces and metrics name it by, never the raw path.
        self.template = template
        self.config = config
        self.source = source
        self.invoke, self.needs_request = _plan(handler, tuple(path_params), source)
        #: A generator function: its response streams, known before it ever runs.
        self.streams = inspect.isgeneratorfunction(inspect.unwrap(handler))
        #: Why this handler's responses are not cached (None: a static GET);
        #: set by the app at start-up, and again when a build proves it dynamic.
        self.dynamic_reason: str | None = "not a GET" if method != "GET" else None

    def __repr__(self) -> str:
        return f"<Endpoint {self.method} {self.source}>"


def _plan(fn: Callable[..., Any], path_params: tuple[str, ...], source: str) -> tuple[Invoke, bool]:
    """Inspect *fn* once and return a function that calls it with the right arguments."""
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
        if name in typed_names:
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
            choices = ", ".join([*sorted(RESERVED_NAMES), *path_params])
            raise StartupError(
                f"{source}: unknown parameter {name!r}; a handler may take {choices}"
            )
    if takes_rest:
        wanted.extend(p for p in path_params if p not in wanted)
    needs_request = "request" in wanted
    if binder is not None:
        return _typed_invoke(fn, wanted, binder), needs_request or binder.needs_request

    # The common shapes get a dedicated closure: no loop, no dict building.
    if not wanted:
        return (lambda request, params: fn()), False
    if set(wanted) == set(path_params) and len(wanted) == len(path_params):
        return (lambda request, params: fn(**params)), False
    if wanted == ["request"]:
        return (lambda request, params: fn(request=request)), True

    def invoke(request: Request | None, params: dict[str, Any]) -> Any:
        return fn(**_kwargs(wanted, request, params))

    return invoke, needs_request


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
