"""Warming a build: its static entries made before traffic arrives (``microroute warm``).

A deploy changes the build id, and a shared store holds nothing for the new
one: its first requests would each wait for a build. ``microroute warm
[TARGET] [--paths FILE]`` (or ``app.warm()``) builds them first, from a
release step, against the same store the servers use::

    MICROROUTE_BUILD_ID=$GIT_SHA microroute warm app_folder --paths hot-paths.txt

Which paths: every static GET route whose path has no parameters; for a route
file (``app/posts/[id]/route.py``) that exports ``generate_static_params()``
(Next.js's ``generateStaticParams``), each path it lists::

    def generate_static_params():
        return [{"id": str(post.id)} for post in db.recent_posts(100)]

(a catch-all takes a list: ``{"slug": ["2024", "hello"]}``); and any paths
given. Each is built as at build time, by the same code a cache MISS runs,
and stored unless a fresh entry is there already.
"""

from __future__ import annotations

import inspect
import logging
import re
import sys
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

from .cache import RouteCache
from .routing import normalize_path
from .table import Route, RouteTable

__all__ = ["static_paths", "warm"]

logger = logging.getLogger("microroute")

_WERKZEUG_VAR = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def warm(
    table: RouteTable, cache: RouteCache | None, paths: Iterable[str] | None = None
) -> list[tuple[str, str]]:
    """Build and store each of *paths* (default: :func:`static_paths`).

    Returns ``(path, outcome)``: ``built``, ``fresh`` (already there, or
    another worker is building it), ``dynamic`` (with the reason), ``not
    stored`` (not a 200), ``failed``, ``no route``, ``no GET handler`` or
    ``cache off``.
    """
    wanted = static_paths(table) if paths is None else list(paths)
    done: list[tuple[str, str]] = []
    for given in wanted:
        path = normalize_path(unquote(given.strip()))
        found = table.match(path)
        if found is None:
            done.append((path, "no route"))
            continue
        route, params = found
        endpoint = route.endpoints.get("GET")
        if endpoint is None:
            done.append((path, "no GET handler"))
        elif cache is None:
            done.append((path, "cache off"))
        elif endpoint.dynamic_reason is not None:
            done.append((path, f"dynamic: {endpoint.dynamic_reason}"))
        else:
            # The cache keys entries by the WSGI path: UTF-8 bytes spelled as latin-1.
            key = path.encode().decode("latin-1")
            outcome = cache.warm(endpoint, key, params)
            if outcome == "dynamic":
                done.append((path, f"dynamic: {endpoint.dynamic_reason}"))
            else:
                done.append((path, outcome))
    return done


def static_paths(table: RouteTable) -> list[str]:
    """The paths :func:`warm` builds by default, sorted (see the module docstring)."""
    paths: set[str] = set()
    for route in table.routes:
        get = route.endpoints.get("GET")
        if get is None or get.dynamic_reason is not None:
            continue
        if route.pattern.is_static:
            paths.add(route.pattern.path)
            continue
        generate = _generate_static_params(route)
        if generate is None:
            continue
        listed = generate()
        if not isinstance(listed, (list, tuple)):
            raise TypeError(
                f"{route.file}: generate_static_params() must return a list of dicts of"
                f" path parameters, got {type(listed).__name__}"
            )
        for params in listed:
            paths.add(fill(route, params))
    return sorted(paths)


def _generate_static_params(route: Route) -> Any:
    """The route file's ``generate_static_params``, if it is a route file and has one."""
    if route.file is None:
        return None  # a decorator's route: list its paths with --paths
    handler = inspect.unwrap(route.endpoints["GET"].handler)
    module = sys.modules.get(getattr(handler, "__module__", "") or "")
    return getattr(module, "generate_static_params", None)


def fill(route: Route, params: Any) -> str:
    """*route*'s path with *params* (``{"id": "1"}``) in its parameters, URL-quoted."""
    where = f"{route.file or route.pattern.path}: generate_static_params()"
    if not isinstance(params, dict):
        raise TypeError(f"{where} must list dicts of path parameters, got {params!r}")
    parts: list[str] = []
    for kind, text in route.pattern.segments:
        if kind == "static":
            parts.append(text)
            continue
        if kind == "werkzeug":
            match = _WERKZEUG_VAR.search(text)
            name = match.group(1) if match else text
        else:
            name = text.strip("[]").removeprefix("...")
        if name not in params:
            if kind == "optional":
                continue
            raise ValueError(f"{where} gave {params!r}, with no value for {name!r}")
        value = params[name]
        if kind in ("catchall", "optional") and isinstance(value, (list, tuple)):
            parts.extend(quote(str(part), safe="") for part in value)
        elif kind == "werkzeug" and match is not None:
            parts.append(text.replace(match.group(0), quote(str(value), safe="")))
        else:
            parts.append(quote(str(value), safe=""))
    return "/" + "/".join(parts)
