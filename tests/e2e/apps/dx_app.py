"""Providers, scoped middleware, the debug page and reason phrases, for every server kind.

``/state/[key]`` reports what the providers' teardowns saw, by the server's clock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from microroute import App, Response, Router, abort

api, admin = Router(), Router()
#: key -> when the stream's DB session was closed, and whether the stream had ended.
closed: dict[str, dict[str, object]] = {}
#: key -> the stream's generator ran its finally:.
ended: dict[str, bool] = {}
#: Scoped middleware calls, per path.
scoped_calls: dict[str, int] = {}


@dataclass
class Note:
    text: str


@api.get("/")
def index():
    return {"ok": True}


@api.post("/notes")
def create(body: Note, user):
    return {"text": body.text, "by": user}, 201


@api.get("/stream/[key]")
def stream(key: str, db):
    try:
        yield f"{db} for {key}\n"
        for _ in range(300):
            time.sleep(0.05)
            yield "tick\n"
    finally:
        ended[key] = True


@api.get("/state/[key]", dynamic="force-dynamic")
def state(key: str):
    return {"closed": closed.get(key)}


@api.get("/boom")
def boom(request):
    return divide(1, 0)


def divide(a: int, b: int) -> float:
    return a / b


@api.get("/empty")
def empty():
    return Response(status=204)


@api.get("/teapot")
def teapot():
    return Response("short and stout", status=418)


@admin.use
def count(request, call_next):
    scoped_calls[request.path] = scoped_calls.get(request.path, 0) + 1
    response = call_next(request)
    response.headers["X-Scoped-Calls"] = str(scoped_calls[request.path])
    return response


@admin.get("/report")
def report():
    return {"total": 3}


api.include(admin, prefix="/admin")
app = App(api, debug=True)


@app.provide("user")
def current_user(request):
    if request.headers.get("Authorization") != "Bearer good":
        abort(401, "Sign in first")
    return "ann"


@app.provide("db")
def database(params):
    key = params.get("key", "-")
    yield "session"
    closed[key] = {"at": time.time(), "stream_ended": ended.get(key, False)}
