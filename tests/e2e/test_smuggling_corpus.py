"""Published request-smuggling and desync cases, sent raw to both servers.

Each case is a request whose body hides a second request, framed so that a
front proxy and a back-end could disagree on where the first one ends. The
served app must answer the first request at most (usually with a 400) and never
the one hidden in its body; see :func:`rawhttp.check_case` for every check.
"""

from __future__ import annotations

from collections import Counter

import pytest
from rawhttp import check_case, no_traceback

SMUGGLED = b"GET /static/page HTTP/1.1\r\nHost: fuzz\r\n\r\n"
SIZE = b"%d" % len(SMUGGLED)  # as a Content-Length
HEX = b"%x" % len(SMUGGLED)  # as a chunk size


def post(headers: bytes, body: bytes) -> bytes:
    return b"POST /data HTTP/1.1\r\nHost: fuzz\r\n" + headers + b"\r\n" + body


# Kettle, "HTTP Desync Attacks" (2019): CL.TE, TE.CL and the TE.TE obfuscations;
# "Browser-Powered Desync Attacks" (2022): CL.0; chunk-extension and bare-LF
# tricks ("funky chunks", 2024-25); and RFC 9112's own ambiguous cases.
CORPUS = {
    "cl-te": post(b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\nG"),
    "te-cl": post(b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
                  HEX + b"\r\n" + SMUGGLED + b"\r\n0\r\n\r\n"),
    "te-te-xchunked": post(b"Transfer-Encoding: xchunked\r\nContent-Length: 4\r\n", b"0\r\n\r\n"),
    "te-te-space-before-colon": post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
    "te-te-two-headers": post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n",
                              b"0\r\n\r\n" + SMUGGLED),
    "te-te-tab": post(b"Transfer-Encoding:\tchunked\r\nContent-Length: 4\r\n", b"0\r\n\r\n"),
    "te-te-leading-space-name": post(b" Transfer-Encoding: chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
    "te-te-obs-fold": post(b"X: X\r\n Transfer-Encoding: chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
    "te-te-lf-in-name": post(b"Transfer-Encoding\n: chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
    "te-te-bare-cr": post(b"X: X\rTransfer-Encoding: chunked\r\n", b"0\r\n\r\n" + SMUGGLED),
    "te-te-vertical-tab": post(b"Transfer-Encoding:\x0bchunked\r\n", b"0\r\n\r\n" + SMUGGLED),
    "te-te-quoted": post(b'Transfer-Encoding: "chunked"\r\n', b"0\r\n\r\n" + SMUGGLED),
    "te-te-chunked-identity": post(b"Transfer-Encoding: chunked, identity\r\n",
                                   b"0\r\n\r\n" + SMUGGLED),
    "te-in-http10": b"POST /data HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                    + SMUGGLED,
    "cl-cl-differing": post(b"Content-Length: 0\r\nContent-Length: " + SIZE + b"\r\n", SMUGGLED),
    "cl-list": post(b"Content-Length: " + SIZE + b", 0\r\n", SMUGGLED),
    "cl-plus": post(b"Content-Length: +" + SIZE + b"\r\n", SMUGGLED),
    "cl-0-on-a-get": b"GET /static/page HTTP/1.1\r\nHost: fuzz\r\nContent-Length: " + SIZE
    + b"\r\n\r\n" + SMUGGLED,
    "chunk-size-0x": post(b"Transfer-Encoding: chunked\r\n",
                          b"0x" + HEX + b"\r\n" + SMUGGLED + b"\r\n0\r\n\r\n"),
    "chunk-size-overflow": post(b"Transfer-Encoding: chunked\r\n",
                                b"1" + b"0" * 21 + HEX + b"\r\n" + SMUGGLED + b"\r\n0\r\n\r\n"),
    "chunk-size-negative": post(b"Transfer-Encoding: chunked\r\n", b"-1\r\n" + SMUGGLED),
    "chunk-size-space": post(b"Transfer-Encoding: chunked\r\n",
                             HEX + b" \r\n" + SMUGGLED + b"\r\n0\r\n\r\n"),
    "chunk-ext-bare-lf": post(b"Transfer-Encoding: chunked\r\n",
                              b"2;\nxx\r\n" + b"0\r\n\r\n" + SMUGGLED),
    "chunk-lf-terminator": post(b"Transfer-Encoding: chunked\r\n", b"2\nxx\n0\n\n" + SMUGGLED),
    "chunk-data-too-long": post(b"Transfer-Encoding: chunked\r\n",
                                b"1\r\nxx\r\n0\r\n\r\n" + SMUGGLED),
    "chunk-empty-size": post(b"Transfer-Encoding: chunked\r\n", b"\r\n\r\n" + SMUGGLED),
    "trailer-smuggle": post(b"Transfer-Encoding: chunked\r\n",
                            b"0\r\nContent-Length: " + SIZE + b"\r\n\r\n" + SMUGGLED),
    "request-line-bare-lf": b"GET /static/page HTTP/1.1\nHost: fuzz\n\n",
    "http09": b"GET /static/page\r\n",
    "absolute-form-other-host": b"GET http://evil.example/static/page HTTP/1.1\r\n"
                                b"Host: fuzz\r\n\r\n",
    "expect-then-no-body": post(b"Expect: 100-continue\r\nContent-Length: 10\r\n", b""),
}  # fmt: skip


# Where the bytes after the body are a second request for every reading of the
# message: RFC 9110 §6.5.1 forbids using a trailer's Content-Length for framing.
PIPELINED = {"trailer-smuggle"}


@pytest.mark.parametrize("name", CORPUS)
def test_published_smuggling_cases_get_one_answer_at_most(security_server, name):
    """README: 'published smuggling and desync cases ... no request smuggled in a body
    is ever answered'."""
    allowed = 2 if name in PIPELINED else 1
    check_case(security_server, CORPUS[name], allowed, Counter())
    no_traceback(security_server)
