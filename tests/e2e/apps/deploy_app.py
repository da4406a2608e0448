"""The app the deploy tests serve: what a load balancer and a proxy send during a deploy.

A quick GET, a slow one (``?s=`` seconds, 0.05 by default), a JSON POST, an
event stream, after() work, and the health probes (``/healthz``, ``/readyz``);
served by every server kind (``microroute run``, ``gunicorn -k gevent``,
``gunicorn -k microroute.gunicorn.Worker``) and behind nginx.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from microroute import App, Event, EventStream, Request, after, cookies, redirect, route


@route.get("/quick")
def quick() -> dict[str, bool]:
    return {"ok": True}


@route.get("/slow", dynamic="force-dynamic")
def slow(request: Request) -> dict[str, float]:
    seconds = float(request.args.get("s", "0.05"))
    time.sleep(seconds)
    return {"slept": seconds}


@route.post("/json")
def post(request: Request) -> Any:
    return request.json


@route.post("/ignore")
def ignore() -> dict[str, str]:
    """Answers without reading the body."""
    return {"read": "nothing"}


def probe(request: Request) -> dict[str, Any]:
    """What the server made of the request: method, host, a header, the body."""
    return {
        "method": request.method,
        "host": request.host,
        "probe": request.headers.get("X-Probe"),
        "body": request.get_data().decode("latin-1"),
    }


route.add("/probe", probe, methods=["GET", "POST", "PURGE", "FROB"])


@route.get("/where", dynamic="force-dynamic")
def where(request: Request) -> dict[str, str]:
    """The scheme and URL the app sees (a TLS proxy in front: https)."""
    return {"scheme": request.scheme, "url": request.url}


@route.get("/login", dynamic="force-dynamic")
def login() -> dict[str, bool]:
    cookies().set("id", "1")  # Secure over https, by default
    return {"ok": True}


@route.get("/go", dynamic="force-dynamic")
def go() -> None:
    redirect("/where")  # resolved against the request: https:// behind a TLS proxy


@route.get("/count/[n]")
def count(n: str) -> Iterator[str]:
    """One line per 0.1 s: a stream a client may pipeline behind."""
    for i in range(int(n)):
        yield f"{i}\n"
        time.sleep(0.1)


@route.get("/after/[key]", dynamic="force-dynamic")
def later(key: str) -> dict[str, str]:
    """Answers at once; a second later its after() work writes DEPLOY_AFTER_DIR/KEY."""

    def write() -> None:
        time.sleep(1.0)
        Path(os.environ["DEPLOY_AFTER_DIR"], key).write_text("done")

    after(write)
    return {"scheduled": key}


@route.get("/events")
def events(request: Request) -> EventStream:
    """One event a second, numbered from the client's Last-Event-ID."""
    start = int(EventStream.last_event_id(request) or 0) + 1

    def numbered() -> Iterator[Event]:
        n = start
        while True:
            yield Event({"n": n}, id=n)
            n += 1
            time.sleep(1.0)

    return EventStream(numbered(), heartbeat=5)


app = App(route, health=True)
