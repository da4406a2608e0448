"""An LLM proxy: relays tokens from an upstream streaming API to the browser as SSE.

The upstream call uses ``requests`` with ``stream=True``: under ``microroute
run`` or ``gunicorn -k gevent`` its socket is gevent's, so a thousand open
proxies are a thousand cheap greenlets, not threads. Each upstream token is
re-sent as soon as it arrives (nothing is buffered). When the browser goes away
the server notices within a second, even while the relay waits for the
upstream's next token: ``on_disconnect`` closes the upstream response at once,
and the generator's ``finally:`` runs too, so the upstream stops generating
and nobody pays for tokens no one reads. ``after()`` records each request's
usage once its response is over, the last token sent or the client gone:
``GET /api/usage`` lists it.

It needs ``requests``. Install it, run the fake upstream and the proxy, then ask:

    pip install requests
    microroute run examples/llm_proxy/fake_upstream.py --port 8001 &
    microroute run examples/llm_proxy/proxy.py
    curl -N '127.0.0.1:8000/api/chat?prompt=hello'

``LLM_UPSTREAM`` names another OpenAI-style endpoint (default: the fake one on
port 8001); ``LLM_API_KEY``, when set, is sent as a bearer token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import requests

from microroute import (
    App,
    Event,
    EventStream,
    HTTPError,
    Request,
    Router,
    ValidationError,
    after,
    on_disconnect,
)

router = Router()

UPSTREAM = os.environ.get("LLM_UPSTREAM", "http://127.0.0.1:8001/v1/chat/completions")

#: One record per chat: the prompt, the tokens relayed, and whether the client stayed.
usage: list[dict[str, object]] = []


def record_usage(prompt: str, relayed: dict[str, int], finished: dict[str, bool]) -> None:
    """Runs after the response (``after()``): bill what was sent, not what was asked."""
    usage.append({"prompt": prompt, "tokens": relayed["tokens"], "finished": finished["done"]})


def upstream_tokens(response: requests.Response) -> Iterator[str]:
    """The content of each ``data:`` line of an OpenAI-style stream, until ``[DONE]``."""
    for line in response.iter_lines(chunk_size=None, decode_unicode=True):
        if not line or not line.startswith("data:"):
            continue  # blank separators, comments, heartbeats
        data = line[5:].strip()
        if data == "[DONE]":
            return
        delta = json.loads(data)["choices"][0]["delta"]
        if delta.get("content"):
            yield delta["content"]


@router.get("/api/chat")
def chat(request: Request) -> EventStream:
    """``token`` events as the upstream produces them, then one ``done`` event."""
    prompt = request.args.get("prompt", "").strip()
    if not prompt:
        raise ValidationError("?prompt= is required")
    headers = {"Accept": "text/event-stream"}
    if os.environ.get("LLM_API_KEY"):
        headers["Authorization"] = f"Bearer {os.environ['LLM_API_KEY']}"
    # Called before the stream starts, so a dead upstream is a proper JSON 502.
    try:
        upstream = requests.post(
            UPSTREAM,
            json={"messages": [{"role": "user", "content": prompt}], "stream": True},
            headers=headers,
            stream=True,
            timeout=(5, 60),
        )
        upstream.raise_for_status()
    except requests.RequestException as exc:
        raise HTTPError(502, f"upstream failed: {exc}") from None
    on_disconnect(upstream.close)  # the tab closed: stop the upstream at once

    relayed, finished = {"tokens": 0}, {"done": False}
    after(record_usage, prompt, relayed, finished)  # once the response is over, however

    def relay() -> Iterator[Event]:
        try:
            for token in upstream_tokens(upstream):
                relayed["tokens"] += 1
                yield Event({"token": token}, event="token")
            finished["done"] = True
            yield Event({"tokens": relayed["tokens"]}, event="done")
        finally:
            upstream.close()  # a disconnected client stops the upstream too

    return EventStream(relay())


@router.get("/api/usage", dynamic="force-dynamic")
def usage_so_far() -> list[dict[str, object]]:
    return usage


app = App(router)
