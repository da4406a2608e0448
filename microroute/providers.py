"""Providers: a value a handler receives by name, made once per request.

::

    @app.provide("user")
    def current_user(request):
        user = users.by_token(request.headers.get("Authorization"))
        if user is None:
            abort(401)
        return user

    @app.provide("db")
    def database():
        session = Session()
        try:
            yield session              # the handler runs here...
        finally:
            session.close()            # ...and this once the response is done

    @route.post("/posts")
    def create(body: Post, user, db):  # user and db by name, as request is
        ...

A provider may take ``request``, ``params``, the route's path parameters (as
matched, before any conversion) and other provided names. Everything is
decided at registration, per handler: which providers it needs, in which order,
and whether any needs the request; a cycle or a name nothing fills stops
start-up naming the function. Per request the plan calls each needed provider
once (a value two providers and the handler all name is made once), in
dependency order, **before** the handler's typed input is read, so an
``abort(401)`` answers before a 422 about the body.

A generator provider's value is what it yields; the rest of it runs when the
response is done (its body's end, a stream's last chunk, or the client
leaving), in the request's context and thread, before any ``after()`` work, in
the reverse order of set-up. An exception the handler raised is thrown into
it at its ``yield`` (so ``except: session.rollback()`` works); ``abort()`` and
``redirect()`` are answers, not failures, and are not. What a teardown raises
is logged on the ``microroute`` logger and never reaches the client.

A handler that takes no provided name keeps exactly the plan it would have
without providers: they cost nothing where they are not used.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .after_response import at_body_end
from .errors import StartupError
from .requests import Request
from .routing import ProviderSpec

__all__ = ["ProviderPlan", "UnresolvedName", "plan_providers", "visible_providers"]

logger = logging.getLogger("microroute")

#: What a provider may take besides path parameters and other providers.
_PROVIDER_NAMES = ("request", "params")

#: ``solve(request, params)``: the provided values by name, and the generators
#: whose rest runs when the response is done (None when there are none).
Solve = Callable[
    [Request | None, dict[str, Any]], tuple[dict[str, Any], "list[tuple[str, Any]] | None"]
]


class UnresolvedName(StartupError):
    """A handler or provider takes a name nothing fills (yet).

    ``App()`` keeps the route and reports this when the app starts
    (:meth:`~microroute.App.check`), since ``app.provide(name)`` may still
    come after ``App()``.
    """

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


def visible_providers(*scopes: Iterable[ProviderSpec]) -> dict[str, ProviderSpec]:
    """The providers a handler sees, by name: later scopes (nearer ones) win."""
    found: dict[str, ProviderSpec] = {}
    for scope in scopes:
        for spec in scope:
            found[spec.name] = spec
    return found


class _Step:
    """One provider call in a plan: its name, function, arguments, and kind."""

    __slots__ = ("args", "fn", "generator", "name", "source")

    def __init__(self, spec: ProviderSpec, args: tuple[str, ...]) -> None:
        self.name = spec.name
        self.fn = spec.fn
        self.source = spec.source
        self.args = args
        self.generator = inspect.isgeneratorfunction(inspect.unwrap(spec.fn))


class ProviderPlan:
    """What one handler's provided parameters need, decided at registration."""

    __slots__ = ("names", "needs_request", "security", "solve", "steps")

    def __init__(self, names: tuple[str, ...], steps: tuple[_Step, ...]) -> None:
        #: The handler's own parameters that providers fill.
        self.names = names
        self.steps = steps
        self.needs_request = any("request" in step.args for step in steps)
        #: The OpenAPI security schemes of every provider the handler relies on.
        self.security: dict[str, dict[str, Any]] = {}
        self.solve: Solve = _solver(steps)

    def add_security(self, specs: Mapping[str, ProviderSpec]) -> None:
        for step in self.steps:
            scheme = specs[step.name].security
            if scheme is not None:
                self.security[step.name] = scheme


