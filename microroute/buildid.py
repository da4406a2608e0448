"""The default build id: which release of the code a shared store's entries belong to.

A shared store (:class:`~microroute.cache.RedisStore`) keys every entry by a
build id, so a deploy of new code never serves what the old code made. Unless
it is given (``App(build_id=...)``, ``MICROROUTE_BUILD_ID``), the id is a hash
of the code that can change what a handler answers:

- every module of the application loaded at start-up, that is every module in
  ``sys.modules`` with a file outside the standard library and site-packages
  (the route files, and ``app/_lib/db.py`` or ``services/pricing.py`` that
  they import);
- each handler's own file (also when it lives somewhere the scan skips);
- the microroute version (microroute's own modules are skipped: an editable
  install loads different ones under different servers).

Contents only, never paths or module names, so every machine running the same
release agrees wherever it is deployed and however it is served. What the
hash cannot see (templates and data files read at run time, a dependency
upgraded in site-packages, code imported only after start-up) is why
``MICROROUTE_BUILD_ID`` may be set per deploy, to a commit or release name.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import site
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .version import __version__

if TYPE_CHECKING:
    from .table import Route

__all__ = ["application_files", "default_build_id"]

#: Not the application, and different under each server: the launcher (``bin/gunicorn``,
#: ``bin/microroute``) and gunicorn's config file, which it imports as ``__config__``.
_SERVER_MODULES = frozenset({"__main__", "__mp_main__", "__config__"})
_LIBRARY_FOLDERS = frozenset({"site-packages", "dist-packages"})


def default_build_id(routes: Iterable[Route]) -> str:
    """A 16-hex-digit hash of the application's code and the microroute version.

    >>> default_build_id(app.routes)  # doctest: +SKIP
    '3f2a9c1d07be4e55'
    """
    parts = {hashlib.sha256(source).digest() for source in _handler_sources(routes)}
    for path in application_files():
        try:
            parts.add(hashlib.sha256(Path(path).read_bytes()).digest())
        except OSError:  # gone since it was imported, or not a file at all
            continue
    digest = hashlib.sha256(__version__.encode())
    for part in sorted(parts):
        digest.update(part)
    return digest.hexdigest()[:16]


def application_files() -> list[str]:
    """The files of the loaded modules that are the application's own, sorted.

    Not the standard library, site-packages (or Debian's dist-packages),
    microroute itself, the ``__main__`` launcher or gunicorn's config file.
    """
    libraries = tuple(_library_roots())
    files = set()
    for name, module in list(sys.modules.items()):
        filename = getattr(module, "__file__", None)
        if name in _SERVER_MODULES or not isinstance(filename, str):
            continue
        real = os.path.realpath(filename)
        if _LIBRARY_FOLDERS.isdisjoint(Path(real).parts) and not real.startswith(libraries):
            files.add(real)
    return sorted(files)


def _library_roots() -> Iterator[str]:
    """Folders whose modules are not the application's, each ending in a separator."""
    folders = {str(Path(__file__).resolve().parent)}  # microroute: its version stands for it
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
    for paths in (sysconfig.get_paths(), sysconfig.get_paths(vars=base)):
        folders.update(paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib"))
    folders.update(getattr(site, "getsitepackages", list)())
    folders.add(site.getusersitepackages())
    for folder in folders:
        yield os.path.join(os.path.realpath(folder), "")


def _handler_sources(routes: Iterable[Route]) -> Iterator[bytes]:
    for route in routes:
        for endpoint in route.endpoints.values():
            handler = inspect.unwrap(endpoint.handler)
            code = getattr(handler, "__code__", None)
            try:
                source = Path(code.co_filename).read_bytes() if code is not None else None
            except OSError:
                source = None
            if source is None:  # no file (a handler made at run time): its name stands in
                source = endpoint.source.encode("utf-8", "replace")
            yield source
