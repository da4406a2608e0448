"""Request smuggling against ``microroute run``: framing two parsers could read differently.

A front proxy and the server must agree on where each request ends. RFC 9112
§6.1 lets a server refuse what it cannot frame for sure, and ``microroute run``
does: a ``Transfer-Encoding`` other than exactly ``chunked``, one together
with ``Content-Length``, a repeated or non-numeric ``Content-Length``, and
header lines a lenient parser would read one way and a strict one another
(bare CR or LF, obs-fold, space before the colon) are each a JSON 400 with
``Connection: close``, and the request hidden in the body is never answered.
"""

from __future__ import annotations

import contextlib
import json
import socket

import pytest

from microroute.server import MalformedBody

# What would be answered if the server read the body as a request of its own.
SMUGGLED = b"GET /static/page HTTP/1.1\r\nHost: x\r\n\r\n"


def post(headers: bytes, body: bytes = b"") -> bytes:
    return b"POST /data HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body


CHUNKED_SMUGGLE = b"0\r\n\r\n" + SMUGGLED

REFUSED = {
    # CL.TE / TE.CL: both headers, each naming a different end of the body.
    "te-and-cl": post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", CHUNKED_SMUGGLE),
    "cl-and-te": post(b"Transfer-Encoding: chunked\r\nContent-Length: 44\r\n", CHUNKED_SMUGGLE),
    # TE.TE: codings a proxy may ignore while the server honours them, or the reverse.
    "te-gzip-chunked": post(b"Transfer-Encoding: gzip, chunked\r\n", CHUNKED_SMUGGLE),
    "te-chunked-gzip": post(b"Transfer-Encoding: chunked, gzip\r\n", CHUNKED_SMUGGLE),
    "te-identity": post(b"Transfer-Encoding: identity\r\nContent-Length: 3\r\n", b"abc"),
    "te-xchunked": post(b"Transfer-Encoding: xchunked\r\n", CHUNKED_SMUGGLE),
    "te-twice": post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n", CHUNKED_SMUGGLE),
    "te-chunked-twice": post(b"Transfer-Encoding: chunked, chunked\r\n", CHUNKED_SMUGGLE),
    "te-quoted": post(b'Transfer-Encoding: "chunked"\r\n', CHUNKED_SMUGGLE),
    "te-vertical-tab": post(b"Transfer-Encoding:\x0bchunked\r\n", CHUNKED_SMUGGLE),
    "te-space-before-colon": post(b"Transfer-Encoding : chunked\r\n", CHUNKED_SMUGGLE),
    "te-obs-fold": post(b"X: y\r\n Transfer-Encoding: chunked\r\n", CHUNKED_SMUGGLE),
    "te-folded-value": post(b"Transfer-Encoding:\r\n chunked\r\n", CHUNKED_SMUGGLE),
    "te-after-bare-cr": post(b"X: y\rTransfer-Encoding: chunked\r\n", CHUNKED_SMUGGLE),
    "te-in-http10": b"POST /data HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED_SMUGGLE,
    "te-nul": post(b"Transfer-Encoding: chunked\x00\r\n", CHUNKED_SMUGGLE),
    # Content-Length spellings int() accepts and a strict proxy does not.
    "cl-twice-differing": post(b"Content-Length: 0\r\nContent-Length: 44\r\n", SMUGGLED),
    "cl-twice-same": post(b"Content-Length: 44\r\nContent-Length: 44\r\n", SMUGGLED),
    "cl-list": post(b"Content-Length: 44, 44\r\n", SMUGGLED),
    "cl-plus": post(b"Content-Length: +44\r\n", SMUGGLED),
    "cl-underscore": post(b"Content-Length: 4_4\r\n", SMUGGLED),
    "cl-unicode-digits": post("Content-Length: \u0664\u0664\r\n".encode("utf-8"), SMUGGLED),
    # Line ends and start lines a lenient parser repairs.
    "bare-lf-header": post(b"X: y\nContent-Length: 44\r\n", SMUGGLED),
    "header-without-colon": post(b"Content-Length 44\r\n", SMUGGLED),
    "header-name-not-a-token": post(b"Content(Length): 44\r\n", SMUGGLED),
    "request-line-tab": b"GET\t/static/page HTTP/1.1\r\nHost: x\r\n\r\n",
    "request-line-two-spaces": b"GET  /static/page HTTP/1.1\r\nHost: x\r\n\r\n",
    "request-line-bare-lf": b"GET /static/page HTTP/1.1\nHost: x\r\n\r\n",
    "http09": b"GET /static/page\r\n\r\n",
    "version-garbage": b"GET /static/page HTTP/1.1x\r\nHost: x\r\n\r\n",
}