def plan_providers(
    names: Iterable[str],
    providers: Mapping[str, ProviderSpec],
    path_params: tuple[str, ...],
    source: str,
) -> ProviderPlan:
    """The plan that fills *names* (a handler's provided parameters), for the handler *source*.

    Raises :class:`StartupError` for a cycle, a provider that cannot be called
    by name (``async def``, positional-only), and :class:`UnresolvedName` for
    a provider parameter nothing fills.
    """
    order: list[_Step] = []
    done: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in done:
            return
        spec = providers[name]
        if name in chain:
            loop = (*chain[chain.index(name) :], name)
            where = ", ".join(dict.fromkeys(providers[n].source for n in loop))
            raise StartupError(
                f"{spec.source}: providers depend on each other in a cycle:"
                f" {' -> '.join(loop)} ({where})"
            )
        args = _arguments(spec, providers, path_params, source)
        for arg in args:
            if arg in providers and arg not in path_params:
                visit(arg, (*chain, name))
        done.add(name)
        order.append(_Step(spec, args))

    wanted = tuple(names)
    for name in wanted:
        visit(name, ())
    plan = ProviderPlan(wanted, tuple(order))
    plan.add_security(providers)
    return plan


def _arguments(
    spec: ProviderSpec,
    providers: Mapping[str, ProviderSpec],
    path_params: tuple[str, ...],
    handler: str,
) -> tuple[str, ...]:
    """The names *spec*'s function takes, each checked against what can fill it."""
    fn = spec.fn
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise StartupError(
            f"{spec.source}: provider {spec.name!r} is an async function; microroute is WSGI"
            " and calls providers synchronously: use a plain def"
        )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise StartupError(f"{spec.source}: cannot read the provider's signature: {exc}") from None
    args: list[str] = []
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        name = parameter.name
        known = name in _PROVIDER_NAMES or name in path_params or name in providers
        if known and parameter.kind is not parameter.POSITIONAL_ONLY:
            args.append(name)
            continue
        if parameter.default is not parameter.empty:
            continue
        if parameter.kind is parameter.POSITIONAL_ONLY:
            raise StartupError(
                f"{spec.source}: provider {spec.name!r}: parameter {name!r} is positional-only;"
                " provider arguments are passed by name"
            )
        others = sorted(set(providers) - {spec.name})
        choices = ", ".join([*_PROVIDER_NAMES, *path_params, *others])
        raise UnresolvedName(
            f"{spec.source}: provider {spec.name!r} (used by {handler}) takes unknown parameter"
            f" {name!r}; a provider may take {choices}",
            name,
        )
    return tuple(args)


def _solver(steps: tuple[_Step, ...]) -> Solve:
    """The per-request function: each provider called once, in order."""

    def solve(
        request: Request | None, params: dict[str, Any]
    ) -> tuple[dict[str, Any], list[tuple[str, Any]] | None]:
        values: dict[str, Any] = {}
        opened: list[tuple[str, Any]] | None = None
        try:
            for step in steps:
                kwargs: dict[str, Any] = {}
                for arg in step.args:
                    if arg in values:
                        kwargs[arg] = values[arg]
                    elif arg == "request":
                        kwargs[arg] = request
                    elif arg == "params":
                        kwargs[arg] = params
                    else:
                        kwargs[arg] = params[arg]
                if step.generator:
                    generator = step.fn(**kwargs)
                    try:
                        values[step.name] = next(generator)
                    except StopIteration:
                        raise RuntimeError(
                            f"{step.source}: provider {step.name!r} returned without yielding"
                            " a value"
                        ) from None
                    if opened is None:
                        opened = []
                    opened.append((step.source, generator))
                else:
                    values[step.name] = step.fn(**kwargs)
        except BaseException as exc:
            if opened is not None:  # the providers set up so far still get their teardown
                finish(opened, exc)
            raise
        return values, opened

    return solve


def finish(opened: list[tuple[str, Any]], error: BaseException | None) -> None:
    """Run the rest of each generator provider once the response is done.

    Scheduled now, run at the body's end (in the request's thread and
    context, before ``after()`` work), last set up first. *error* (what the
    handler raised, if it failed) is thrown in at the ``yield``; control flow
    (``abort()``, ``redirect()``) is an answer and is not.
    """
    thrown = error if isinstance(error, Exception) else None

    def teardown() -> None:
        for source, generator in reversed(opened):
            _close(source, generator, thrown)

    at_body_end(teardown)


def _close(source: str, generator: Any, error: Exception | None) -> None:
    try:
        if error is None:
            next(generator)
        else:
            generator.throw(error)
    except StopIteration:
        return
    except BaseException as exc:
        if exc is error:  # the handler's own error, not caught by the provider: as expected
            return
        if type(exc).__name__ == "GreenletExit":
            raise
        logger.error(
            "The teardown of provider %s raised %s", source, type(exc).__name__, exc_info=exc
        )
        return
    generator.close()
    logger.error("Provider %s yielded more than once; a provider yields its value once", source)
