"""Request headers: invalid UTF-8, NUL, huge values and many headers.

The app reads headers as latin-1 strings (PEP 3333), so odd bytes are just
characters. Size and count limits belong to the server: they are checked here
through a real ``microroute run`` (gevent's pywsgi), which refuses an
oversized request line with 414 and an oversized or too-numerous header
section with 400 (an empty body, ``Connection: close``), before the app runs.
pywsgi limits each header line (64 KiB, via ``http.client``) and their number
(100), but not the header section's total size: 95 lines of 64 KiB each are
one header section of 6 MB, which the server must refuse too.
"""

from __future__ import annotations

import pytest

IN_APP = {
    "invalid-utf8": b"\xff\xfe".decode("latin-1"),
    "nul": "a\x00b",
    "long": "v" * 100_000,
    "control-chars": "\x01\x02\x7f",
}


@pytest.mark.parametrize("value", IN_APP.values(), ids=IN_APP.keys())
def test_odd_header_values_read_as_latin1_text(call, not_a_500, value):
    body = not_a_500(call("/headers", HTTP_X_TEST=value))
    assert body["x"] == value


def test_many_headers_in_app(call, not_a_500):
    extra = {f"HTTP_X_H{i}": "v" for i in range(2000)}
    assert not_a_500(call("/headers", **extra))["count"] >= 2000


def request(headers: bytes, target: bytes = b"/static/page") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n"


SERVER_LIMITS = {
    # Over microroute run's 64 KiB budget for the whole header section: 431.
    "huge-header-value": (request(b"X-Test: " + b"v" * 70_000 + b"\r\n"), 431),
    "huge-cookie": (request(b"Cookie: a=" + b"v" * 70_000 + b"\r\n"), 431),
    "many-headers": (request(b"".join(b"X-H%d: v\r\n" % i for i in range(200))), 431),
    "many-cookies-headers": (request(b"Cookie: a=1\r\n" * 150), 431),
    "huge-request-line": (request(b"", b"/query?a=" + b"x" * 10_000), 414),
    "huge-header-name": (request(b"X-" + b"n" * 70_000 + b": v\r\n"), 431),
    "huge-header-section-in-total": (
        request(b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1_000) for i in range(95))),
        431,
    ),
    "negative-content-length": (request(b"Content-Length: -5\r\n"), 400),
    "non-numeric-content-length": (request(b"Content-Length: lots\r\n"), 400),
}


@pytest.mark.parametrize(("raw", "status"), SERVER_LIMITS.values(), ids=SERVER_LIMITS.keys())
def test_server_refuses_oversized_headers_with_a_4xx(raw_http, raw, status):
    """README: 'header section (microroute run) | 64 KiB in all | | 431'.

    And README: 'header line / count / request line (microroute run) |
    64 KiB / 100 / 8 KiB | | 431 / 431 / 414'.
    """
    resp = raw_http(raw)
    assert resp.status_code in (status if isinstance(status, tuple) else (status,))
    assert 400 <= resp.status_code < 500


def test_server_still_serves_after_hostile_headers(raw_http):
    raw_http(request(b"X-Test: " + b"v" * 70_000 + b"\r\n"))
    resp = raw_http(request(b"X-Test: \xff\xfe\r\n", b"/headers"))
    assert resp.status_code == 200
    assert resp.json()["x"] == "\xff\xfe"
