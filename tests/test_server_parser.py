"""The llhttp request parser (``microroute.server.parser``), with no socket.

Bytes in, parsed requests or refusals out: the same whatever the reads a
client's segments make of them, holding no more than the limits.
"""

from __future__ import annotations

import random

import pytest

from microroute.server.limits import MAX_PIPELINED, READ_SIZE
from microroute.server.parser import Reject, RequestParser
from microroute.server.request import ParsedRequest

STREAM = (
    b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
    b"\r\n"  # an empty line before a request: allowed (RFC 9112 section 2.2)
    b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello\r\n\r\nyo"
    b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"4\r\nwi\r\n\r\n3;ext=1\r\nkix\r\n0\r\nTrailer: t\r\n\r\n"
    b"GET /d HTTP/1.1\r\nHost: h\r\nX-Line: GET /d HTTP/1.1\r\n\r\n"
)
EXPECTED = [
    ("GET", "/a", b""),
    ("POST", "/b", b"hello\r\n\r\nyo"),
    ("POST", "/c", b"wi\r\nkix"),
    ("GET", "/d", b""),
]


def parse(reads: list[bytes]) -> list[tuple[str, str, bytes]]:
    """Feed *reads* one by one, answering whatever is queued between them."""
    parser = RequestParser({})
    seen: list[ParsedRequest | Reject] = []
    for data in reads:
        assert parser.feed(data)
        while parser.backlog:
            seen.extend(parser.ready)
            parser.ready.clear()
            assert parser.resume()
    seen.extend(parser.ready)
    out = []
    for item in seen:
        assert isinstance(item, ParsedRequest), item
        out.append((item.environ["REQUEST_METHOD"], item.environ["PATH_INFO"], bytes(item.body)))
    return out


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_any_cut_in_two_parses_the_same(cut: int) -> None:
    assert parse([STREAM[:cut], STREAM[cut:]]) == EXPECTED


def test_random_segmentations_parse_the_same() -> None:
    rng = random.Random(21)
    for _ in range(3000):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(2, 12)))
        reads = [STREAM[a:b] for a, b in zip([0, *cuts], [*cuts, len(STREAM)], strict=True)]
        assert parse(reads) == EXPECTED, cuts


def test_byte_by_byte_parses_the_same() -> None:
    assert parse([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_a_pipeline_cut_mid_head_is_not_kept() -> None:
    """Issue 21: reads that each end in the middle of the next head used to be kept
    whole, from that head's start on, for as long as the client went on."""
    request = b"GET /quick HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 500 + b"\r\n\r\n"
    parser = RequestParser({})
    stream = request * 400
    for start in range(0, len(stream), 3000):  # 3000: never a whole number of requests
        assert parser.feed(stream[start : start + 3000])
        while parser.ready or parser.backlog:
            parser.ready.clear()
            if parser.backlog:
                assert parser.resume()
        held = len(parser.backlog) + len(parser._line or b"") + len(parser._request_line)
        assert held < len(request), held


def test_requests_parsed_ahead_are_bounded() -> None:
    """One read of tiny pipelined requests queues MAX_PIPELINED; the rest waits unparsed."""
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    data = request * (READ_SIZE // len(request))
    parser = RequestParser({})
    assert parser.feed(data)
    assert len(parser.ready) == MAX_PIPELINED
    assert len(parser.backlog) == len(data) - MAX_PIPELINED * len(request)
