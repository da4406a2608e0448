"""Import the user's code by file path, with start-up errors that name the file.

Route discovery imports every ``route.py`` through :func:`import_file`, and
so does TARGET loading (:mod:`microroute.targets`), so an import error reads
the same everywhere: one line, the file, and the user's line that failed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from .errors import StartupError

__all__ = ["import_file", "import_file_first_on_path", "module_file", "reraise_import_error"]


def import_file_first_on_path(name: str, path: Path) -> ModuleType:
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
        raise StartupError(f"{where}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as `import` does, so that the file's own
    # dataclasses, pickling and `import name` from its helpers all resolve.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        reraise_import_error(exc, where)
    return module


def module_file(module: ModuleType) -> Path | None:
    file = getattr(module, "__file__", None)
    return Path(file).resolve() if file else None


def reraise_import_error(exc: BaseException, where: str) -> NoReturn:
    """Raise a one-line StartupError for *exc*, raised while importing *where*.

    A StartupError (an ``App()`` in the imported file found a route conflict)
    already names its file and passes through. Ctrl-C passes through too.
    """
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
