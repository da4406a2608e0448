"""The app tests/e2e/test_streaming.py serves: streams whose life the tests can observe.

Served as ``microroute run tests/e2e/streaming_app.py`` and as ``gunicorn -k
gevent streaming_app:app`` (one worker, so the state below is shared).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from microroute import App, Event, EventStream, Request, Router

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


app = App(router)
