"""Streaming and SSE through real HTTP, on ``microroute run`` and ``gunicorn -k gevent``."""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests

if TYPE_CHECKING:
    from servers import Launcher, Server

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
TIMEOUT = 5


def streaming_target() -> Any:
    # Target lives in this folder's conftest; reach it through the fixture's
    # own module rather than by name, which tests/conftest.py shares.
    module = sys.modules[_launcher_type.__module__]
    return module.Target(
        "streaming",
        run=str((HERE / "streaming_app.py").relative_to(module.REPO)),
        wsgi="streaming_app:app",
        chdir=HERE,
    )


_launcher_type: type = object


@pytest.fixture
def launcher(launch: Launcher) -> Launcher:
    global _launcher_type
    _launcher_type = type(launch)
    return launch


@pytest.fixture
def server(launcher: Launcher) -> Server:
    return launcher.start(streaming_target())


def sse_events(lines: Any) -> Any:
    """Parse an SSE line iterator into ``{"id":..., "data":...}`` dicts as they complete."""
    event: dict[str, str] = {}
    for raw in lines:
        line = raw.decode() if isinstance(raw, bytes) else raw
        if not line:
            if "data" in event:
                yield event
            event = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            event[name] = event[name] + "\n" + value if name == "data" in event else value


def test_sse_headers_and_events(server: Server) -> None:
    with requests.get(f"{server.url}/sse/ticks?n=3&gap=0.01", stream=True, timeout=TIMEOUT) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "text/event-stream"
        assert r.headers["Cache-Control"] == "no-cache"
        assert r.headers["X-Accel-Buffering"] == "no"
        events = list(sse_events(r.iter_lines()))
    assert [e["id"] for e in events] == ["0", "1", "2"]
    assert [json.loads(e["data"])["i"] for e in events] == [0, 1, 2]


def test_first_event_arrives_before_the_generator_finishes(server: Server) -> None:
    started = time.monotonic()
    url = f"{server.url}/sse/ticks?n=3&gap=0.4"
    with requests.get(url, stream=True, timeout=TIMEOUT) as response:
        events = sse_events(response.iter_lines())
        first = next(events)
        first_at = time.monotonic() - started
        rest = list(events)
        done_at = time.monotonic() - started
    assert json.loads(first["data"])["i"] == 0
    assert len(rest) == 2
    # The generator needs 0.8 s in all: a buffered stream would deliver at the end.
    assert first_at < 0.3, first_at
    assert done_at >= 0.75


def raw_get(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return sock


def test_200_concurrent_one_second_streams(server: Server) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    started = time.monotonic()
    socks = [raw_get(port, "/sse/ticks?n=2&gap=1") for _ in range(200)]
    bodies = []
    for sock in socks:  # each read blocks until its stream ends; they all run at once
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        sock.close()
        bodies.append(b"".join(chunks))
    elapsed = time.monotonic() - started
    assert all(body.startswith(b"HTTP/1.1 200") for body in bodies)
    assert all(body.count(b"data: ") == 2 for body in bodies)
    # One worker, 200 streams of 1 s each: together, not one after another.
    assert elapsed < 3.5, elapsed


def test_disconnect_runs_the_generators_finally(server: Server) -> None:
    key = uuid.uuid4().hex
    port = int(server.url.rsplit(":", 1)[1])
    sock = raw_get(port, f"/sse/tracked/{key}")
    received = b""
    while b"data: tick" not in received:  # headers and the first event may come apart
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    assert requests.get(f"{server.url}/sse/state/{key}", timeout=TIMEOUT).json() == {
        "state": "open"
    }
    sock.close()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        state = requests.get(f"{server.url}/sse/state/{key}", timeout=TIMEOUT).json()["state"]
        if state == "closed":
            break
        time.sleep(0.05)
    assert state == "closed"
    closed_after = 3 - (deadline - time.monotonic())
    assert closed_after < 1.0, closed_after


def test_sigterm_ends_an_event_stream_cleanly(launcher: Launcher) -> None:
    """A stop ends an open EventStream whole, at once, so the browser reconnects (to
    another instance) with Last-Event-ID; gunicorn's own worker lets it run to its end."""
    server = launcher.start(streaming_target(), fresh=True)
    url = f"{server.url}/sse/ticks?n=3&gap=0.5"
    with requests.Session() as http:  # keep-alive: the connection outlives the stream
        with http.get(url, stream=True, timeout=TIMEOUT) as response:
            events = sse_events(response.iter_lines())
            next(events)
            server.process.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            rest = list(events)  # a cut body would raise here (ChunkedEncodingError)
        ended = time.monotonic() - stopped
        expected = [1, 2] if server.kind == "gunicorn" else []
        assert [json.loads(e["data"])["i"] for e in rest] == expected
        assert server.process.wait(timeout=10) == 0, server.output()
    took = time.monotonic() - stopped
    if server.kind != "gunicorn":
        assert ended < 0.5, ended
        # The keep-alive connection goes once it has been idle a second or two
        # (STOP_IDLE, so that a proxy never sends into a closing socket).
        assert took < 3.5, took
