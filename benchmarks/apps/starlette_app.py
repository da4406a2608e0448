"""Starlette, as its docs write an API: ``async def`` endpoints returning ``JSONResponse``.

An ASGI app, for ``benchmarks.servers`` only (served by uvicorn with httptools
and uvloop): the same bytes as the WSGI apps on the same requests.
Starlette's ``JSONResponse`` is compact and keeps non-ASCII as UTF-8, as they do.
``/io`` is a plain ``def`` endpoint blocked 20 ms in ``time.sleep``, which
Starlette runs in its thread pool, as it runs every sync endpoint.
"""

from __future__ import annotations

import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({"message": "Hello, World!"})


async def user(request: Request) -> JSONResponse:
    return JSONResponse({"id": request.path_params["id"]})


async def echo(request: Request) -> JSONResponse:
    return JSONResponse(await request.json())


def io(request: Request) -> JSONResponse:
    time.sleep(0.02)
    return JSONResponse({"slept_ms": 20})


app = Starlette(
    routes=[
        Route("/hello", hello),
        Route("/users/{id}", user),
        Route("/echo", echo, methods=["POST"]),
        Route("/io", io),
    ]
)
