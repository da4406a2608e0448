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
without mypyc and names it as a build requirement; pip installs it into the
isolated build environment and runs this file again.
"""

from __future__ import annotations

import os

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

if os.environ.get("MICROROUTE_COMPILE", "").strip().lower() in ("1", "true", "yes"):
    try:
        from mypyc.build import mypycify
    except ImportError:  # pip's first pass, in the isolated build environment: ask for it
        setup(setup_requires=[MYPYC])
    else:
        setup(ext_modules=mypycify(COMPILED, opt_level="3", group_name="microroute_server"))
else:
    setup()
