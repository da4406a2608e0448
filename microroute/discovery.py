"""File discovery: an ``app/`` folder tree becomes routes, as in Next.js.

::

    app/api/users/route.py            ->  /api/users
    app/api/posts/[id]/route.py       ->  /api/posts/[id]
    app/api/docs/[...slug]/route.py   ->  /api/docs/[...slug]
    app/(admin)/stats/route.py        ->  /stats          (a route group: not in the URL)
    app/api/_lib/db.py                ->  never routed    (a private folder)

A folder is a URL segment and a function named ``GET`` is the GET handler; the
module may also set ``dynamic``, ``revalidate`` and ``tags``. The folder holding ``app/``
goes on ``sys.path`` so route files import shared code by dotted path
(``from app.api._lib.db import connect``).
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import StartupError
from .loading import import_file
from .middleware import check_middleware
from .routing import METHODS, RouteConfig, RouteSpec, parse_path

__all__ = ["discover", "discover_middleware"]

ROUTE_FILE = "route.py"
MIDDLEWARE_FILE = "middleware.py"
_CONFIG_NAMES = ("dynamic", "revalidate", "tags")


def _is_group(name: str) -> bool:
    return name.startswith("(") and name.endswith(")") and len(name) > 2


def _skipped(name: str) -> bool:
    """Private folders (``_lib``), hidden ones and caches are never routed."""
    return name.startswith(("_", "."))


def _url_path(relative: Path) -> str:
    """``api/(admin)/stats`` -> ``/api/stats``: route groups leave the URL."""
    return "/" + "/".join(part for part in relative.parts if not _is_group(part))


def _module_name(app_dir: Path, folder: Path) -> str:
    """A dotted name under the app package: ``app.api.posts.[id].route``.

    Dots inside a folder name (``data.json``) would read as packages, so they
    are escaped; the name only has to be unique and stable.
    """
    parts = [app_dir.name, *folder.relative_to(app_dir).parts, "route"]
    return ".".join(part.replace(".", "_dot_") for part in parts)


def _import_route_file(path: Path, name: str, shown: str) -> types.ModuleType:
    return import_file(name, path, shown)


def _specs_from_module(module: types.ModuleType, url: str, shown: str) -> list[RouteSpec]:
    config: dict[str, Any] = {
        name: getattr(module, name) for name in _CONFIG_NAMES if hasattr(module, name)
    }
    try:
        route_config = RouteConfig.build(shown, **config)
    except (TypeError, ValueError) as exc:
        raise StartupError(str(exc)) from None
    specs = []
    for method in METHODS:
        handler = getattr(module, method, None)
        if handler is None:
            continue
        if not callable(handler):
            raise StartupError(
                f"{shown}: {method} must be a function, got {type(handler).__name__}"
            )
        specs.append(RouteSpec(url, method, handler, route_config, f"{shown} {method}()", shown))
    return specs


def _shown(path: Path) -> str:
    """How errors name a file: relative to the current folder when inside it."""
    cwd = Path.cwd()
    return os.path.relpath(path, cwd) if path.is_relative_to(cwd) else str(path)


def discover_middleware(app_dir: str | os.PathLike[str]) -> Callable[..., Any] | None:
    """``app/middleware.py``'s ``middleware(request, call_next)``, if the file exists."""
    root = Path(app_dir).resolve()
    path = root / MIDDLEWARE_FILE
    if not path.is_file():
        return None
    shown = _shown(path)
    module = _import_route_file(path, f"{root.name}.middleware", shown)
    middleware = getattr(module, "middleware", None)
    if middleware is None:
        raise StartupError(f"{shown}: export a function middleware(request, call_next)")
    try:
        check_middleware(middleware, f"{shown}: middleware")
    except TypeError as exc:
        raise StartupError(str(exc)) from None
    return middleware  # type: ignore[no-any-return]


def discover(app_dir: str | os.PathLike[str]) -> list[RouteSpec]:
    """Walk *app_dir* and return a :class:`RouteSpec` per exported handler.

    Raises :class:`StartupError` naming the file for a bad segment name, an
    import error, a non-function ``GET``, or bad route config.
    """
    root = Path(app_dir).resolve()
    if not root.is_dir():
        raise StartupError(f"{app_dir}: no such app folder")
    project = str(root.parent)
    if project not in sys.path:
        sys.path.insert(0, project)
    specs: list[RouteSpec] = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not _skipped(d))
        if ROUTE_FILE not in files:
            continue
        here = Path(folder)
        path = here / ROUTE_FILE
        shown = _shown(path)
        url = _url_path(here.relative_to(root))
        try:
            parse_path(url, shown)
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        module = _import_route_file(path, _module_name(root, here), shown)
        specs.extend(_specs_from_module(module, url, shown))
    return specs
