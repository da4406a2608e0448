"""The compiled route table: URL path -> route, on the per-request hot path.

Static paths (no parameters) sit in a dict, looked up before anything else, so
the most common routes cost one hash. Dynamic paths written in the Next.js
syntax (``[id]``, ``[...slug]``, ``[[...slug]]``) go into a segment tree, which
matches ``/users/42`` in a couple of dict lookups. As soon as one route uses a
werkzeug converter (``<int:id>``), every dynamic route is compiled into a
werkzeug :class:`~werkzeug.routing.Map` instead, so one matcher decides
precedence. Both prefer a static segment over ``[id]``, and ``[id]`` over a
catch-all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from werkzeug.exceptions import HTTPException as _WerkzeugHTTPException
from werkzeug.routing import Map, PathConverter, Rule

from .errors import StartupError
from .handlers import Endpoint
from .routing import METHODS, PathPattern, RouteSpec, parse_path

__all__ = ["Route", "RouteTable"]


class SegmentsConverter(PathConverter):
    """``[...slug]``: one or more segments, handed to the handler as ``list[str]``."""

    def to_python(self, value: str) -> list[str]:
        return value.split("/")

    def to_url(self, value: Any) -> str:
        if isinstance(value, (list, tuple)):
            value = "/".join(map(str, value))
        return super().to_url(value)


class Route:
    """Every handler served at one URL pattern, precomputed for dispatch."""

    __slots__ = ("allow", "endpoints", "file", "layers", "pattern", "sources")

    def __init__(self, pattern: PathPattern) -> None:
        self.pattern = pattern
        self.endpoints: dict[str, Endpoint] = {}
        self.sources: dict[str, str] = {}
        self.file: str | None = None
        self.allow = ""
        #: The scoped middleware chain around the route's own answers (an
        #: ``OPTIONS`` or a 405): that of every one of its handlers.
        self.layers: Any = None

    def finish(self) -> None:
        """Precompute the ``Allow`` header once all methods are known."""
        methods = set(self.endpoints) | {"OPTIONS"}
        if "GET" in methods:
            methods.add("HEAD")
        self.allow = ", ".join(sorted(methods))

    def common_middleware(self) -> tuple[Any, ...]:
        """The scoped middleware every handler of the route runs in (outermost first)."""
        chains = [endpoint.middleware for endpoint in self.endpoints.values()]
        common: list[Any] = []
        for layer in zip(*chains, strict=False):
            if any(mw is not layer[0] for mw in layer):
                break
            common.append(layer[0])
        return tuple(common)

    @property
    def methods(self) -> list[str]:
        """Methods with a handler, in the conventional order."""
        known = [m for m in METHODS if m in self.endpoints]
        return known + sorted(set(self.endpoints) - set(known))


class _Target:
    """What a werkzeug rule points at: the route, and the catch-all left empty."""

    __slots__ = ("empty_lists", "route")

    def __init__(self, route: Route, empty_lists: tuple[str, ...]) -> None:
        self.route = route
        self.empty_lists = empty_lists


def _conflict(message: str, *sources: str) -> StartupError:
    return StartupError(message + "".join(f"\n  - {s}" for s in sources))


def build_routes(specs: Iterable[RouteSpec]) -> list[Route]:
    """Group handler specs into routes, rejecting every kind of conflict.

    Two files on one URL, one method declared twice, and ``[id]`` beside
    ``[slug]`` at the same place (Next.js refuses that too) stop start-up.
    """
    by_path: dict[str, Route] = {}
    for spec in specs:
        try:
            pattern = parse_path(spec.path, spec.source)
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        route = by_path.get(pattern.path)
        if route is None:
            route = by_path[pattern.path] = Route(pattern)
        if spec.file is not None and route.file not in (None, spec.file):
            raise _conflict(f"two route files serve {pattern.path}:", route.file, spec.file)
        if spec.method in route.endpoints:
            raise _conflict(
                f"{spec.method} {pattern.path} is declared twice:",
                route.sources[spec.method],
                spec.source,
            )
        route.file = route.file or spec.file
        route.endpoints[spec.method] = Endpoint(
            spec.handler,
            spec.method,
            pattern.params,
            spec.config,
            spec.source,
            pattern.path,
            spec.middleware,
            spec.providers,
        )
        route.sources[spec.method] = spec.source

    owners: dict[str, Route] = {}
    for route in by_path.values():
        route.finish()
        for shape in route.pattern.shapes:
            other = owners.setdefault(shape, route)
            if other is not route:
                raise _conflict(
                    f"{other.pattern.path} and {route.pattern.path} match the same URLs:",
                    next(iter(other.sources.values())),
                    next(iter(route.sources.values())),
                )
    return list(by_path.values())


class _Node:
    """One segment position in the tree of dynamic routes."""

    __slots__ = ("catchall", "end", "optional", "param", "static")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = {}
        self.param: _Node | None = None
        # (route, parameter names) for a route ending here / catching the rest.
        self.end: tuple[Route, tuple[str, ...]] | None = None
        self.catchall: tuple[Route, tuple[str, ...]] | None = None
        self.optional: tuple[Route, tuple[str, ...]] | None = None

    def insert(self, route: Route) -> None:
        node = self
        target = (route, route.pattern.params)
        for kind, text in route.pattern.segments:
            if kind == "static":
                node = node.static.setdefault(text, _Node())
            elif kind == "param":
                if node.param is None:
                    node.param = _Node()
                node = node.param
            elif kind == "catchall":
                node.catchall = target
                return
            else:  # optional catch-all: also matches the bare parent
                node.optional = target
                return
        node.end = target

    def match(
        self, segments: list[str], index: int, values: list[Any]
    ) -> tuple[tuple[Route, tuple[str, ...]], list[Any]] | None:
        """Depth-first: static child, then ``[id]``, then catch-alls, backtracking."""
        if index == len(segments):
            if self.end is not None:
                return self.end, values
            if self.optional is not None:
                return self.optional, [*values, []]
            return None
        segment = segments[index]
        child = self.static.get(segment)
        if child is not None:
            found = child.match(segments, index + 1, values)
            if found is not None:
                return found
        if not segment:  # an empty segment ("a//b") never fills a parameter
            return None
        if self.param is not None:
            found = self.param.match(segments, index + 1, [*values, segment])
            if found is not None:
                return found
        rest = self.catchall or self.optional
        if rest is not None:
            return rest, [*values, segments[index:]]
        return None


class RouteTable:
    """Matches a request path to ``(route, params)``; built once per app."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self.static: dict[str, Route] = {}
        dynamic = [route for route in routes if not route.pattern.is_static]
        for route in routes:
            if route.pattern.is_static:
                self.static[route.pattern.path] = route
        self._tree: _Node | None = None
        self._map: Map | None = None
        if not dynamic:
            return
        if all(kind != "werkzeug" for r in dynamic for kind, _ in r.pattern.segments):
            self._tree = _Node()
            for route in dynamic:
                self._tree.insert(route)
            return
        rules: list[Rule] = []
        for route in dynamic:
            pattern = route.pattern
            for index, rule in enumerate(pattern.rules):
                bare = index == 0 and bool(pattern.empty_lists)
                target = _Target(route, pattern.empty_lists if bare else ())
                rules.append(Rule(rule, endpoint=cast(str, target)))
        try:
            self._map = Map(
                rules,
                converters={"segments": SegmentsConverter},
                strict_slashes=False,
                merge_slashes=False,
                redirect_defaults=False,
            )
        except (LookupError, ValueError) as exc:
            raise StartupError(f"bad route path: {exc}") from None
        self._adapter = self._map.bind("localhost")

    def match(self, path: str) -> tuple[Route, dict[str, Any]] | None:
        """The route for *path* and its parameters, or ``None``."""
        route = self.static.get(path)
        if route is not None:
            return route, {}
        if self._tree is not None:
            hit = self._tree.match(path[1:].split("/") if path != "/" else [], 0, [])
            if hit is None:
                return None
            (route, names), values = hit
            return route, dict(zip(names, values, strict=True))
        if self._map is None:
            return None
        try:
            target, matched = self._adapter.match(path)
        except _WerkzeugHTTPException:
            return None
        found = cast(_Target, target)
        params = dict(matched)
        for name in found.empty_lists:
            params[name] = []
        return found.route, params

    def has_handler(self, path: str, method: str) -> bool:
        """Whether *path* matches a route that exports *method* itself."""
        found = self.match(path.rstrip("/") or "/")
        return found is not None and method.upper() in found[0].endpoints
