"""Parsing and timeouts at the socket, on every server kind (issue 21).

What ``curl --http2``, gunicorn's parser corpus and a few hostile clients sent
that the llhttp loop got wrong: a body after an ``Upgrade: h2c`` offer, a
request line with two spaces hidden behind a header repeating it, ``100
Continue`` to HTTP/1.0, ``Host`` twice or not at all, whitespace in a chunk
line, a connection that never speaks, and a pipelined head arriving in part
behind a long stream. (Extension methods and whitespace around values are rows
of ``test_differential.py``; the parser's own rules are in
``tests/test_server_parser.py``.)
"""

from __future__ import annotations

import json
import socket
import time
from typing import TYPE_CHECKING

import pytest
from rawhttp import closed_by_server, exchange, read_response
from servers import DEPLOY, MICROROUTES, on

if TYPE_CHECKING:
    from servers import Launcher, Server

pytestmark = pytest.mark.e2e

TIMEOUT = 10
QUICK = b"GET /quick HTTP/1.1\r\nHost: x\r\n\r\n"


def address(server: Server) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def connect(server: Server) -> socket.socket:
    return socket.create_connection(address(server), timeout=TIMEOUT)


def status_of(server: Server, raw: bytes) -> int:
    data, _ = exchange(address(server), raw)
    return int(data.split(b" ", 2)[1])


@pytest.fixture
def server(launch: Launcher) -> Server:
    return launch.start(DEPLOY)


def test_a_body_offering_h2c_is_kept(server: Server) -> None:
    """``curl --http2 -d hello``: the upgrade offer is ignored, the body read (it used to
    be lost: a 400 "shorter than its Content-Length"), the next request answered."""
    offer = (
        b"POST /probe HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
        b"Content-Length: 5\r\n\r\nhello"
    )
    with connect(server) as sock:
        sock.sendall(offer + QUICK)
        buffer = bytearray()
        status, _, body = read_response(sock, buffer)
        assert status.startswith(b"HTTP/1.1 200"), (status, body)
        assert json.loads(body)["body"] == "hello"
        assert read_response(sock, buffer)[0].startswith(b"HTTP/1.1 200")


def test_two_spaces_in_the_request_line_are_refused_whatever_the_headers_say(
    server: Server,
) -> None:
    """The check used to search every byte read: a header repeating the request line
    with single spaces let ``GET  /quick`` through.

    README: 'A request line with two spaces (GET  /x) is a 400'.
    """
    smuggled = b"GET  /quick HTTP/1.1\r\nHost: x\r\nX-Copy: GET /quick HTTP/1.1\r\n\r\n"
    assert status_of(server, smuggled) == 400


def test_an_http_1_0_client_is_not_sent_100_continue(server: Server) -> None:
    """RFC 9110 section 10.1.1: an HTTP/1.0 client does not know the interim answer."""
    with connect(server) as sock:
        sock.sendall(
            b"POST /probe HTTP/1.0\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
        )
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(100)  # nothing: the server waits for the body, as a 1.0 client expects
        sock.settimeout(TIMEOUT)
        sock.sendall(b"hello")
        status, _, body = read_response(sock, bytearray())
    assert status.split(b" ")[1] == b"200", status  # gunicorn answers as HTTP/1.0
    assert json.loads(body)["body"] == "hello"


def test_host_twice_or_missing_is_a_400_and_an_absolute_target_s_host_wins(
    server: Server,
) -> None:
    """Two ``Host`` headers used to be joined, ``a,evil``, and served.

    README: 'a Host header twice or (in HTTP/1.1) not at all is a 400, and an
    absolute-form target's host (GET http://a/x) replaces the Host header'.
    """
    assert status_of(server, b"GET /probe HTTP/1.1\r\nHost: a\r\nHost: evil\r\n\r\n") == 400
    if server.kind != "gunicorn":  # gunicorn's own parser needs no Host, keeps the header
        assert status_of(server, b"GET /probe HTTP/1.1\r\n\r\n") == 400
        data, _ = exchange(
            address(server), b"GET http://a.example/probe HTTP/1.1\r\nHost: b\r\n\r\n"
        )
        assert json.loads(data.partition(b"\r\n\r\n")[2])["host"] == "a.example", data


@on(*MICROROUTES)  # gunicorn -k gevent: gunicorn's own parser accepts it
def test_whitespace_in_a_chunk_line_is_refused(server: Server) -> None:
    """Deliberately strict: llhttp refuses BWS around a chunk extension's ``;``.

    README: 'Whitespace in a chunk line (5 ;ext, 5; ext), which RFC 9112 allows as
    "bad whitespace", is refused with a 400 on purpose'.
    """
    for line in (b"5 ;a=b", b"5; a=b"):
        raw = (
            b"POST /probe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            + line
            + b"\r\nhello\r\n0\r\n\r\n"
        )
        assert status_of(server, raw) == 400, line


def test_a_connection_that_sends_nothing_is_closed_after_the_io_timeout(
    launch: Launcher,
) -> None:
    """Issue 21: a silent connection was held for the keep-alive timeout (65 s), so
    10,000 of them held 10,000 fds for a minute. gunicorn's --keep-alive (2 s) is shorter
    than the worker's I/O timeout, so there it is the bound, as under ``-k gevent``."""
    if launch.kind == "microroute":
        args = ["--timeout-io", "2", "--timeout-keep-alive", "30"]
    else:
        args = ["--keep-alive", "2"]
    server = launch.start(DEPLOY, args=args)
    with connect(server) as silent, connect(server) as served:
        served.sendall(QUICK)
        read_response(served, bytearray())
        started = time.monotonic()
        assert closed_by_server(silent, wait=6)
        assert time.monotonic() - started < 5
        if launch.kind == "microroute":  # a client that spoke keeps its keep-alive 30 s
            served.settimeout(0.5)
            with pytest.raises(TimeoutError):
                served.recv(1)


@on("microroute")  # needs --timeout-io 2: microroute run's option
def test_a_stream_is_not_cut_when_the_next_pipelined_head_arrives_in_part(
    launch: Launcher,
) -> None:
    """Issue 21: the head deadline (``--timeout-io``) ran while the server streamed the
    answer before it, and cut a healthy stream: the server was not reading, the client
    was. (The worker's I/O timeout is 30 s; the reaper is the same, see
    tests/test_server_reaper.py.)"""
    server = launch.start(DEPLOY, args=["--timeout-io", "2"])
    with connect(server) as sock:
        sock.sendall(b"GET /count/40 HTTP/1.1\r\nHost: x\r\n\r\nGET /quick HTTP/1.1\r\nHo")
        buffer = bytearray()
        status, _, body = read_response(sock, buffer)  # 4 s of stream, twice the timeout
        assert status.startswith(b"HTTP/1.1 200")
        assert body.count(b"\n") == 40, body[-40:]
        sock.sendall(b"st: x\r\n\r\n")
        assert read_response(sock, buffer)[0].startswith(b"HTTP/1.1 200")