def exchange(address: tuple[str, int], raw: bytes) -> bytes:
    """Send *raw*, then read until the server closes (it must: Connection: close)."""
    with socket.create_connection(address, timeout=10) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw)
        received = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received.append(chunk)
    return b"".join(received)


@pytest.mark.parametrize("raw", REFUSED.values(), ids=REFUSED.keys())
def test_ambiguous_framing_is_a_400_that_closes_the_connection(served, raw):
    """README: 'microroute run refuses request smuggling ... a 400 with Connection: close'."""
    answer = exchange(served, raw)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b"\r\nConnection: close" in head
    assert b"\r\nContent-Type: application/json" in head
    assert isinstance(json.loads(body)["error"], str) and b"Traceback" not in body
    # One answer only: the request hidden in the body was never served.
    assert answer.count(b"HTTP/1.1 ") == 1, answer[:600]


ACCEPTED = {
    "chunked": post(b"Transfer-Encoding: chunked\r\n", b"3\r\nabc\r\n0\r\n\r\n"),
    "chunked-any-case": post(b"Transfer-Encoding: ChUnKeD\r\n", b"3\r\nabc\r\n0\r\n\r\n"),
    "chunk-extension": post(b"Transfer-Encoding: chunked\r\n", b"3;x=1\r\nabc\r\n0\r\n\r\n"),
    "content-length": post(b"Content-Length: 3\r\n", b"abc"),
    "tab-around-value": post(b"Content-Length:\t3 \r\n", b"abc"),
}


@pytest.mark.parametrize("raw", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_plain_framing_still_works(served, raw):
    answer = exchange(served, raw.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"))
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert answer.endswith(b'{"size":3}')


def test_a_keep_alive_connection_serves_the_next_request_after_a_body(served):
    raw = post(b"Content-Length: 3\r\n", b"abc") + SMUGGLED.replace(
        b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"
    )
    answer = exchange(served, raw)
    assert answer.count(b"HTTP/1.1 200 ") == 2, answer[:600]


BROKEN_CHUNKS = {
    "empty-chunk-size": b"\r\n\r\n" + SMUGGLED,
    "non-hex-chunk-size": b"zz\r\nabc\r\n0\r\n\r\n" + SMUGGLED,
    "chunk-longer-than-its-size": b"1\r\nabc\r\n0\r\n\r\n" + SMUGGLED,
    "no-crlf-after-a-chunk": b"3\r\nabc0\r\n\r\n" + SMUGGLED,
    "chunk-size-0x": b"0x3\r\nabc\r\n0\r\n\r\n" + SMUGGLED,
}


@pytest.mark.parametrize("body", BROKEN_CHUNKS.values(), ids=BROKEN_CHUNKS.keys())
def test_a_malformed_chunked_body_is_a_400_that_closes_the_connection(served, body):
    """README: 'A malformed chunked body is a 400 that closes the connection'.

    The app reads the body and the server's chunk parser fails: a JSON 400, not a 500.

    The rest of the body must not be read as the next request either.
    """
    answer = exchange(served, post(b"Transfer-Encoding: chunked\r\n", body))
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert rest.startswith(b'{"error":"Malformed request body: ')
    assert rest.count(b"Malformed request body") == 1, rest  # said once, not twice
    assert answer.count(b"HTTP/1.1 ") == 1, answer[:600]


@pytest.mark.parametrize(
    "failure",
    [
        OSError("Invalid chunk size"),  # gunicorn's and gevent's words
        MalformedBody("Malformed request body: Invalid chunk size"),  # microroute run's
    ],
)
def test_the_app_answers_400_when_the_servers_input_fails(call, refused, failure):
    """The 400 says "Malformed request body" once, whichever server's words it carries."""

    class Broken:
        def read(self, size: int = -1) -> bytes:
            raise failure

    resp = call("/data", "POST", **{"wsgi.input": Broken(), "wsgi.input_terminated": True})
    assert refused(resp, 400)["error"] == "Malformed request body: Invalid chunk size"


@pytest.mark.parametrize("target", [b"/data", b"/no-such-route", b"/items/../x"])
def test_a_head_response_carries_no_body(served, target):
    """README: 'a response to HEAD carries no body'."""
    raw = b"HEAD " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = exchange(served, raw)
    assert answer.startswith(b"HTTP/1.1 4"), answer[:300]
    assert answer.endswith(b"\r\n\r\n"), answer[-200:]


def test_an_empty_line_before_a_request_line_is_ignored(served):
    """RFC 9112 §2.2: a server SHOULD ignore at least one empty line before a request."""
    answer = exchange(
        served,
        post(b"Content-Length: 3\r\n", b"abc")
        + b"\r\n"
        + SMUGGLED.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"),
    )
    assert answer.count(b"HTTP/1.1 200 ") == 2, answer[:600]
