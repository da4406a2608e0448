"""A fake LLM API that streams a canned answer token by token, so the proxy runs offline.

It speaks the shape of OpenAI-style chat completion streams: ``POST
/v1/chat/completions`` with ``{"messages": [...], "stream": true}`` answers
``text/event-stream`` with one ``data: {"choices": [{"delta": {"content":
TOKEN}}]}`` per token and a final ``data: [DONE]``.

    microroute run examples/llm_proxy/fake_upstream.py --port 8001

``FAKE_LLM_DELAY`` sets the seconds between tokens (default 0.05).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from microroute import App, EventStream, Request, Router

router = Router()  # its own router: the proxy may be loaded in the same process

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

    def chunks() -> Iterator[str | dict[str, Any]]:
        for token in tokens(answer):
            yield {"choices": [{"delta": {"content": token}}]}
            time.sleep(delay)
        yield "[DONE]"

    return EventStream(chunks(), heartbeat=None)


app = App(router)
