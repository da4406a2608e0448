"""The connection loop on a raw socket: keep-alive, pipelining, 100-continue, framing.

Every server kind runs these (``microroute run``, ``gunicorn -k gevent`` and
``gunicorn -k microroute.gunicorn.Worker``): what the llhttp loop does must be
what a WSGI server is expected to do, byte for byte where HTTP says so.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from rawhttp import read_response

if TYPE_CHECKING:
    from servers import Launcher, Server

pytestmark = pytest.mark.e2e

TIMEOUT = 10


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=TIMEOUT)


@pytest.fixture
def server(launch: Launcher) -> Server:
    from servers import HELLO

    return launch.start(HELLO)


def test_pipelined_requests_are_answered_in_order(server: Server) -> None:
    """Keep-alive and pipelining: responses in request order, on one connection."""
    requests = (
        b"".join(f"GET /hello/n{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(20))
        + b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n{"a": 1}'
    )
    with connect(server) as sock:
        sock.sendall(requests)
        buffer = bytearray()
        for i in range(20):
            status, _, body = read_response(sock, buffer)
            assert status == b"HTTP/1.1 200 OK"
            assert json.loads(body) == {"message": f"Hello, n{i}!"}
        status, _, body = read_response(sock, buffer)
        assert (status, json.loads(body)) == (b"HTTP/1.1 201 Created", {"a": 1})


def test_expect_100_continue_is_answered_when_the_body_is_read(server: Server) -> None:
    body = b'{"big": "' + b"x" * 1000 + b'"}'
    head = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    with connect(server) as sock:
        sock.sendall(head)
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim
        sock.sendall(body)
        buffer = bytearray(interim[len(b"HTTP/1.1 100 Continue\r\n\r\n") :])
        status, _, answer = read_response(sock, buffer)
    assert status == b"HTTP/1.1 201 Created"
    assert json.loads(answer) == json.loads(body)


def test_a_chunked_upload_reaches_the_handler_whole(server: Server) -> None:
    parts = [b'{"a": ', b'"', b"y" * 70_000, b'"}']
    chunks = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    with connect(server) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (chunks[:7], chunks[7:40_000], chunks[40_000:]):
            sock.sendall(piece)
            time.sleep(0.02)
        status, _, body = read_response(sock, bytearray())
    assert status == b"HTTP/1.1 201 Created"
    assert json.loads(body) == {"a": "y" * 70_000}


def test_a_stream_is_chunked_and_the_connection_stays_in_sync(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"GET /count/3 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello/after HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        buffer = bytearray()
        _, headers, body = read_response(sock, buffer)
        assert headers["transfer-encoding"] == "chunked"
        assert body.count(b"\n") == 3
        _, _, after = read_response(sock, buffer)
        assert json.loads(after) == {"message": "Hello, after!"}


def test_http_1_0_gets_a_length_or_a_close(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /count/2 HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()  # HTTP/1.0 has no chunked
    assert body.count(b"\n") == 2


def test_http_1_0_keep_alive_is_honoured(server: Server) -> None:
    with connect(server) as sock:
        buffer = bytearray()
        for name in ("a", "b"):
            sock.sendall(f"GET /hello/{name} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
            _, headers, body = read_response(sock, buffer)
            assert json.loads(body) == {"message": f"Hello, {name}!"}
        assert headers.get("connection", "").lower() == "keep-alive"


def test_connection_close_is_honoured(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /hello/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):  # the server closes after the response
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert b"\r\nconnection: close\r\n" in data.lower()


# -- microroute run alone: its own options -----------------------------------------


@pytest.fixture
def short_timeouts(tmp_path) -> Iterator[Server]:
    """``microroute run --timeout-keep-alive 1 --timeout-io 2``: timeouts a test can wait for."""
    from servers import REPO, Server, free_port, subprocess_env, wait_ready
    from support import stop_process

    port = free_port()
    log = tmp_path / "run.log"
    argv = [sys.executable, "-m", "microroute", "run", "examples/hello.py", "--port", str(port),
            "--timeout-keep-alive", "1", "--timeout-io", "2"]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=REPO, env=subprocess_env(), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Server("microroute", f"http://127.0.0.1:{port}", process, log)
    try:
        wait_ready(server)
        yield server
    finally:
        stop_process(process)


def closed_after(sock: socket.socket, started: float) -> float:
    """Seconds from *started* until the server closed *sock* (reading whatever came first)."""
    while sock.recv(65536):
        pass
    return time.monotonic() - started


def test_an_idle_keep_alive_connection_is_closed_after_the_timeout(short_timeouts) -> None:
    """``--timeout-keep-alive 1``: an idle connection goes after a second or two."""
    with connect(short_timeouts) as sock:
        sock.sendall(b"GET /hello/x HTTP/1.1\r\nHost: x\r\n\r\n")
        read_response(sock, bytearray())
        took = closed_after(sock, time.monotonic())
    assert 0.9 < took < 4, took


def test_a_head_sent_a_byte_at_a_time_is_cut_off(short_timeouts) -> None:
    """README: a client that "takes this long to send a request's headers" is disconnected.

    Each byte arrives well within the I/O timeout, so only a deadline for the
    whole head stops a slowloris client.
    """
    head = b"GET /hello/x HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    with connect(short_timeouts) as sock:
        started = time.monotonic()
        try:
            for byte in head:
                sock.sendall(bytes([byte]))
                time.sleep(0.1)
            pytest.fail("the server let a 10-s head through with --timeout-io 2")
        except OSError:  # reset or broken pipe: cut off, as it should be
            took = time.monotonic() - started
        else:  # pragma: no cover
            took = closed_after(sock, started)
    assert took < 5, took


def test_a_client_that_stalls_mid_body_is_disconnected(short_timeouts) -> None:
    """README: "a client that stalls mid-request ... for 30 s is disconnected" (here, 2 s)."""
    with connect(short_timeouts) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\"")
        took = closed_after(sock, time.monotonic())
    assert 1.5 < took < 5, took


def test_an_expect_100_request_refused_by_length_closes_at_once(server: Server) -> None:
    """A 413 to ``Expect: 100-continue``: the body was never invited, so none is awaited."""
    with connect(server) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 99999999999\r\n\r\n"
        )
        started = time.monotonic()
        buffer = bytearray()
        if server.kind == "gunicorn":  # gunicorn's own worker invites the body first
            assert bytes(sock.recv(25)) == b"HTTP/1.1 100 Continue\r\n\r\n"
        status, _, _ = read_response(sock, buffer)
        assert status.startswith(b"HTTP/1.1 413")
        if server.kind != "gunicorn":  # gunicorn's own worker: its own keep-alive rules
            assert closed_after(sock, started) < 2
