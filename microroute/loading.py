"""Turn the TARGET of ``microroute run [TARGET]`` into a WSGI application.

A TARGET is one of, tried in this order:

* a **folder** holding ``app/`` (the default is the current folder): the app is
  ``App(app_dir=<folder>/app)``, routes discovered from files;
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
import importlib.util
import os
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

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
    from microroute.errors import StartupError

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
    from microroute.errors import StartupError

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
    from microroute.app import App

    return App(app_dir=app_dir)


def _load_file(path: Path) -> WSGIApp:
    from microroute.errors import StartupError

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
    if module is None or _module_file(module) != path:
        module = _import_file(name, path)
    return _app_attribute(module, "app", str(path))


def _import_file(name: str, path: Path) -> ModuleType:
    """Import *path* as module *name*, its folder first on ``sys.path``."""
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return import_file(name, path, str(path))


def import_file(name: str, path: Path, where: str) -> ModuleType:
    """Import the user's file *path* as module *name*; failures name *where*.

    Shared by TARGET loading and route discovery, so an import error reads
    the same everywhere: one line, the file, and the user's line that failed.
    """
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        from microroute.errors import StartupError

        raise StartupError(f"{where}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as `import` does, so that the file's own
    # dataclasses, pickling and `import name` from its helpers all resolve.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        _reraise_import_error(exc, where)
    return module


def _load_module(module_name: str, attr: str) -> WSGIApp:
    from microroute.errors import StartupError

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
        _reraise_import_error(exc, module_name)
    except BaseException as exc:
        _reraise_import_error(exc, module_name)
    where = _module_file(module)
    return _app_attribute(module, attr, f"{module_name} ({where})" if where else module_name)


def _app_attribute(module: ModuleType, attr: str, where: str) -> WSGIApp:
    from microroute.errors import StartupError

    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            hint = " (define `app = App(...)` at module level)" if attr == "app" else ""
            raise StartupError(f"{where}: has no attribute {attr!r} to serve{hint}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise StartupError(f"{where}: {attr!r} is a {type(obj).__name__}, not a WSGI application")
    app: WSGIApp = obj
    return app


def _module_file(module: ModuleType) -> Path | None:
    file = getattr(module, "__file__", None)
    return Path(file).resolve() if file else None


def _reraise_import_error(exc: BaseException, where: str) -> NoReturn:
    """Raise a one-line StartupError for *exc*, raised while importing *where*.

    A StartupError (an ``App()`` in the imported file found a route conflict)
    already names its file and passes through. Ctrl-C passes through too.
    """
    from microroute.errors import StartupError

    if isinstance(exc, (StartupError, KeyboardInterrupt)):
        raise exc
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    location = ""
    if not isinstance(exc, SyntaxError):  # its message already says file and line
        frames = traceback.extract_tb(exc.__traceback__)
        # The innermost frame outside the import machinery is the user's line.
        user = [f for f in frames if "importlib" not in f.filename and f.filename != __file__]
        if user:
            location = f" (at {user[-1].filename}:{user[-1].lineno})"
    raise StartupError(f"{where}: import failed: {message}{location}") from exc
