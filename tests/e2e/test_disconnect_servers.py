"""Clients that leave, on every server: streams closed and handlers told within a second.

The app (``streaming_app.py``) records, by the server's clock, when each
request's generator ran its ``finally:`` and when a handler saw
``request.disconnected`` or its ``on_disconnect`` callback ran. The client is a
raw socket that leaves the way browsers do: a normal close (FIN), or a reset.
"""

from __future__ import annotations

import socket
import struct
import time
import uuid
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from servers import Launcher, Server

pytestmark = pytest.mark.e2e

TIMEOUT = 10
#: The bar: the work stops within this long of the client leaving.
WITHIN = 1.0


@pytest.fixture
def server(launch: Launcher) -> Server:
    from servers import REPO, Target

    here = "tests/e2e/streaming_app.py"
    return launch.start(
        Target("streaming", run=here, wsgi="streaming_app:app", chdir=REPO / "tests" / "e2e")
    )


def leave(sock: socket.socket, how: str) -> float:
    """Close *sock* normally or with a reset; return when, by this machine's clock."""
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    left = time.time()
    sock.close()
    return left


def open_request(server: Server, path: str, until: bytes) -> socket.socket:
    """Send GET *path* and read until *until* arrived (the stream's first chunk)."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    received = b""
    while until not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    return sock


def wait_seen(server: Server, key: str, what: str) -> float:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        record = requests.get(f"{server.url}/seen/{key}", timeout=TIMEOUT).json()
        if what in record:
            return float(record[what])
        time.sleep(0.05)
    pytest.fail(f"{what} never happened for {key}: {record}")


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize(
    "path",
    ["/idle/{key}", "/idle-sse/{key}?heartbeat=none", "/idle-sse/{key}?heartbeat=15"],
    ids=["generator", "sse-no-heartbeat", "sse-heartbeat"],
)
def test_an_idle_stream_is_closed_within_a_second_of_the_client_leaving(
    server: Server, path: str, how: str
) -> None:
    """A generator blocked for 30 s between chunks runs its finally: within 1 s of the close."""
    key = uuid.uuid4().hex
    sock = open_request(server, path.format(key=key), b"first")
    time.sleep(0.2)  # blocked in its sleep by now
    left = leave(sock, how)
    closed = wait_seen(server, key, "closed")
    assert closed - left < WITHIN, f"closed {closed - left:.2f} s after the client left"


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_handler_sees_request_disconnected_and_on_disconnect_runs(
    server: Server, how: str
) -> None:
    key = uuid.uuid4().hex
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    sock.sendall(f"GET /wait/{key} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    wait_seen(server, key, "opened")
    left = leave(sock, how)
    assert wait_seen(server, key, "disconnected") - left < WITHIN
    assert wait_seen(server, key, "callback") - left < WITHIN


def test_a_client_that_stays_is_not_taken_for_gone(server: Server) -> None:
    """Pipelined bytes are not a disconnect: both answers arrive, in order."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        key = uuid.uuid4().hex
        sock.sendall(
            f"GET /idle-sse/{key}?heartbeat=none HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            + f"GET /seen/{key} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        received = b""
        while b"first" not in received:
            received += sock.recv(65536)
        time.sleep(0.5)
        record = requests.get(f"{server.url}/seen/{key}", timeout=TIMEOUT).json()
        assert "closed" not in record  # still streaming: the client never left


def test_an_idle_stream_gets_heartbeats_between_events(server: Server) -> None:
    """Heartbeats while the generator is blocked: well framed, about every `heartbeat` seconds.

    On microroute's own loop the server writes them (no greenlet per stream);
    on gunicorn -k gevent the stream's own greenlet does: the bytes are the same.
    """
    key = uuid.uuid4().hex
    started = time.monotonic()
    with requests.get(
        f"{server.url}/idle-sse/{key}?heartbeat=1", stream=True, timeout=TIMEOUT
    ) as response:
        lines = response.iter_lines()
        assert next(lines) == b'data: {"first":true}'
        assert next(lines) == b""
        beats = 0
        while beats < 3:
            line = next(lines)
            if line:
                assert line == b": heartbeat"
                beats += 1
    took = time.monotonic() - started
    assert 2.0 < took < 6.0, took  # three heartbeats, a second or so apart
