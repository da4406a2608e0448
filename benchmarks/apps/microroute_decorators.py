"""microroute with decorators: the whole API in one file, as its README writes it.

Issue 7 measures the handler path with the response cache off (``/hello`` and
``/users/<id>`` are static GETs, which the cache would answer without calling
the handler). ``App(cache=...)`` comes with the cache, so it is passed only
once ``App`` takes it; ``microroute_cached`` is the same router cache on.
"""

from __future__ import annotations

import inspect
import time
from typing import Any

from microroute import App, Request, Router

#: ``{"cache": False}`` once App has a cache to turn off.
CACHE_OFF: dict[str, Any] = {"cache": False} if "cache" in inspect.signature(App).parameters else {}

api = Router()


@api.get("/hello")
def hello() -> dict[str, str]:
    return {"message": "Hello, World!"}


@api.get("/users/[id]")
def user(id: str) -> dict[str, str]:
    return {"id": id}


@api.post("/echo")
def echo(request: Request) -> Any:
    return request.json


@api.get("/io")
def io() -> dict[str, int]:
    """A sync handler blocked 20 ms on I/O (``benchmarks.servers``'s ``/io``)."""
    time.sleep(0.02)
    return {"slept_ms": 20}


app = App(api, **CACHE_OFF)

#: The same app with everything optional off: no request ids and no access
#: record (issue 22 made them the default), so its figures compare with the
#: releases before them.
BARE: dict[str, Any] = (
    {"request_id_header": None, "access_log": False}
    if "access_log" in inspect.signature(App).parameters
    else {}
)
bare = App(api, **CACHE_OFF, **BARE)
