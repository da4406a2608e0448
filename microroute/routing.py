"""Routers and the path syntax they share with ``app/`` folders.

A path is written the way Next.js names folders::

    /users/[id]            one segment          id: str
    /docs/[...slug]        one or more          slug: list[str]
    /shop/[[...path]]      zero or more         path: list[str] ([] when absent)
    /files/<int:id>        werkzeug converters are accepted as they are

:func:`parse_path` turns that into werkzeug rule strings once, at registration;
:class:`Router` collects handlers with their method, path and config, to be
compiled by :class:`~microroute.App`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import keyword
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "METHODS",
    "PathPattern",
    "ProviderSpec",
    "RouteConfig",
    "RouteSpec",
    "Router",
    "dot_or_empty_segment",
    "parse_path",
    "route",
]

#: The methods a ``route.py`` may export, in the order the route table lists them.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

_DYNAMIC_VALUES = ("auto", "force-dynamic", "force-static", "error")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WERKZEUG_VAR = re.compile(
    r"<(?:(?P<converter>[A-Za-z_][A-Za-z0-9_]*)(?:\((?P<args>.*?)\))?:)?(?P<name>[^>]*)>"
)
# Names a handler receives by position in the plan; a path parameter may not shadow them.
RESERVED_NAMES = frozenset({"request", "params", "context"})

Handler = Callable[..., Any]
F = TypeVar("F", bound=Handler)
#: ``mw(request, call_next) -> response`` (see :mod:`microroute.middleware`).
Middleware = Callable[..., Any]
M = TypeVar("M", bound=Middleware)

#: The scheme types an OpenAPI 3.1 ``securitySchemes`` entry may name.
_SECURITY_TYPES = ("apiKey", "http", "mutualTLS", "oauth2", "openIdConnect")


@dataclass(frozen=True)
class RouteConfig:
    """Route segment config, named as in Next.js (``dynamic``, ``revalidate``, ``tags``).

    ``tags`` name the route's cached responses for ``app.revalidate_tag(tag)``,
    as Next.js's ``revalidateTag``.
    """

    dynamic: str = "auto"
    revalidate: int | float | bool = False
    tags: tuple[str, ...] = ()

    @classmethod
    def build(cls, where: str, **config: Any) -> RouteConfig:
        """Validate config keywords; errors name *where* the config came from."""
        unknown = sorted(set(config) - {"dynamic", "revalidate", "tags"})
        if unknown:
            raise TypeError(
                f"{where}: unknown route config {', '.join(unknown)}"
                " (expected dynamic=, revalidate= or tags=)"
            )
        dynamic = config.get("dynamic", "auto")
        if dynamic not in _DYNAMIC_VALUES:
            raise ValueError(
                f"{where}: dynamic must be one of {', '.join(map(repr, _DYNAMIC_VALUES))},"
                f" got {dynamic!r}"
            )
        revalidate = config.get("revalidate", False)
        valid_number = (
            isinstance(revalidate, (int, float))
            and not isinstance(revalidate, bool)
            and revalidate >= 0
        )
        if revalidate is not False and not valid_number:
            raise ValueError(
                f"{where}: revalidate must be False, 0 or a number of seconds, got {revalidate!r}"
            )
        tags = config.get("tags", ())
        if isinstance(tags, str) or not isinstance(tags, (list, tuple)):
            raise ValueError(f"{where}: tags must be a list of strings, got {tags!r}")
        for tag in tags:
            if not isinstance(tag, str) or not tag or not tag.isprintable():
                raise ValueError(
                    f"{where}: each tag must be a non-empty printable str, got {tag!r}"
                )
        return cls(dynamic=dynamic, revalidate=revalidate, tags=tuple(dict.fromkeys(tags)))


@dataclass(frozen=True)
class PathPattern:
    """A parsed route path.

    ``rules`` holds the werkzeug rule strings (two for an optional catch-all: the
    bare parent and the one with segments); ``empty_lists`` names the catch-all
    that is ``[]`` on the bare rule. ``shape`` is the path with parameter names
    erased, so ``/posts/[id]`` and ``/posts/[slug]`` are seen as the same URL.
    ``segments`` keeps each segment as ``(kind, text)``, kind being ``static``,
    ``param``, ``catchall``, ``optional`` or ``werkzeug`` (a converter).
    """

    path: str
    rules: tuple[str, ...]
    params: tuple[str, ...]
    shapes: tuple[str, ...]
    empty_lists: tuple[str, ...] = ()
    segments: tuple[tuple[str, str], ...] = ()

    @property
    def is_static(self) -> bool:
        return not self.params


def _segment(segment: str, last: bool, where: str) -> tuple[str, str, str | None, str]:
    """Translate one segment: (werkzeug rule part, shape part, param name, kind)."""
    if "<" in segment or ">" in segment:
        names = [m.group("name") for m in _WERKZEUG_VAR.finditer(segment)]
        if (
            not names
            or _WERKZEUG_VAR.sub("", segment).count("<")
            or any(not _IDENTIFIER.match(n) for n in names)
        ):
            raise ValueError(f"{where}: bad segment {segment!r}")
        shape = _WERKZEUG_VAR.sub(lambda m: f"<{m.group('converter') or 'default'}>", segment)
        if len(names) != 1:
            raise ValueError(f"{where}: segment {segment!r} holds more than one parameter")
        return segment, shape, names[0], "werkzeug"
    if "[" not in segment and "]" not in segment:
        if segment.startswith("{") and segment.endswith("}") and len(segment) > 2:
            # FastAPI's and OpenAPI's spelling: as a literal segment it would never match.
            name = segment[1:-1].partition(":")[0]
            raise ValueError(
                f"{where}: bad segment {segment!r}: paths write a parameter as [{name}]"
                f" (as Next.js folders do), not {segment}"
            )
        return segment, segment, None, "static"
    if segment.startswith("[[...") and segment.endswith("]]"):
        name, kind, shape = segment[5:-2], "optional", "[[...]]"
    elif segment.startswith("[...") and segment.endswith("]"):
        name, kind, shape = segment[4:-1], "catchall", "[...]"
    elif segment.startswith("[") and segment.endswith("]"):
        name, kind, shape = segment[1:-1], "param", "[]"
    else:
        raise ValueError(
            f"{where}: bad segment {segment!r}: a dynamic segment is a whole segment,"
            " written [name], [...name] or [[...name]]"
        )
    if not _IDENTIFIER.match(name) or keyword.iskeyword(name):
        raise ValueError(
            f"{where}: bad segment name {segment!r}: {name!r} is not a Python identifier,"
            " so no handler parameter could receive it"
        )
    if kind != "param" and not last:
        raise ValueError(f"{where}: catch-all segment {segment!r} must be the last segment")
    rule = f"<{name}>" if kind == "param" else f"<segments:{name}>"
    return rule, shape, name, kind


def normalize_path(path: str) -> str:
    """``"users/"`` -> ``"/users"``: one leading slash, no trailing slash."""
    path = "/" + path.strip("/")
    return path


def dot_or_empty_segment(path: str) -> str | None:
    """Why a request path is refused before routing, or ``None`` when it is clean.

    A ``.``, ``..`` or empty segment (``/files/a/../../etc``, ``/a//b``) is
    refused rather than resolved: browsers resolve dot segments before they
    send a URL (the URL standard, which Next.js's parser follows), so only a
    hand-made request holds one, and resolving it here, after middleware has
    seen the raw path, would let ``/public/../admin`` pass a middleware's check
    for ``/admin``. A catch-all never receives ``.``, ``..`` or ``""``. One
    trailing slash is not an empty segment: it redirects to the path without it.

    >>> dot_or_empty_segment("/files/a/../b")
    "Invalid path: a '..' segment"
    >>> dot_or_empty_segment("/users/") is None
    True
    """
    if "/." not in path and "//" not in path:
        return None  # the common case: one scan each, at C speed
    segments = path.split("/")
    del segments[0]  # before the leading slash
    if len(segments) > 1 and not segments[-1]:
        del segments[-1]  # after the trailing slash
    for segment in segments:
        if segment in (".", ".."):
            return f"Invalid path: a {segment!r} segment"
        if not segment:
            return "Invalid path: an empty segment (two slashes in a row)"
    return None


def parse_path(path: str, where: str = "") -> PathPattern:
    """Parse a route path once, at registration.

    >>> parse_path("/docs/[...slug]").rules
    ('/docs/<segments:slug>',)
    >>> parse_path("/shop/[[...path]]").rules
    ('/shop', '/shop/<segments:path>')
    """
    where = where or repr(path)
    if not isinstance(path, str):
        raise TypeError(f"{where}: a route path must be a str, got {type(path).__name__}")
    if "//" in path.rstrip("/"):
        raise ValueError(f"{where}: empty segment in path {path!r}")
    path = normalize_path(path)
    segments = [s for s in path.split("/") if s]
    rule_parts: list[str] = []
    shape_parts: list[str] = []
    params: list[str] = []
    optional: str | None = None
    kinds: list[tuple[str, str]] = []
    for index, segment in enumerate(segments):
        rule, shape, name, kind = _segment(segment, index == len(segments) - 1, where)
        kinds.append((kind, segment))
        if name is not None:
            if name in params:
                raise ValueError(f"{where}: parameter {name!r} appears twice in {path!r}")
            if name in RESERVED_NAMES:
                raise ValueError(
                    f"{where}: path parameter {name!r} clashes with the handler argument"
                    f" of the same name; rename the segment"
                )
            params.append(name)
        if kind == "optional":
            optional = name
        rule_parts.append(rule)
        shape_parts.append(shape)
    full_rule = "/" + "/".join(rule_parts)
    full_shape = "/" + "/".join(shape_parts)
    if optional is None:
        return PathPattern(path, (full_rule,), tuple(params), (full_shape,), segments=tuple(kinds))
    bare_rule = "/" + "/".join(rule_parts[:-1])
    bare_shape = "/" + "/".join(shape_parts[:-1])
    return PathPattern(
        path,
        (bare_rule, full_rule),
        tuple(params),
        (bare_shape, full_shape.replace("[[...]]", "[...]")),
        empty_lists=(optional,),
        segments=tuple(kinds),
    )


@dataclass(frozen=True)
class ProviderSpec:
    """``provide(name)``'s registration: the function that fills parameters called *name*.

    :mod:`microroute.providers` turns these into a handler's calling plan.
    """

    name: str
    fn: Handler
    #: An OpenAPI security scheme the routes using it document, or None.
    security: dict[str, Any] | None
    source: str

    @classmethod
    def build(cls, name: str, fn: Any, security: Any = None) -> ProviderSpec:
        """Validate a registration; errors name the function."""
        if not callable(fn):
            raise TypeError(f"provide({name!r}) takes a function, got {fn!r}")
        source = describe(fn)
        if not isinstance(name, str) or not _IDENTIFIER.match(name) or keyword.iskeyword(name):
            raise ValueError(f"{source}: provide() takes a parameter name, got {name!r}")
        if name in RESERVED_NAMES:
            raise ValueError(
                f"{source}: {name!r} is always the {name} itself; provide another name"
            )
        if security is not None:
            kind = security.get("type") if isinstance(security, dict) else None
            if kind not in _SECURITY_TYPES:
                raise ValueError(
                    f"{source}: security= takes an OpenAPI security scheme, a dict whose"
                    f" type is one of {', '.join(_SECURITY_TYPES)}; got {security!r}"
                )
            security = dict(security)
        return cls(name, fn, security, source)


@dataclass(frozen=True)
class RouteSpec:
    """One handler for one method on one path, before compilation."""

    path: str
    method: str
    handler: Handler
    config: RouteConfig
    source: str
    #: Discovered route files own their URL: a second file on it is a conflict.
    file: str | None = None
    #: Scoped middleware around this handler, outermost first (``router.use``,
    #: a ``middleware.py`` in a folder above the route file).
    middleware: tuple[Middleware, ...] = ()
    #: The providers its routers declared (``router.provide``), by name.
    providers: tuple[ProviderSpec, ...] = ()


def describe(handler: Handler) -> str:
    """``"hello.py:12 hello()"`` — how errors and the route table name a handler."""
    name = getattr(handler, "__qualname__", None) or repr(handler)
    code = getattr(inspect.unwrap(handler), "__code__", None)
    if code is None:
        return f"{name}()"
    filename = code.co_filename
    with contextlib.suppress(ValueError):  # another drive, on Windows
        relative = os.path.relpath(filename)
        if not relative.startswith(".."):
            filename = relative
    return f"{filename}:{code.co_firstlineno} {name}()"


class Router:
    """A collection of route handlers, declared with decorators.

    >>> api = Router()
    >>> @api.get("/users/[id]")
    ... def user(id):
    ...     return {"id": id}
    >>> app = App(api)  # doctest: +SKIP

    Routers nest: ``parent.include(child, prefix="/v1")``. Inclusion is by
    reference, so routes added to *child* later still reach the app, which
    compiles everything once when it is created.
    """

    def __init__(self) -> None:
        self._specs: list[RouteSpec] = []
        self._includes: list[tuple[Router, str]] = []
        self._middleware: list[Middleware] = []
        self._providers: dict[str, ProviderSpec] = {}

    def __repr__(self) -> str:
        return f"<Router {len(self._specs)} handlers, {len(self._includes)} included>"

    def add(
        self,
        path: str,
        handler: F,
        methods: Iterable[str] = ("GET",),
        **config: Any,
    ) -> F:
        """Register *handler* for *methods* on *path*; returns the handler unchanged."""
        if not callable(handler):
            raise TypeError(f"handler for {path!r} must be callable, got {handler!r}")
        source = describe(handler)
        if isinstance(methods, str):
            methods = [methods]
        methods = [m.upper() for m in methods]
        if not methods:
            raise ValueError(f"{source}: methods must name at least one HTTP method")
        for method in methods:
            if not _TOKEN.match(method):
                raise ValueError(f"{source}: {method!r} is not an HTTP method")
        parse_path(path, source)  # fail now, at the decorator, not at App()
        route_config = RouteConfig.build(source, **config)
        for method in methods:
            self._specs.append(RouteSpec(path, method, handler, route_config, source))
        return handler

    def _decorator(self, method: str, path: str, config: dict[str, Any]) -> Callable[[F], F]:
        def register(handler: F) -> F:
            return self.add(path, handler, methods=(method,), **config)

        return register

    def get(self, path: str, **config: Any) -> Callable[[F], F]:
        """Register a GET handler: ``@route.get("/users/[id]")``."""
        return self._decorator("GET", path, config)

    def post(self, path: str, **config: Any) -> Callable[[F], F]:
        """Register a POST handler."""
        return self._decorator("POST", path, config)

    def put(self, path: str, **config: Any) -> Callable[[F], F]:
        """Register a PUT handler."""
        return self._decorator("PUT", path, config)

    def patch(self, path: str, **config: Any) -> Callable[[F], F]:
        """Register a PATCH handler."""
        return self._decorator("PATCH", path, config)

    def delete(self, path: str, **config: Any) -> Callable[[F], F]:
        """Register a DELETE handler."""
        return self._decorator("DELETE", path, config)

    def head(self, path: str, **config: Any) -> Callable[[F], F]:
        """Register a HEAD handler (without one, HEAD is served from GET)."""
        return self._decorator("HEAD", path, config)

    def options(self, path: str, **config: Any) -> Callable[[F], F]:
        """Register an OPTIONS handler (without one, OPTIONS gets 204 and ``Allow``)."""
        return self._decorator("OPTIONS", path, config)

    def use(self, middleware: M) -> M:
        """Wrap this router's routes (and those it includes) in *middleware*; returns it.

        ``mw(request, call_next) -> response``, as for ``app.use()``, but only
        around these routes, wherever they are included: inside the app's own
        middleware, after routing, around the cache (so on every cached HIT of
        these routes too). The first added is outermost; a router's middleware
        wraps that of the routers it includes. Add it before ``App(router)``.

        >>> admin = Router()
        >>> admin.use(require_staff)                              # doctest: +SKIP
        >>> api.include(admin, prefix="/admin")                   # doctest: +SKIP
        """
        if not callable(middleware):
            raise TypeError(
                f"use() takes a middleware function mw(request, call_next), got {middleware!r}"
            )
        self._middleware.append(middleware)
        return middleware

    def provide(self, name: str, *, security: dict[str, Any] | None = None) -> Callable[[F], F]:
        """Fill every parameter called *name* of this router's handlers with a function's value.

        The function may take ``request``, ``params``, path parameters and
        other provided names; it runs once per request, before the body is
        validated, and may ``abort(401)``. A generator function's code after its
        ``yield`` runs once the response is done. A route whose handler takes a
        provided name is dynamic. *security* is an OpenAPI security scheme
        (``{"type": "http", "scheme": "bearer"}``) the routes using it document.
        A router's providers reach the routers it includes, which may provide
        the same name themselves (the nearest wins). See :mod:`microroute.providers`.

        >>> @api.provide("user")                                  # doctest: +SKIP
        ... def current_user(request):
        ...     return users.get(request.headers.get("Authorization")) or abort(401)
        """

        def register(fn: F) -> F:
            spec = ProviderSpec.build(name, fn, security)
            if name in self._providers:
                raise ValueError(
                    f"{spec.source}: this router already provides {name!r}"
                    f" ({self._providers[name].source})"
                )
            self._providers[name] = spec
            return fn

        return register

    def include(self, router: Router, prefix: str = "") -> None:
        """Serve *router*'s routes under *prefix* (``"/api"``)."""
        if router is self:
            raise ValueError("a router cannot include itself")
        if prefix:
            parse_path(prefix, f"include(prefix={prefix!r})")
        self._includes.append((router, normalize_path(prefix) if prefix else ""))

    def specs(
        self,
        prefix: str = "",
        _seen: tuple[int, ...] = (),
        _middleware: tuple[Middleware, ...] = (),
        _providers: tuple[ProviderSpec, ...] = (),
    ) -> Iterator[RouteSpec]:
        """Every handler, included routers' too, with prefixes, middleware and providers applied."""
        if id(self) in _seen:
            raise ValueError("routers include each other in a cycle")
        seen = (*_seen, id(self))
        middleware = (*_middleware, *self._middleware)
        # Outer routers' first: the nearest provider of a name is found last and wins.
        providers = (*_providers, *self._providers.values())
        for spec in self._specs:
            yield _scoped(spec, prefix, middleware, providers)
        for router, sub in self._includes:
            yield from router.specs(_join(prefix, sub), seen, middleware, providers)


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    return prefix.rstrip("/") + normalize_path(path) if normalize_path(path) != "/" else prefix


def _scoped(
    spec: RouteSpec,
    prefix: str,
    middleware: tuple[Middleware, ...],
    providers: tuple[ProviderSpec, ...],
) -> RouteSpec:
    if not prefix and not middleware and not providers:
        return spec
    return dataclasses.replace(
        spec,
        path=_join(prefix, spec.path),
        middleware=(*middleware, *spec.middleware),
        providers=(*providers, *spec.providers),
    )


#: The ready, module-level router for one-file scripts: ``@route.get("/")``.
route = Router()
