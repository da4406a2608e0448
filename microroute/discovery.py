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

A ``middleware.py`` exporting ``middleware(request, call_next)`` wraps what is
below its folder: ``app/middleware.py`` the whole app (every request, a 404
too), ``app/api/admin/middleware.py`` the routes under ``app/api/admin/``,
inside the app's, outer folders first.
"""

from __future__ import annotations

import logging
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

logger = logging.getLogger("microroute")

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
    try:
        return import_file(name, path, shown)
    except StartupError as exc:
        raise _with_shadow_hint(exc, name.partition(".")[0]) from exc.__cause__


def _with_shadow_hint(exc: StartupError, package: str) -> StartupError:
    """``'app' is not a package``: most often an ``app.py`` beside ``app/`` took the name."""
    cause = exc.__cause__
    if not (isinstance(cause, ImportError) and "is not a package" in str(cause)):
        return exc
    module = sys.modules.get(package)
    file = getattr(module, "__file__", None)
    if not file or Path(file).name == "__init__.py":
        return exc
    return StartupError(
        f"{exc}; {_shown(Path(file))} takes the name {package!r}, so `from {package}.x import y`"
        f" finds that file, not the {package}/ folder: rename it (main.py, say)"
    )


def _specs_from_module(
    module: types.ModuleType, url: str, shown: str, middleware: tuple[Any, ...] = ()
) -> list[RouteSpec]:
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
        specs.append(
            RouteSpec(url, method, handler, route_config, f"{shown} {method}()", shown, middleware)
        )
    _warn_miscased(module, shown)
    return specs


def _warn_miscased(module: types.ModuleType, shown: str) -> None:
    """``def get():`` or ``def Get():`` serves nothing: say so, as Next.js does."""
    for name, value in vars(module).items():
        method = name.upper()
        if method not in METHODS or name == method or not callable(value):
            continue
        if getattr(value, "__module__", None) != module.__name__:
            continue  # imported (`from requests import get`): not meant as a handler
        logger.warning(
            "%s: %s() is not a handler: route.py exports handlers named in capitals;"
            " rename it %s (or _%s to keep it private)",
            shown,
            name,
            method,
            name,
        )


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
    return _load_middleware(path, f"{root.name}.middleware")


def _load_middleware(path: Path, name: str) -> Callable[..., Any]:
    """A ``middleware.py``'s ``middleware(request, call_next)``; errors name the file."""
    shown = _shown(path)
    module = _import_route_file(path, name, shown)
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
    # Each folder's scoped middleware, outermost first: its parents' and its own.
    # The root's middleware.py is the app's own (discover_middleware), not here.
    scoped: dict[Path, tuple[Callable[..., Any], ...]] = {root: ()}
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not _skipped(d))
        here = Path(folder)
        layers = scoped[here] if here == root else scoped[here.parent]
        if here != root and MIDDLEWARE_FILE in files:
            name = _module_name(root, here).removesuffix(".route") + ".middleware"
            layers = (*layers, _load_middleware(here / MIDDLEWARE_FILE, name))
        scoped[here] = layers
        if ROUTE_FILE not in files:
            continue
        path = here / ROUTE_FILE
        shown = _shown(path)
        url = _url_path(here.relative_to(root))
        try:
            parse_path(url, shown)
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        module = _import_route_file(path, _module_name(root, here), shown)
        specs.extend(_specs_from_module(module, url, shown, layers))
    return specs
