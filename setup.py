"""microroute's build: pure Python, or with the server's hot loop compiled by mypyc.

::

    pip install .                           # pure Python: any platform, any interpreter
    MICROROUTE_COMPILE=1 pip install .      # the modules below compiled (CPython, a C compiler)

The metadata is in ``setup.cfg``; this file only adds the compiled modules.
They are the per-request path of ``microroute run`` and the gunicorn worker
(parsing, the connection's loop, the response's framing, the body reader, the reaper's clock):
the same source, type-checked with ``mypy --strict``, compiled to C with
mypyc (as black and mypy ship), about half the server's CPU per small
request (BENCHMARKS.md). Behaviour is the same either way, and ``microroute --version``
says which one runs. Compile for a regular install, not an editable one: the
compiled modules would shadow edits to their source.

While pip asks the build what it needs (its first pass), this file runs
without mypyc and names what compiling needs: mypy, and what it type-checks
the package against (the run-time dependencies from ``setup.cfg`` and gevent's
stubs, which ``mypy --strict`` needs as the ``dev`` extra does). pip installs
them into the isolated build environment and runs this file again, so the
build works in a virtualenv that holds nothing yet.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path

from setuptools import setup

#: The modules compiled under MICROROUTE_COMPILE=1, leaves first.
COMPILED = [
    "microroute/server/limits.py",
    "microroute/server/dates.py",
    "microroute/server/reaper.py",
    "microroute/server/request.py",
    "microroute/server/parser.py",
    "microroute/server/response.py",
    "microroute/server/connection.py",
]
#: The mypy whose mypyc compiles them: the one ``mypy --strict`` checks the package with.
MYPYC = "mypy>=1.11"
#: Stubs for what ships none (setup.cfg's ``dev`` extra has the same).
STUBS = ["types-gevent", "types-greenlet"]


def dependencies() -> list[str]:
    """setup.cfg's ``install_requires``: mypyc type-checks the package against them."""
    config = configparser.ConfigParser(inline_comment_prefixes=("#",))
    config.read(Path(__file__).with_name("setup.cfg"))
    lines = config["options"]["install_requires"].splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


if os.environ.get("MICROROUTE_COMPILE", "").strip().lower() in ("1", "true", "yes"):
    try:
        from mypyc.build import mypycify
    except ImportError:  # pip's first pass, in the isolated build environment: ask for it
        setup(setup_requires=[MYPYC, *STUBS, *dependencies()])
    else:
        # Only the compiled modules must type-check here: what they import from the rest
        # of the package (and its optional extras, absent from a build) is read, not judged.
        checked = ["--follow-imports=silent", *COMPILED]
        setup(ext_modules=mypycify(checked, opt_level="3", group_name="microroute_server"))
else:
    setup()
