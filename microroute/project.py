"""A discovered project: a folder holding ``app/``, and its ``microroute.toml``.

When microroute makes the app itself (``microroute run .``, ``microroute dev``,
``microroute.wsgi:app``), there is no ``App(...)`` call to pass options to;
they go in ``microroute.toml`` beside ``app/``, named as ``App``'s keywords::

    # microroute.toml
    docs = "/docs"
    trust_proxy = 1
    handler_timeout = 30
    static_by_default = false

Every plain option of :class:`~microroute.App` may appear (not ``app_dir``,
which is the folder, nor objects such as a ``RedisStore``: write an
``App(...)`` in a ``.py`` file for those). An unknown key, a value of the wrong
type or a file that is not TOML stops start-up with one line naming the file
and the key. Keep secrets out of it: ``MICROROUTE_SECRET_KEY`` is read from
the environment.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

from .app import App
from .errors import StartupError

__all__ = ["CONFIG_FILE", "discovered_app", "read_options"]

CONFIG_FILE = "microroute.toml"

#: Options that are not data: the folder itself, and objects no TOML value can be.
_NOT_IN_FILE = {"app_dir"}
#: What each word of an option's annotation accepts from TOML.
_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "list": (list,),
}


def discovered_app(app_dir: Path) -> App:
    """``App(app_dir=app_dir, **options)``, the options read from ``microroute.toml`` beside it.

    Checked (:meth:`~microroute.App.check`): nothing can provide a name later.
    """
    app_dir = app_dir.resolve()
    return App(app_dir=app_dir, **read_options(app_dir.parent / CONFIG_FILE)).check()


def read_options(path: Path) -> dict[str, Any]:
    """The ``App`` keywords in *path*; none when it does not exist."""
    if not path.is_file():
        return {}
    try:
        toml: Any = importlib.import_module("tomllib")
    except ImportError:  # Python 3.10
        try:
            toml = importlib.import_module("tomli")
        except ImportError:
            raise StartupError(
                f"{path}: reading it needs Python 3.11 or the tomli package (pip install tomli)"
            ) from None
    try:
        data: dict[str, Any] = toml.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, toml.TOMLDecodeError) as exc:
        raise StartupError(f"{path}: not a TOML file microroute can read: {exc}") from None
    accepted = _options()
    for key, value in data.items():
        if key not in accepted:
            known = ", ".join(sorted(accepted))
            raise StartupError(f"{path}: unknown option {key!r}; App() takes {known}")
        kinds = accepted[key]
        wrong = isinstance(value, bool) and bool not in kinds and int in kinds
        if wrong or not isinstance(value, kinds):
            names = " or ".join(dict.fromkeys(t.__name__ for t in kinds))
            raise StartupError(
                f"{path}: option {key!r} must be {names}, got {type(value).__name__} {value!r}"
            )
    return data


def _options() -> dict[str, tuple[type, ...]]:
    """``App``'s keyword options that a TOML value can give, with the types each accepts."""
    found: dict[str, tuple[type, ...]] = {}
    for name, parameter in inspect.signature(App).parameters.items():
        if parameter.kind is not parameter.KEYWORD_ONLY or name in _NOT_IN_FILE:
            continue
        words = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", str(parameter.annotation))
        kinds = tuple(t for word in words for t in _TYPES.get(word, ()))
        if kinds:
            found[name] = kinds
    return found
