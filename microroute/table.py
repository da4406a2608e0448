"""The compiled route table: URL path -> route, on the per-request hot path.

Static paths (no parameters) sit in a dict, looked up before anything else, so
the most common routes cost one hash. Dynamic paths are compiled once into a
werkzeug :class:`~werkzeug.routing.Map`, bound once; its state machine already
prefers a static segment over ``[id]``, and ``[id]`` over a catch-all.
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

    __slots__ = ("allow", "endpoints", "file", "pattern", "sources")

    def __init__(self, pattern: PathPattern) -> None:
        self.pattern = pattern
        self.endpoints: dict[str, Endpoint] = {}
        self.sources: dict[str, str] = {}
        self.file: str | None = None
        self.allow = ""

    def finish(self) -> None:
        """Precompute the ``Allow`` header once all methods are known."""
        methods = set(self.endpoints) | {"OPTIONS"}
        if "GET" in methods:
            methods.add("HEAD")
        self.allow = ", ".join(sorted(methods))

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
            spec.handler, spec.method, pattern.params, spec.config, spec.source
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


class RouteTable:
    """Matches a request path to ``(route, params)``; built once per app."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self.static: dict[str, Route] = {}
        rules: list[Rule] = []
        for route in routes:
            pattern = route.pattern
            if pattern.is_static:
                self.static[pattern.path] = route
                continue
            for index, rule in enumerate(pattern.rules):
                bare = index == 0 and bool(pattern.empty_lists)
                target = _Target(route, pattern.empty_lists if bare else ())
                rules.append(Rule(rule, endpoint=cast(str, target)))
        self._map: Map | None = None
        if rules:
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
