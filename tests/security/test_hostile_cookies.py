"""Bad and garbled cookies: never a 500; a bad signed cookie reads as missing."""

from __future__ import annotations

import pytest
from itsdangerous import TimestampSigner


@pytest.fixture
def signed_token() -> str:
    """A genuine signed value for the cookie ``token``, as the app signs it."""
    signer = TimestampSigner(b"security-tests", salt="microroute.cookie:token")
    return signer.sign("alice").decode()


def test_a_genuine_signed_cookie_reads_back(call, signed_token):
    resp = call("/cookie", HTTP_COOKIE=f"token={signed_token}")
    assert resp.json() == {"signed": "alice", "plain": None}


GARBLED = {
    "unsigned": "token=alice",
    "empty": "token=",
    "only-dots": "token=...",
    "bad-base64-signature": "token=alice.AAAA.!!!!",
    "unterminated-quote": 'token="alice; plain=1',
    "semicolons-only": ";;;;;",
    "no-equals": "token",
    "nul": "token=a\x00b",
    "control-chars": "token=\x01\x02\x7f",
    "very-long": "token=" + "a" * 100_000,
    "thousand-cookies": "; ".join(f"c{i}={i}" for i in range(1000)),
    "percent-garbage": "token=%%%zz%",
    "invalid-utf8": "token=" + b"\xff\xfe".decode("latin-1"),
}


@pytest.mark.parametrize("header", GARBLED.values(), ids=GARBLED.keys())
def test_garbled_cookie_header_reads_as_missing(call, not_a_500, header):
    assert not_a_500(call("/cookie", HTTP_COOKIE=header))["signed"] is None


def tampered(value: str) -> list[str]:
    """*value* with one character changed at a few places: start, middle, end."""
    out = []
    for index in (0, len(value) // 2, len(value) - 1):
        swap = "A" if value[index] != "A" else "B"
        out.append(value[:index] + swap + value[index + 1 :])
    return out


def test_tampered_signed_cookie_reads_as_missing(call, not_a_500, signed_token):
    """README: 'A tampered or expired signed cookie or session reads as missing'."""
    for value in tampered(signed_token):
        assert not_a_500(call("/cookie", HTTP_COOKIE=f"token={value}"))["signed"] is None


def test_cookie_signed_with_another_key_reads_as_missing(call, not_a_500):
    value = TimestampSigner(b"another-key", salt="microroute.cookie:token").sign("alice").decode()
    assert not_a_500(call("/cookie", HTTP_COOKIE=f"token={value}"))["signed"] is None


SESSIONS = {
    "garbage": "session=garbage.garbage.garbage",
    "empty": "session=",
    "not-base64": "session=!!!.@@@.###",
    "huge": "session=" + "a" * 100_000,
    "invalid-utf8": "session=" + b"\xff".decode("latin-1"),
}


@pytest.mark.parametrize("header", SESSIONS.values(), ids=SESSIONS.keys())
def test_garbled_session_is_an_empty_session(call, not_a_500, header):
    assert not_a_500(call("/session", HTTP_COOKIE=header)) == {"session": {}}
