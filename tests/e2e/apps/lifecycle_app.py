"""An app watched through the lifecycle seam: an observer records each request's moments.

The observer sets a ContextVar from the ``X-Tag`` request header when a request
starts; the routes report what they see of it (in the handler, in a stream's
chunks, in after() work), and ``/records/[tag]`` returns what the observer saw
when each tagged request ended.
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any

from microroute import App, Router, after
from microroute.lifecycle import Exchange, Observer

tag_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("tag", default=None)
records: dict[str, list[dict[str, Any]]] = {}
after_seen: dict[str, str | None] = {}
_lock = threading.Lock()


class Recorder(Observer):
    def request_started(self, exchange: Exchange) -> None:
        tag_var.set(exchange.environ.get("HTTP_X_TAG"))
        exchange.extra["moments"] = ["started"]

    def route_matched(self, exchange: Exchange) -> None:
        exchange.extra["moments"].append(f"routed {exchange.route}")

    def response_started(self, exchange: Exchange, headers: list[tuple[str, str]]) -> None:
        exchange.extra["moments"].append(f"responding {exchange.status_code}")
        headers.append(("X-Observed", tag_var.get() or "-"))

    def response_ended(self, exchange: Exchange) -> None:
        tag = tag_var.get()
        if tag is None:
            return
        exchange.extra["moments"].append("ended")
        record = {
            "method": exchange.method,
            "path": exchange.path,
            "route": exchange.route,
            "status": exchange.status_code,
            "bytes": exchange.bytes_sent,
            "completed": exchange.completed,
            "disconnected": exchange.disconnected,
            "moments": exchange.extra["moments"],
            "duration_ms": exchange.duration_ms,
        }
        with _lock:
            records.setdefault(tag, []).append(record)


api = Router()


@api.get("/static")
def static_page():
    return {"static": True}


@api.get("/items/[id]", dynamic="force-dynamic")
def item(id: str):
    return {"id": id, "tag": tag_var.get()}


@api.get("/stream")
def stream():
    yield f"first:{tag_var.get()}\n"
    yield f"second:{tag_var.get()}\n"


@api.get("/endless")
def endless():
    yield "first\n"
    while True:
        time.sleep(0.05)
        yield "more\n"


@api.get("/after/[key]", dynamic="force-dynamic")
def later(key: str):
    after(lambda: after_seen.__setitem__(key, tag_var.get()))
    return {"scheduled": key}


@api.get("/after-seen/[key]", dynamic="force-dynamic")
def seen(key: str):
    return {"seen": after_seen.get(key, "nothing yet")}


@api.post("/upload")
def upload():
    return {"never": "reached: the body is over max_body_size"}


@api.get("/records/[tag]", dynamic="force-dynamic")
def report(tag: str):
    with _lock:
        return {"records": list(records.get(tag, []))}


app = App(api, max_body_size=100)
app.observe(Recorder())
