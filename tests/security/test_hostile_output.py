"""Output safety: a handler cannot inject headers through CR/LF in values it returns.

These are programmer errors, not client errors: a 500 whose log names the
header or the cookie, so the developer knows what to fix.
"""

from __future__ import annotations

import logging

import pytest

INJECTIONS = {
    "crlf": "ok\r\nSet-Cookie: owned=1",
    "lf": "ok\nX-Injected: 1",
    "cr": "ok\rX-Injected: 1",
    "nul": "ok\x00",
}


@pytest.mark.parametrize("value", INJECTIONS.values(), ids=INJECTIONS.keys())
def test_line_break_in_a_returned_header_is_a_500_naming_it(client, caplog, value):
    """README: 'A header value that is not latin-1 or holds CR, LF, NUL or another control
    character is an error naming the header'."""
    caplog.set_level(logging.ERROR, logger="microroute")
    resp = client.get("/header", params={"name": "X-Custom-Thing", "value": value})
    assert resp.status_code == 500
    assert resp.json() == {"error": "Internal Server Error"}
    assert "X-Injected" not in resp.headers
    assert "owned" not in resp.headers.get("Set-Cookie", "")
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("X-Custom-Thing" in m for m in messages), messages


def test_line_break_in_a_returned_header_name_is_a_500(client, caplog):
    caplog.set_level(logging.ERROR, logger="microroute")
    resp = client.get("/header", params={"name": "X-A\r\nX-Injected", "value": "1"})
    assert resp.status_code == 500
    assert "X-Injected" not in resp.headers


@pytest.mark.parametrize(
    "value",
    ["a\r\nSet-Cookie: owned=1", "a\nb", "a\rb", "a\x00b"],
    ids=["crlf", "lf", "cr", "nul"],
)
def test_line_break_in_a_cookie_value_is_an_error_naming_the_cookie(client, caplog, value):
    """README: 'Cookie values may not hold CR, LF or NUL: that is an error naming the cookie'."""
    caplog.set_level(logging.ERROR, logger="microroute")
    resp = client.post("/cookie", params={"name": "prefs", "value": value})
    assert resp.status_code == 500
    assert "Set-Cookie" not in resp.headers
    messages = [
        f"{r.getMessage()} {r.exc_info[1] if r.exc_info else ''}"
        for r in caplog.records
        if r.levelno >= logging.ERROR
    ]
    assert any("'prefs'" in m for m in messages), messages


@pytest.mark.parametrize(
    "name", ["a b", "a;b", "a=b", "a\r\nb", ""], ids=["space", "semi", "eq", "crlf", "empty"]
)
def test_invalid_cookie_name_is_an_error_naming_it(client, caplog, name):
    caplog.set_level(logging.ERROR, logger="microroute")
    resp = client.post("/cookie", params={"name": name, "value": "v"})
    assert resp.status_code == 500
    assert "Set-Cookie" not in resp.headers
    messages = [
        f"{r.getMessage()} {r.exc_info[1] if r.exc_info else ''}"
        for r in caplog.records
        if r.levelno >= logging.ERROR
    ]
    assert any(f"cookie name {name!r}" in m for m in messages), messages
