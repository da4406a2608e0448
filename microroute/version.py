"""The package's version, and how it was built, in a module of its own so any layer can read it."""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

__version__ = "0.1.0.dev0"


def compiled() -> bool:
    """Whether the server's hot loop is compiled (``MICROROUTE_COMPILE=1`` at install: setup.py).

    Read from the files, without importing the server (which imports gevent,
    and ``microroute run`` must monkey-patch before that): Python imports an
    extension module in preference to the source beside it.
    """
    folder = Path(__file__).parent / "server"
    return any((folder / f"connection{suffix}").exists() for suffix in EXTENSION_SUFFIXES)


def describe() -> str:
    """``microroute --version``'s line: the version, and the build if compiled."""
    if compiled():
        return f"microroute {__version__} (server compiled with mypyc)"
    return f"microroute {__version__}"
