"""A graceful stop that drops nothing: ``microroute run`` (also ``--workers 2``) and the worker.

Issue 21, "Deploys that drop nothing": on SIGTERM ``/readyz`` turns 503 at
once; new connections are still accepted for the drain delay; an in-flight
request finishes, saying ``Connection: close``; an open EventStream ends
cleanly (its last chunk sent), so a browser reconnects elsewhere with
``Last-Event-ID``; ``after()`` work drains; the process exits 0.
(``gunicorn -k gevent`` knows none of it: its worker does not tell the app.)
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from rawhttp import closed_by_server, read_response
from servers import DEPLOY

if TYPE_CHECKING:
    from servers import Launcher, Server

pytestmark = pytest.mark.e2e

TIMEOUT = 10
DRAIN = 1.5


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=TIMEOUT)


def get(sock: socket.socket, path: str, buffer: bytearray) -> tuple[bytes, dict[str, str], bytes]:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return read_response(sock, buffer)


def start(launch: Launcher, workers: int | None, after_dir: Path) -> Server:
    env = {"DEPLOY_AFTER_DIR": str(after_dir)}
    if launch.kind == "microroute":
        args = ["--drain-delay", str(DRAIN)]
        if workers:
            args += ["--workers", str(workers)]
    else:  # the worker reads it from the environment (microroute run --workers sets it)
        env["MICROROUTE_DRAIN_DELAY"] = str(DRAIN)
        args = ["--graceful-timeout", "10"]
    return launch.start(DEPLOY, args=args, env=env)


# Not gunicorn -k gevent: it does not tell the app it stops, nor ends streams; and
# --workers is microroute run's.
@pytest.mark.parametrize(
    ("launch", "workers"),
    [("microroute", None), ("gunicorn-microroute", None), ("microroute", 2)],
    ids=["microroute-one-process", "gunicorn-microroute-one-process", "microroute-workers-2"],
    indirect=["launch"],
)
def test_a_stop_drops_nothing(launch: Launcher, workers: int | None, tmp_path: Path) -> None:
    server = start(launch, workers, tmp_path)
    with connect(server) as stream, connect(server) as probe, connect(server) as busy:
        buffer = {sock: bytearray() for sock in (stream, probe, busy)}
        # An open event stream, a keep-alive connection, a request in flight, after() work.
        stream.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 41\r\n\r\n")
        while b'data: {"n":42}' not in buffer[stream]:
            buffer[stream] += stream.recv(65536)
        status, _, _ = get(probe, "/readyz", buffer[probe])
        assert status.startswith(b"HTTP/1.1 200")
        key = f"k{time.monotonic_ns()}"
        with connect(server) as later:
            assert get(later, f"/after/{key}", bytearray())[0].startswith(b"HTTP/1.1 200")
        busy.sendall(b"GET /slow?s=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)

        server.process.send_signal(signal.SIGTERM)
        stopped = time.monotonic()
        time.sleep(0.3)
        # /readyz: 503 at once, on the connection it already had...
        status, headers, body = get(probe, "/readyz", buffer[probe])
        assert status.startswith(b"HTTP/1.1 503"), (status, body)
        assert headers.get("connection") == "close"
        # ...and on a new one: still accepted during the drain delay.
        with connect(server) as fresh:
            status, headers, _ = get(fresh, "/quick", bytearray())
            assert status.startswith(b"HTTP/1.1 200") and headers.get("connection") == "close"
        # The request in flight finishes, saying the connection ends.
        status, headers, body = read_response(busy, buffer[busy])
        assert status.startswith(b"HTTP/1.1 200") and body == b'{"slept":1.0}', body
        assert headers.get("connection") == "close"
        # The event stream ended whole (its last chunk), at once.
        while not buffer[stream].endswith(b"\r\n0\r\n\r\n"):
            chunk = stream.recv(65536)
            assert chunk, f"cut without its last chunk: {bytes(buffer[stream][-80:])!r}"
            buffer[stream] += chunk
        assert time.monotonic() - stopped < 2.0
        assert closed_by_server(stream)
    assert server.process.wait(timeout=TIMEOUT) == 0, server.output()
    assert (tmp_path / key).read_text() == "done"  # after() work drained before the exit
