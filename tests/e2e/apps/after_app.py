"""An app whose routes schedule after() work, and a route that reports what it did."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from microroute import App, EventStream, Router, after, redirect

api = Router()
#: id -> what the after() work saw when it ran.
ran: dict[str, dict[str, object]] = {}
#: id -> set when the stream's generator ran past its last chunk.
ended: dict[str, bool] = {}
#: id -> released by GET /release/[id]: the stream's last chunk waits for it.
gates: dict[str, threading.Event] = {}


def record(key: str) -> None:
    ran[key] = {"at": time.time(), "stream_ended": ended.get(key, False)}


@api.get("/")
def index():
    return {"ok": True}


@api.get("/stream/[key]")
def stream(key: str):
    gate = gates.setdefault(key, threading.Event())
    after(record, key)
    yield "first\n"
    gate.wait(10)
    yield "last\n"
    ended[key] = True  # runs only once the server asks for more after the last chunk


@api.get("/release/[key]", dynamic="force-dynamic")
def release(key: str):
    gates.setdefault(key, threading.Event()).set()
    return {"released": key}


@api.get("/boom/[key]")
def boom(key: str):
    after(record, key)
    raise ValueError("the handler failed")


@api.get("/go/[key]")
def go(key: str):
    after(record, key)
    redirect("/")


@api.get("/status/[key]", dynamic="force-dynamic")
def status(key: str):
    return {"ran": ran.get(key)}


def write_later(path: str) -> None:
    time.sleep(2)
    Path(path).write_text("after work finished")


@api.post("/slow")
def slow(request):
    after(write_later, request.json["path"])
    return {"scheduled": True}


@api.get("/events/[key]", dynamic="force-dynamic")
def events(key: str):
    """README's pattern: record usage once a stream (default heartbeat) has ended."""

    def gen():
        yield {"token": 1}
        after(record, key)  # called in the generator, after the first event
        yield {"token": 2}

    return EventStream(gen())


@api.get("/slow-first/[key]")
def slow_first(key: str):
    """The client leaves before the first chunk: the stream is never primed."""
    after(record, key)
    time.sleep(3)
    yield "too late\n"


app = App(api)
