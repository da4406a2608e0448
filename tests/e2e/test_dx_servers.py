"""Providers, scoped middleware, the debug page and reason phrases on every server kind."""

from __future__ import annotations

import socket
import time
import uuid

import pytest
import requests
from servers import APPS, REPO, Launcher, Server, Target

pytestmark = pytest.mark.e2e

TIMEOUT = 10
DX_APP = Target(
    "dx", run=str((APPS / "dx_app.py").relative_to(REPO)), wsgi="dx_app:app", chdir=APPS
)


@pytest.fixture
def server(launch: Launcher) -> Server:
    return launch.start(DX_APP)


def test_the_provider_answers_401_before_the_body_is_validated(server: Server) -> None:
    bad = requests.post(f"{server.url}/notes", json={"nope": 1}, timeout=TIMEOUT)
    assert (bad.status_code, bad.json()) == (401, {"error": "Sign in first"})
    signed = {"Authorization": "Bearer good"}
    invalid = requests.post(
        f"{server.url}/notes", json={"nope": 1}, headers=signed, timeout=TIMEOUT
    )
    assert invalid.status_code == 422
    made = requests.post(
        f"{server.url}/notes", json={"text": "hi"}, headers=signed, timeout=TIMEOUT
    )
    assert (made.status_code, made.json()) == (201, {"text": "hi", "by": "ann"})


def test_a_generator_provider_is_torn_down_when_the_client_leaves_a_stream(server: Server) -> None:
    key = uuid.uuid4().hex
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    sock.sendall(f"GET /stream/{key} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    received = b""
    while b"session for" not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    assert requests.get(f"{server.url}/state/{key}", timeout=TIMEOUT).json() == {"closed": None}
    left = time.time()
    sock.close()
    deadline = time.monotonic() + 5
    closed = None
    while closed is None and time.monotonic() < deadline:
        closed = requests.get(f"{server.url}/state/{key}", timeout=TIMEOUT).json()["closed"]
        time.sleep(0.05)
    assert closed is not None, server.output()
    assert closed["stream_ended"] is True  # the stream's finally: ran first
    assert closed["at"] - left < 2.0


def test_scoped_middleware_runs_on_every_cached_hit(server: Server) -> None:
    seen = []
    for _ in range(3):
        response = requests.get(f"{server.url}/admin/report", timeout=TIMEOUT)
        assert response.json() == {"total": 3}
        seen.append((response.headers["X-Microroute-Cache"], response.headers["X-Scoped-Calls"]))
    hits = [int(calls) for cache, calls in seen if cache == "HIT"]
    assert len(hits) >= 2 and hits == sorted(hits) and len(set(hits)) == len(hits)


def test_a_500_is_the_debug_page_for_a_browser_and_json_for_an_api_client(server: Server) -> None:
    page = requests.get(f"{server.url}/boom", headers={"Accept": "text/html"}, timeout=TIMEOUT)
    assert page.status_code == 500
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src" not in page.headers["Content-Security-Policy"]
    assert "ZeroDivisionError" in page.text and "dx_app.py" in page.text
    assert "<script" not in page.text
    api = requests.get(f"{server.url}/boom", timeout=TIMEOUT)
    assert api.headers["Content-Type"] == "application/json"
    trace = api.json()["traceback"]
    first = trace.splitlines()[1]
    assert "dx_app.py" in first and "in boom" in first  # the user's frame comes first
    assert "microroute/" not in trace


def status_line(server: Server, path: str) -> str:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk
            head += chunk
    return head.split(b"\r\n", 1)[0].decode()


def test_reason_phrases_on_the_wire_are_the_standard_ones(server: Server) -> None:
    assert status_line(server, "/empty") == "HTTP/1.1 204 No Content"
    assert status_line(server, "/teapot") == "HTTP/1.1 418 I'm a Teapot"
    assert status_line(server, "/nowhere") == "HTTP/1.1 404 Not Found"
