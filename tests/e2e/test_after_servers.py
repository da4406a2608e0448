"""after() on every server kind: after the last byte, an error, a redirect, and a SIGTERM."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

import pytest
import requests
from servers import APPS, REPO, Launcher, Server, Target

TIMEOUT = 10
AFTER_APP = Target(
    "after", run=str((APPS / "after_app.py").relative_to(REPO)), wsgi="after_app:app", chdir=APPS
)


@pytest.fixture
def after_server(launch: Launcher) -> Server:
    return launch.start(AFTER_APP)


def key() -> str:
    return uuid.uuid4().hex


def status(server: Server, name: str) -> dict[str, object] | None:
    ran: dict[str, object] | None = requests.get(
        f"{server.url}/status/{name}", timeout=TIMEOUT
    ).json()["ran"]
    return ran


def wait_ran(server: Server, name: str) -> dict[str, object]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        ran = status(server, name)
        if ran is not None:
            return ran
        time.sleep(0.02)
    pytest.fail(f"after() work for {name} never ran on {server.kind}:\n{server.output()}")


def test_runs_after_the_last_byte_of_a_stream(after_server: Server) -> None:
    """README: "It runs once the response has been sent to its last byte, a stream's last
    chunk included"."""
    server, name = after_server, key()
    with requests.get(f"{server.url}/stream/{name}", stream=True, timeout=TIMEOUT) as resp:
        lines = resp.iter_lines()
        assert next(lines) == b"first"
        assert status(server, name) is None  # the response is still being sent
        time.sleep(0.2)
        assert status(server, name) is None
        requests.get(f"{server.url}/release/{name}", timeout=TIMEOUT)
        assert list(lines) == [b"last"]
        received = time.time()
    ran = wait_ran(server, name)
    # The generator ran past its last chunk (the server had sent it and asked
    # for more) before the work began.
    assert ran["stream_ended"] is True
    assert isinstance(ran["at"], float) and ran["at"] > received - 0.5


def test_runs_when_the_client_left_early(after_server: Server) -> None:
    """README: "and also when the client left early".

    The server notices the client leaving while the generator waits (see
    test_disconnect_servers.py), so the stream ends there and the work runs
    at once, with no release needed.
    """
    server, name = after_server, key()
    resp = requests.get(f"{server.url}/stream/{name}", stream=True, timeout=TIMEOUT)
    assert next(resp.iter_lines()) == b"first"
    resp.close()  # the client goes away mid-stream
    left = time.time()
    ran = wait_ran(server, name)
    assert ran["stream_ended"] is False
    assert ran["at"] - left < 1.5


def test_runs_when_called_in_an_event_stream_generator(after_server: Server) -> None:
    """README: "Call it in a handler, middleware, an error handler or a stream's
    generator" — an EventStream's too, with its default heartbeat."""
    server, name = after_server, key()
    resp = requests.get(f"{server.url}/events/{name}", timeout=TIMEOUT)
    assert resp.content == b'data: {"token":1}\n\ndata: {"token":2}\n\n'
    assert wait_ran(server, name)["at"]


def test_runs_when_the_client_left_before_the_first_chunk(after_server: Server) -> None:
    """README: "and also when the client left early" — before the stream's first chunk."""
    server, name = after_server, key()
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{server.url}/slow-first/{name}", timeout=0.5)
    left = time.time()
    ran = wait_ran(server, name)
    assert ran["at"] - left < 2.0  # noticed when the client left, not when the chunk came


def test_runs_after_an_error(after_server: Server) -> None:
    """README: "also after an error"."""
    server, name = after_server, key()
    resp = requests.get(f"{server.url}/boom/{name}", timeout=TIMEOUT)
    assert resp.status_code == 500
    assert resp.json() == {"error": "Internal Server Error"}
    assert wait_ran(server, name)["at"]


def test_runs_after_a_redirect(after_server: Server) -> None:
    """README: "or a `redirect()`"."""
    server, name = after_server, key()
    resp = requests.get(f"{server.url}/go/{name}", timeout=TIMEOUT, allow_redirects=False)
    assert resp.status_code == 307
    assert resp.headers["Location"].endswith("/")
    assert wait_ran(server, name)["at"]


def test_sigterm_waits_for_pending_after_work(launch: Launcher, tmp_path: Path) -> None:
    """README: "A graceful stop waits for it: on SIGTERM `microroute run` gives in-flight
    requests and then their `after()` work 5 seconds in all; a gunicorn worker waits for
    it as it exits"."""
    server = launch.start(AFTER_APP, fresh=True)
    marker = tmp_path / "done.txt"
    # Connection: close, so no open connection holds the stop back on its own.
    started = time.monotonic()
    resp = requests.post(
        f"{server.url}/slow",
        json={"path": str(marker)},
        headers={"Connection": "close"},
        timeout=TIMEOUT,
    )
    assert resp.json() == {"scheduled": True}
    assert time.monotonic() - started < 1.5  # the client did not wait for the work
    assert not marker.exists()  # the work sleeps 2 s first
    assert server.stop(signal.SIGTERM) == 0, server.output()
    assert marker.read_text() == "after work finished", server.output()
