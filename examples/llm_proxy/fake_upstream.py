"""A fake LLM API that streams a canned answer token by token, so the proxy runs offline.

It speaks the shape of OpenAI-style chat completion streams: ``POST
/v1/chat/completions`` with ``{"messages": [...], "stream": true}`` answers
``text/event-stream`` with one ``data: {"choices": [{"delta": {"content":
TOKEN}}]}`` per token and a final ``data: [DONE]``.

    microroute run examples/llm_proxy/fake_upstream.py --port 8001

``FAKE_LLM_DELAY`` sets the seconds between tokens (default 0.05). ``GET
/v1/streams`` tells, for each stream it served, how many tokens it sent and
when it stopped: how the proxy's tests see that a client leaving stops it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from microroute import App, EventStream, Request, Router

router = Router()  # its own router: the proxy may be loaded in the same process

#: One record per stream served: tokens sent, and when (server clock) it stopped.
streams: list[dict[str, Any]] = []

ANSWER = (
    "Route handlers are plain functions named after HTTP methods, and a streamed "
    "response is just a generator: each token you see was yielded by one."
)


def tokens(text: str) -> list[str]:
    """Words with their leading space, as LLM tokenizers split English roughly."""
    words = text.split(" ")
    return [words[0], *(" " + word for word in words[1:])]


@router.post("/v1/chat/completions")
def completions(request: Request) -> EventStream:
    body: dict[str, Any] = request.json
    prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
    delay = float(os.environ.get("FAKE_LLM_DELAY", "0.05"))
    answer = f"You asked: {prompt!r}. {ANSWER}" if prompt else ANSWER

    record: dict[str, Any] = {"sent": 0, "of": len(tokens(answer)), "stopped": None}
    streams.append(record)

    def chunks() -> Iterator[str | dict[str, Any]]:
        try:
            for token in tokens(answer):
                yield {"choices": [{"delta": {"content": token}}]}
                record["sent"] += 1
                time.sleep(delay)
            yield "[DONE]"
        finally:
            record["stopped"] = time.time()

    return EventStream(chunks(), heartbeat=None)


@router.get("/v1/streams", dynamic="force-dynamic")
def served() -> list[dict[str, Any]]:
    return streams


app = App(router)
