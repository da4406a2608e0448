"""Targets: turn the TARGET of ``microroute run [TARGET]`` into a WSGI application.

A TARGET is one of, tried in this order:

* a **folder** holding ``app/`` (the default is the current folder): the app is
  ``App(app_dir=<folder>/app)``, routes discovered from files, with the options
  of ``<folder>/microroute.toml`` (:mod:`microroute.project`);
* a **.py file**: imported as a module named after the file, with its folder
  first on ``sys.path`` so its sibling modules import; its module-level
  ``app`` is served;
* ``module:attr``, or ``module`` alone meaning ``module:app``, imported the way
  gunicorn does, with the current folder on ``sys.path``.

Anything that stops this raises :class:`~microroute.errors.StartupError` with
one line naming the file or target to fix, so the CLI can print it without a
traceback.

>>> load_app("examples/hello.py")        # doctest: +SKIP
>>> load_app("myproject.web:app")        # doctest: +SKIP
>>> load_app(None)                       # ./app/ discovered  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .app import App
from .errors import StartupError
from .loading import import_file_first_on_path, module_file, reraise_import_error
from .project import discovered_app
from .routing import Router

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication as WSGIApp

__all__ = ["load_app"]

#: ``pkg.module`` or ``pkg.module:attr.sub`` — dotted Python names only, so that
#: a Windows path such as ``C:\\proj`` is never mistaken for ``module:attr``.
_MODULE_TARGET = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?$")


def load_app(target: str | None) -> WSGIApp:
    """Resolve *target* to a WSGI application (see the module docstring).

    Raises :class:`~microroute.errors.StartupError` for a missing file or
    folder, a module without the attribute, a folder without ``app/``, or an
    exception while importing user code (its type and message, and where).
    """
    app = _load(target)
    if isinstance(app, App):
        app.check()  # what App() left for the start: a parameter nothing provides
    return app


def _load(target: str | None) -> WSGIApp:
    spec = "." if target in (None, "") else str(target)
    path = Path(spec)
    if path.is_dir():
        return _load_folder(path)
    if spec.endswith(".py") or path.is_file():
        return _load_file(path)
    if _MODULE_TARGET.match(spec):
        module_name, _, attr = spec.partition(":")
        return _load_module(module_name, attr or "app")
    raise StartupError(
        f"{spec}: no such file or folder (TARGET is a .py file, a folder holding app/, "
        "or module:attr)"
    )


def _load_folder(folder: Path) -> WSGIApp:
    app_dir = folder.resolve() / "app"
    if not app_dir.is_dir():
        # A package folder named on the command line means "its app attribute".
        if (folder / "__init__.py").is_file() and folder.name.isidentifier():
            sys.path.insert(0, str(folder.resolve().parent))
            return _load_module(folder.name, "app")
        raise StartupError(
            f"{folder}: no app/ folder in {folder.resolve()} (expected {app_dir} with "
            "route.py files; or name a .py file or module:attr)"
        )
    return discovered_app(app_dir)


def _load_file(path: Path) -> WSGIApp:
    if not path.is_file():
        raise StartupError(f"{path}: no such file")
    path = path.resolve()
    name = path.stem
    if not name.isidentifier():
        # Still importable by path; only ``import name`` elsewhere would fail.
        name = re.sub(r"\W", "_", name)
        if not name.isidentifier():
            name = f"_{name}"
    module = sys.modules.get(name)
    if module is None or module_file(module) != path:
        module = import_file_first_on_path(name, path)
    return _app_attribute(module, "app", str(path))


def _load_module(module_name: str, attr: str) -> WSGIApp:
    # gunicorn and `python -m` both import from the current folder; a console
    # script (`microroute run`) does not have it on sys.path by itself.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (
            module_name == exc.name or module_name.startswith(exc.name + ".")
        ):
            raise StartupError(
                f"{module_name}: no such module, file or folder (looked in {cwd})"
            ) from None
        reraise_import_error(exc, module_name)
    except BaseException as exc:
        reraise_import_error(exc, module_name)
    where = module_file(module)
    return _app_attribute(module, attr, f"{module_name} ({where})" if where else module_name)


def _app_attribute(module: ModuleType, attr: str, where: str) -> WSGIApp:
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            hint = " (define `app = App(...)` at module level)" if attr == "app" else ""
            raise StartupError(f"{where}: has no attribute {attr!r} to serve{hint}")
        obj = getattr(obj, part)
    if isinstance(obj, Router):
        raise StartupError(
            f"{where}: {attr!r} is a Router, not an app; wrap it: `{attr} = App(router)`"
            " (App(route) for the module-level `route`)"
        )
    if not callable(obj):
        raise StartupError(f"{where}: {attr!r} is a {type(obj).__name__}, not a WSGI application")
    app: WSGIApp = obj
    return app
