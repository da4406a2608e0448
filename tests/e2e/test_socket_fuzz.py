"""Fuzz both servers at the socket with hostile HTTP/1.1 bytes Hypothesis writes.

Request lines, header names and values, and framing (Content-Length, chunked
bodies with odd sizes and extensions, bare LF, obs-fold, duplicate and
conflicting headers) go to ``microroute run`` and to ``gunicorn -k gevent``
serving ``tests/security/security_app.py``, each on a connection of its own;
:func:`rawhttp.check_case` checks every answer (well-formed, no 5xx, no
traceback, at most one per request, the server still serving after). Bytes
sent after a request without framing may be read as one more request, so a
generated case allows two answers when it has such bytes; the published
smuggling cases, which allow one, are in ``test_smuggling_corpus.py``.

The run is bounded in time: ``MICROROUTE_FUZZ_SECONDS`` (30 by default, split
between the three server kinds) in batches of Hypothesis examples. The long run is
``MICROROUTE_FUZZ_SECONDS=600 .venv/bin/python -m pytest tests/e2e/test_socket_fuzz.py -s``;
``-s`` shows the counts each server's run ends with.
"""

from __future__ import annotations

import os
import time
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rawhttp import check_case, no_traceback
from servers import KINDS, Server

FUZZ_SECONDS = float(os.environ.get("MICROROUTE_FUZZ_SECONDS", "30"))
BATCH = 25  # Hypothesis examples per batch; batches run until the time is up

# -- Hypothesis: hostile requests --------------------------------------------------------

TOKEN = st.text("!#$%&'*+-.^_`|~abcxyzABCXYZ0189", min_size=1, max_size=12)
JUNK = st.binary(max_size=24)
TARGETS = [
    b"/static/page", b"/data", b"/json", b"/form", b"/text", b"/echo", b"/query?a=1&b=%ff",
    b"/items/x", b"/files/a/b", b"/files/a/../../etc/passwd", b"//evil.example/", b"*",
    b"http://fuzz/static/page", b"/cookie", b"/session", b"/go?next=//evil", b"/%00", b"/\xff",
    b"/static/page/", b"/a//b", b"/" + b"x" * 9000,
]  # fmt: skip
METHODS = [b"GET", b"POST", b"PUT", b"HEAD", b"OPTIONS", b"DELETE", b"PATCH", b"CONNECT"]
VERSIONS = [b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b"HTTP/0.9", b"http/1.1"]
HEADER_VALUES = {
    b"Content-Length": [b"0", b"3", b"5", b"-1", b"+3", b"0x3", b"3, 3", b"3 3", b"", b"9" * 30],
    b"Transfer-Encoding": [
        b"chunked", b"Chunked", b"chunked, chunked", b"gzip, chunked", b"chunked, gzip",
        b"identity", b" chunked", b"\x0bchunked", b"chunked\x00", b'"chunked"', b"",
    ],
    b"Connection": [b"close", b"keep-alive", b"Upgrade", b"close, close", b""],
    b"Expect": [b"100-continue", b"200-ok"],
    b"Content-Type": [
        b"application/json", b"application/x-www-form-urlencoded", b"text/plain; charset=rot13",
        b"multipart/form-data; boundary=B", b"text/plain; charset=utf-16", b"x/y; charset=",
    ],
    b"Host": [b"fuzz", b"", b"a b", b"evil.example:99999"],
    b"Cookie": [b"session=x.y.z", b"a=\xff", b"uid=1; uid=2"],
}  # fmt: skip
HEADER_NAMES = [*HEADER_VALUES, b"X-Fuzz"]
LINE_ENDS = [b"\r\n"] * 12 + [b"\n", b"\r", b"\r\r\n"]


def mostly(
    draw: st.DrawFn, usual: st.SearchStrategy[bytes], odd: st.SearchStrategy[bytes]
) -> bytes:
    """*usual* four times in five, so that most requests get past the parser."""
    return draw(odd if draw(st.integers(0, 4)) == 0 else usual)


