"""FastAPI as its tutorial writes an API, twice: ``async def`` handlers, and plain ``def``.

ASGI apps for ``benchmarks.servers`` only (served by uvicorn with httptools and
uvloop): the same bytes as the WSGI apps on the same requests. ``app`` has
``async def`` handlers, run on the event loop; ``sync_app`` the same handlers
as plain ``def``, which FastAPI runs in its thread pool (40 threads, anyio's
default). The body of ``POST /echo`` is ``Annotated[dict[str, Any], Body()]``, as
FastAPI's docs declare an arbitrary JSON body. ``/io`` blocks 20 ms in ``time.sleep``,
a plain ``def`` in both apps: a blocking call in an ``async def`` would stall
the loop, so FastAPI's docs say to write it as ``def``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Body, FastAPI

app = FastAPI()
sync_app = FastAPI()


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"message": "Hello, World!"}


@app.get("/users/{id}")
async def user(id: str) -> dict[str, str]:
    return {"id": id}


@app.post("/echo")
async def echo(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    return body


@sync_app.get("/hello")
def sync_hello() -> dict[str, str]:
    return {"message": "Hello, World!"}


@sync_app.get("/users/{id}")
def sync_user(id: str) -> dict[str, str]:
    return {"id": id}


@sync_app.post("/echo")
def sync_echo(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    return body


@app.get("/io")
@sync_app.get("/io")
def io() -> dict[str, int]:
    time.sleep(0.02)
    return {"slept_ms": 20}
