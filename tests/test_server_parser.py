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


def parse_one(data: bytes) -> ParsedRequest | Reject:
    parser = RequestParser({})
    parser.feed(data)
    assert parser.ready, data
    return parser.ready[0]


def refusal(data: bytes) -> str:
    item = parse_one(data)
    assert isinstance(item, Reject), item
    return item.message


def test_the_request_line_check_reads_the_request_line_itself() -> None:
    """Issue 21: a header repeating the request line with one space each used to satisfy
    the check for a request line with two."""
    smuggled = b"GET  /x HTTP/1.1\r\nHost: a\r\nX-Copy: GET /x HTTP/1.1\r\n\r\n"
    assert refusal(smuggled) == "Malformed request line"
    assert refusal(b"GET /x  HTTP/1.1\r\nHost: a\r\n\r\n") == "Malformed request line"
    for cut in range(1, len(smuggled)):
        parser = RequestParser({})
        parser.feed(smuggled[:cut])
        parser.feed(smuggled[cut:])
        assert isinstance(parser.ready[0], Reject), cut


@pytest.mark.parametrize(
    ("method", "served"),
    [(b"PURGE", True), (b"FROB", True), (b"-BLARGH", True), (b"GETX", True), (b"M-SEARCH", True),
     (b"frob", False), (b"FR#B", False), (b"AB", False), (b"A" * 21, False)],
)  # fmt: skip
def test_extension_methods_are_parsed_by_gunicorn_s_rule(method: bytes, served: bool) -> None:
    """RFC 9110 section 9.1: an origin may define methods; llhttp knows a fixed list."""
    stream = method + b" /p?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
    stream += b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    for cuts in ([], [2], [len(method) - 1], [len(method) + 3], [1, 5, 30]):
        parser = RequestParser({})
        for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            if not parser.feed(stream[a:b]):
                break
        first = parser.ready[0]
        if not served:
            assert isinstance(first, Reject) and first.status.startswith("400"), (method, first)
            continue
        assert isinstance(first, ParsedRequest), (method, cuts, first)
        assert first.environ["REQUEST_METHOD"] == method.decode()
        assert (first.environ["PATH_INFO"], bytes(first.body)) == ("/p", b"abc")
        second = parser.ready[1]
        assert isinstance(second, ParsedRequest) and second.environ["PATH_INFO"] == "/next"


def test_host_must_be_there_once_and_an_absolute_target_s_host_wins() -> None:
    """RFC 9112 section 3.2: one Host in HTTP/1.1; section 3.2.2: the target's host wins."""
    assert (
        refusal(b"GET / HTTP/1.1\r\nHost: a\r\nHost: evil\r\n\r\n") == "More than one Host header"
    )
    assert refusal(b"GET / HTTP/1.1\r\n\r\n") == "Missing Host header"
    old = parse_one(b"GET / HTTP/1.0\r\n\r\n")
    assert isinstance(old, ParsedRequest) and "HTTP_HOST" not in old.environ
    absolute = parse_one(b"GET http://a.example:8080/x?y=1 HTTP/1.1\r\nHost: b\r\n\r\n")
    assert isinstance(absolute, ParsedRequest)
    assert absolute.environ["HTTP_HOST"] == "a.example:8080"
    assert (absolute.environ["PATH_INFO"], absolute.environ["QUERY_STRING"]) == ("/x", "y=1")


def test_trailing_spaces_and_tabs_are_no_part_of_a_value() -> None:
    """RFC 9112 section 5: gunicorn's corpus sends ``Host: a `` and ``X: b\\t``."""
    item = parse_one(b"GET / HTTP/1.1\r\nHost: a \r\nX-Two: b \t\r\nX-Mid: c d\r\n\r\n")
    assert isinstance(item, ParsedRequest)
    environ = item.environ
    assert (environ["HTTP_HOST"], environ["HTTP_X_TWO"], environ["HTTP_X_MID"]) == ("a", "b", "c d")


def test_an_http_1_0_client_is_never_sent_100_continue() -> None:
    """RFC 9110 section 10.1.1: a 1.0 client does not know the interim answer."""
    head = b" / HTTP/%b\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    old = parse_one(b"POST" + head % b"1.0")
    new = parse_one(b"POST" + head % b"1.1")
    assert isinstance(old, ParsedRequest) and isinstance(new, ParsedRequest)
    assert (old.continue_, new.continue_) == (False, True)


@pytest.mark.parametrize("framing", [b"Content-Length: 5", b"Transfer-Encoding: chunked"])
def test_a_body_offering_an_upgrade_is_kept(framing: bytes) -> None:
    """``curl --http2 -d``: the h2c offer is ignored, the body read, the next request parsed."""
    body = b"hello" if framing.startswith(b"Content") else b"5\r\nhello\r\n0\r\n\r\n"
    stream = (
        (
            b"POST /p HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n" + framing + b"\r\n\r\n"
        )
        + body
        + b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    for cut in range(1, len(stream)):
        parser = RequestParser({})
        assert parser.feed(stream[:cut]) and parser.feed(stream[cut:]), cut
        first, second = parser.ready
        assert isinstance(first, ParsedRequest) and isinstance(second, ParsedRequest), cut
        assert (bytes(first.body), first.complete, first.keep_alive) == (b"hello", True, True)
        assert second.environ["PATH_INFO"] == "/next"


def test_connect_ends_the_connection_after_its_answer() -> None:
    """No tunnels: a CONNECT is answered (by the app, or a 400 for an authority-form
    target), and what follows it is never parsed as HTTP."""
    parser = RequestParser({})
    assert not parser.feed(b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n")
    (request,) = parser.ready
    assert isinstance(request, ParsedRequest) and not request.keep_alive
    assert refusal(b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n")


def test_a_request_line_without_a_space_is_refused_not_awaited() -> None:
    """The socket fuzzer's ``0\\r\\n\\r\\n /0 ...``: llhttp refuses the method ``0``; a
    whole line with no space is no extension method to wait for (it went unanswered)."""
    for data in (b"0\r\n\r\n /0\r\n\r\n HTTP/2.0\r\nHost: fuzz\r\n\r\n", b"FROB\r\n\r\n"):
        assert refusal(data) == "Invalid method encountered"
    parser = RequestParser({})
    assert parser.feed(b"FRO")  # a method still arriving is awaited
    assert parser.feed(b"B /x HTTP/1.1\r\nHost: a\r\n\r\n")
    (request,) = parser.ready
    assert isinstance(request, ParsedRequest) and request.environ["REQUEST_METHOD"] == "FROB"
