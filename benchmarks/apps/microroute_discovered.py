"""microroute discovered from an ``app/`` tree, the Next.js layout::

discovered/app/hello/route.py        GET  /hello
discovered/app/users/[id]/route.py   GET  /users/[id]
discovered/app/echo/route.py         POST /echo
"""

from __future__ import annotations

from pathlib import Path

from microroute import App

from .microroute_decorators import CACHE_OFF

app = App(app_dir=Path(__file__).parent / "discovered" / "app", **CACHE_OFF)
