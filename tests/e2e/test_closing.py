"""Whenever a server closes a connection after a response, that response says ``Connection: close``.

Issue 21: behind nginx's keep-alive upstream pool, a connection closed after a
response that did not say so gets the proxy's next request, and that request
is a 502 ("upstream prematurely closed connection", "connection reset by
peer"). Each way the llhttp loop used to close silently is a row here, on
every server kind. The client in these tests keeps to HTTP: after a response
without ``Connection: close`` it may send its next request, which must be
answered; after one with it, the server must close, and must not reset the
connection before the client has read the answer.
"""

from __future__ import annotations

import signal
import socket
import time
from typing import TYPE_CHECKING

import pytest
from rawhttp import closed_by_server, read_response
from servers import DEPLOY, GUNICORNS, on

if TYPE_CHECKING:
    from servers import Launcher, Server

pytestmark = pytest.mark.e2e

TIMEOUT = 10
QUICK = b"GET /quick HTTP/1.1\r\nHost: x\r\n\r\n"


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=TIMEOUT)


def says_close(headers: dict[str, str]) -> bool:
    return "close" in headers.get("connection", "").lower()


def keeps_its_word(sock: socket.socket, buffer: bytearray, headers: dict[str, str]) -> None:
    """The response said close and the server closes; or it did not, and the next request
    on the connection is answered."""
    if says_close(headers):
        assert closed_by_server(sock), "said Connection: close, then kept the connection open"
        return
    sock.sendall(QUICK)
    status, _, _ = read_response(sock, buffer)  # fails if the server closed instead
    assert status.startswith(b"HTTP/1.1 200"), status


@pytest.fixture
def server(launch: Launcher) -> Server:
    return launch.start(DEPLOY)


def test_a_response_finished_during_a_stop_says_close(launch: Launcher) -> None:
    """SIGTERM while a request runs: its answer goes out whole, saying the connection
    ends (microroute's servers), or the connection serves the next request."""
    server = launch.start(DEPLOY, fresh=True)
    with connect(server) as sock:
        sock.sendall(b"GET /slow?s=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        buffer = bytearray()
        status, headers, body = read_response(sock, buffer)
        assert status.startswith(b"HTTP/1.1 200") and body == b'{"slept":1.0}', (status, body)
        if server.kind != "gunicorn":  # gunicorn's own worker decides before the app runs
            assert says_close(headers), headers
        keeps_its_word(sock, buffer, headers)
    assert server.process.wait(timeout=TIMEOUT) == 0, server.output()


def test_a_keep_alive_connection_is_not_closed_under_a_request_when_a_stop_begins(
    launch: Launcher,
) -> None:
    """A stop does not close an idle keep-alive connection at once: a request a proxy
    sends on it right then is answered (with ``Connection: close``), never reset."""
    server = launch.start(DEPLOY, fresh=True)
    with connect(server) as sock:
        buffer = bytearray()
        sock.sendall(QUICK)
        _, headers, _ = read_response(sock, buffer)
        assert not says_close(headers)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        sock.sendall(QUICK)
        status, headers, _ = read_response(sock, buffer)
        assert status.startswith(b"HTTP/1.1 200"), status
        assert says_close(headers), headers
        assert closed_by_server(sock)
    assert server.process.wait(timeout=TIMEOUT) == 0, server.output()


@on(*GUNICORNS)  # microroute run has no --max-requests
def test_the_response_that_reaches_max_requests_says_close(launch: Launcher) -> None:
    """gunicorn's ``--max-requests``: the worker's last response says close, and the
    next worker serves the next connection."""
    server = launch.start(DEPLOY, args=["--max-requests", "4"])
    with connect(server) as sock:
        buffer = bytearray()
        for answered in range(1, 5):  # noqa: B007 - the readiness poll took one or more
            sock.sendall(QUICK)
            status, headers, _ = read_response(sock, buffer)
            assert status.startswith(b"HTTP/1.1 200"), status
            if says_close(headers):
                break
        else:
            pytest.fail("no response said Connection: close before --max-requests 4")
        assert closed_by_server(sock), f"open after answer {answered}"
    with connect(server) as sock:  # the arbiter's next worker
        sock.sendall(QUICK)
        assert read_response(sock, bytearray())[0].startswith(b"HTTP/1.1 200")


def test_an_expect_100_request_answered_without_its_body(server: Server) -> None:
    """A final answer instead of ``100 Continue``: the client never sends the body, so
    the server cannot find the next request after it and must say it closes."""
    with connect(server) as sock:
        sock.sendall(
            b"POST /ignore HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 10\r\n\r\n"
        )
        buffer = bytearray()
        status, headers, _ = read_response(sock, buffer)
        if status.startswith(b"HTTP/1.1 100"):  # gunicorn's own worker invites every body
            sock.sendall(b"0123456789")
            status, headers, _ = read_response(sock, buffer)
        assert status.startswith(b"HTTP/1.1 200"), status
        if server.kind != "gunicorn":
            assert says_close(headers), headers
        keeps_its_word(sock, buffer, headers)


def test_a_413_whose_body_is_too_big_to_discard(server: Server) -> None:
    """20 MiB announced (over max_body_size): answered 413 before the body is read; the
    answer says close, and arrives whole while the client is still sending."""
    size = 20 * 1024 * 1024
    with connect(server) as sock:
        sock.sendall(
            b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % size
        )
        sock.sendall(b"x" * 512 * 1024)  # what a client sends before it reads anything
        buffer = bytearray()
        status, headers, body = read_response(sock, buffer)
        assert status.startswith(b"HTTP/1.1 413"), (status, body)
        if server.kind != "gunicorn":  # gunicorn's own worker reads and discards it all
            assert says_close(headers), headers
        else:
            sock.sendall(b"x" * (size - 512 * 1024))
        keeps_its_word(sock, buffer, headers)


def test_an_upgrade_offer_is_ignored_and_the_next_request_answered(server: Server) -> None:
    """``curl --http2`` offers ``Upgrade: h2c``: served as HTTP/1.1, and the request
    pipelined after it is answered too (it used to be parsed no further, silently)."""
    offer = (
        b"GET /quick HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
    )
    with connect(server) as sock:
        sock.sendall(offer + QUICK)
        buffer = bytearray()
        status, headers, body = read_response(sock, buffer)
        assert status.startswith(b"HTTP/1.1 200") and body == b'{"ok":true}', (status, body)
        keeps_its_word(sock, buffer, headers)
