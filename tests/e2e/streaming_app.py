"""The app tests/e2e/test_streaming.py serves: streams whose life the tests can observe.

Served as ``microroute run tests/e2e/streaming_app.py`` and as ``gunicorn -k
gevent streaming_app:app`` (one worker, so the state below is shared).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from microroute import App, Event, EventStream, Request, Router, on_disconnect

router = Router()

#: key -> what happened to that stream: "open", then "closed" once its finally ran.
streams: dict[str, str] = {}


@router.get("/sse/ticks")
def ticks(request: Request) -> EventStream:
    """``n`` events, ``gap`` seconds apart; the first one at once."""
    n = int(request.args.get("n", "3"))
    gap = float(request.args.get("gap", "0.5"))

    def events() -> Iterator[Event]:
        for i in range(n):
            if i:
                time.sleep(gap)
            yield Event({"i": i, "t": time.time()}, id=i)

    return EventStream(events())


@router.get("/sse/tracked/[key]")
def tracked(key: str) -> EventStream:
    """Ticks every 0.1 s until the client leaves; ``/sse/state/KEY`` tells when it did."""

    def events() -> Iterator[str]:
        streams[key] = "open"
        try:
            while True:
                yield "tick"
                time.sleep(0.1)
        finally:
            streams[key] = "closed"

    return EventStream(events())


@router.get("/sse/state/[key]", dynamic="force-dynamic")  # changes: never cached
def state(key: str) -> dict[str, str | None]:
    return {"state": streams.get(key)}


#: key -> when things happened to that request, by the server's clock.
seen: dict[str, dict[str, float]] = {}


def _idle(key: str, first: object) -> Iterator[object]:
    """One chunk, then blocked for 30 s, as an LLM "thinking" between tokens."""
    seen[key] = {"opened": time.time()}
    try:
        yield first
        time.sleep(30)
        yield first
    finally:
        seen[key]["closed"] = time.time()


@router.get("/idle/[key]", dynamic="force-dynamic")
def idle(key: str) -> Iterator[object]:
    return _idle(key, "first\n")


@router.get("/idle-sse/[key]", dynamic="force-dynamic")
def idle_sse(key: str, request: Request) -> EventStream:
    heartbeat = request.args.get("heartbeat", "15")
    return EventStream(
        _idle(key, {"first": True}), heartbeat=None if heartbeat == "none" else float(heartbeat)
    )


@router.get("/wait/[key]")
def wait(key: str, request: Request) -> dict[str, bool]:
    """A non-streaming handler that stops early when its client goes."""
    seen[key] = {"opened": time.time()}
    on_disconnect(lambda: seen[key].__setitem__("callback", time.time()))
    deadline = time.time() + 10
    while time.time() < deadline:
        if request.disconnected:
            seen[key]["disconnected"] = time.time()
            return {"stopped": True}
        time.sleep(0.02)
    return {"stopped": False}


@router.get("/seen/[key]", dynamic="force-dynamic")
def seen_state(key: str) -> dict[str, float]:
    return seen.get(key, {})


app = App(router)