@st.composite
def header_lines(draw: st.DrawFn) -> bytes:
    name = mostly(draw, st.sampled_from(HEADER_NAMES), st.one_of(TOKEN.map(str.encode), JUNK))
    values = HEADER_VALUES.get(name, [b"v"])
    value = mostly(draw, st.sampled_from(values), JUNK)
    colon = mostly(draw, st.just(b": "), st.sampled_from([b":", b":\t", b" : ", b"\t:", b""]))
    prefix = draw(st.sampled_from([b""] * 8 + [b" ", b"\t"]))  # obs-fold
    return prefix + name + colon + value + draw(st.sampled_from(LINE_ENDS))


@st.composite
def chunked_body(draw: st.DrawFn) -> bytes:
    out = b""
    for data in draw(st.lists(st.binary(min_size=1, max_size=20), max_size=4)):
        size = f"{len(data):x}".encode()
        spellings = [size, size.upper(), b"0" * 20 + size, b"0x" + size, size + b" ", b" " + size]
        size = draw(st.sampled_from([*spellings, b"-" + size, b"", b"g"]))
        ext = draw(st.sampled_from([b""] * 4 + [b";a=b", b';a="x"', b";" + b"e" * 100, b";\n"]))
        out += size + ext + draw(st.sampled_from(LINE_ENDS)) + data
        out += draw(st.sampled_from([b"\r\n"] * 6 + [b"\n", b"", b"xx"]))
    odd_ends = [b"0\r\nX: y\r\n\r\n", b"0\n\n", b"", b"00000\r\n\r\n", b"0;x\r\n\r\n"]
    last = draw(st.sampled_from([b"0\r\n\r\n"] * 6 + odd_ends))
    return out + last


@st.composite
def hostile_request(draw: st.DrawFn) -> tuple[bytes, int]:
    """Raw request bytes, and how many requests they may hold at most."""
    method = mostly(draw, st.sampled_from(METHODS), st.one_of(TOKEN.map(str.encode), JUNK))
    target = mostly(draw, st.sampled_from(TARGETS), JUNK.map(lambda b: b"/" + b))
    version = draw(st.sampled_from(VERSIONS))
    space = draw(st.sampled_from([b" "] * 10 + [b"\t", b"  ", b""]))
    line = method + space + target + b" " + version + draw(st.sampled_from(LINE_ENDS))
    # HTTP/1.1 without Host is a 400 (RFC 9112 section 3.2): mostly, send one.
    headers = mostly(draw, st.just(b"Host: fuzz\r\n"), st.just(b""))
    headers += b"".join(draw(st.lists(header_lines(), max_size=5)))
    # A blank line among the drawn ones (empty parts, or junk holding one) ends the
    # head early: what follows may be read as a request of its own.
    early_end = any(blank in line + headers for blank in (b"\r\n\r\n", b"\n\n", b"\n\r\n"))
    body = draw(st.one_of(st.just(b""), st.binary(max_size=40), chunked_body()))
    framing = draw(st.sampled_from(["none", "length", "chunked", "both"]))
    if framing in ("length", "both"):
        headers += b"Content-Length: %d\r\n" % len(body)
    if framing in ("chunked", "both"):
        headers += b"Transfer-Encoding: chunked\r\n"
    # Bytes after a request may be read as the next one: up to two answers then.
    return line + headers + b"\r\n" + body, 2 if body or early_end else 1


def fuzz(server: Server, seconds: float) -> Counter[str]:
    """Run batches of hostile requests at *server* for about *seconds*; return the counts."""
    # Shown even when nothing happened: what the long run must show as 0.
    counts: Counter[str] = Counter({"5xx": 0, "desync": 0, "no answer": 0})

    @settings(
        max_examples=BATCH,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=hostile_request())
    def batch(case: tuple[bytes, int]) -> None:
        check_case(server, *case, counts)

    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        batch()
    return counts


def test_hostile_bytes_never_break_the_server(security_server, capsys):
    """README: 'A fuzzer sends hostile bytes ... no 5xx, no traceback ... the server
    keeps serving'."""
    counts = fuzz(security_server, FUZZ_SECONDS / len(KINDS))
    with capsys.disabled():
        summary = ", ".join(f"{key} {value}" for key, value in sorted(counts.items()))
        print(f"\nsocket fuzz, {security_server.kind}: {summary}")
    assert counts["cases"] > 0
    no_traceback(security_server)
