"""The streaming examples work as their docs say: examples/sse_clock.py and examples/llm_proxy/.

In process through the TestClient; the LLM proxy talks HTTP to its fake
upstream, served from a thread on a free port.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from microroute.targets import load_app
from microroute.testing import TestClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def events(response: Any) -> Iterator[dict[str, str]]:
    """SSE events as dicts of their fields, as they arrive."""
    event: dict[str, str] = {}
    for line in response.iter_lines(decode_unicode=True):
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            event[name] = value


# sse_clock.py ----------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    app = load_app(str(EXAMPLES / "sse_clock.py"))
    monkeypatch.setattr("sse_clock.INTERVAL", 0.01)
    with TestClient(app) as client:
        yield client


def test_clock_ticks(clock: TestClient) -> None:
    with clock.get("/clock", stream=True) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        stream = events(response)
        ticks = [next(stream) for _ in range(3)]
    assert [t["id"] for t in ticks] == ["0", "1", "2"]
    assert {t["event"] for t in ticks} == {"tick"}
    assert "time" in json.loads(ticks[0]["data"])


def test_clock_resumes_after_last_event_id(clock: TestClient) -> None:
    with clock.get("/clock", headers={"Last-Event-ID": "41"}, stream=True) as response:
        assert next(events(response))["id"] == "42"


def test_clock_page_opens_an_event_source(clock: TestClient) -> None:
    response = clock.get("/")
    assert response.headers["Content-Type"].startswith("text/html")
    assert 'new EventSource("/clock")' in response.text


# llm_proxy/ ------------------------------------------------------------------------


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("FAKE_LLM_DELAY", "0")
    server = make_server("127.0.0.1", 0, load_app(str(EXAMPLES / "llm_proxy" / "fake_upstream.py")),
                         threaded=True)  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}/v1/chat/completions"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def proxy(upstream: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    app = load_app(str(EXAMPLES / "llm_proxy" / "proxy.py"))
    monkeypatch.setattr("proxy.UPSTREAM", upstream)
    with TestClient(app) as client:
        yield client


def test_proxy_relays_tokens_as_sse(proxy: TestClient) -> None:
    with proxy.get("/api/chat", params={"prompt": "hi there"}, stream=True) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        received = list(events(response))
    tokens = [json.loads(e["data"])["token"] for e in received if e["event"] == "token"]
    assert "".join(tokens).startswith("You asked: 'hi there'. Route handlers are")
    assert received[-1]["event"] == "done"
    assert json.loads(received[-1]["data"]) == {"tokens": len(tokens)}


def test_proxy_needs_a_prompt(proxy: TestClient) -> None:
    response = proxy.get("/api/chat")
    assert response.status_code == 400
    assert response.json() == {"error": "?prompt= is required"}


def test_proxy_reports_a_dead_upstream_as_502(
    proxy: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("proxy.UPSTREAM", "http://127.0.0.1:9/v1/chat/completions")
    response = proxy.get("/api/chat", params={"prompt": "hi"})
    assert response.status_code == 502
    assert response.json()["error"].startswith("upstream failed")


def test_fake_upstream_speaks_openai_style_sse(upstream: str) -> None:
    import requests

    with requests.post(upstream, json={"messages": [{"content": "x"}]}, stream=True) as response:
        lines = [line for line in response.iter_lines(decode_unicode=True) if line]
    assert lines[-1] == "data: [DONE]"
    first = json.loads(lines[0].removeprefix("data: "))
    assert first["choices"][0]["delta"]["content"] == "You"
