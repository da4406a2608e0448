"""Redirect targets that would leave the site while looking local: a JSON 400."""

from __future__ import annotations

from urllib.parse import quote

import pytest

UNSAFE = {
    "protocol-relative": "//evil.example",
    "protocol-relative-with-path": "//evil.example/login",
    "slash-backslash": "/\\evil.example",
    "backslash-slash": "\\/evil.example",
    "double-backslash": "\\\\evil.example",
    "encoded-slashes": "/%2F%2Fevil.example",
    "encoded-first-slash": "%2F/evil.example",
    "encoded-backslash": "/%5Cevil.example",
    "double-encoded": "/%252F%252Fevil.example",
    "leading-space": " //evil.example",
    "tab-inside": "/\t/evil.example",
    "crlf-injection": "/ok\r\nSet-Cookie: owned=1",
    "newline": "/\n/evil.example",
    "nul": "/ok\x00//evil.example",
    "delete-char": "/\x7f/evil.example",
}


@pytest.mark.parametrize("target", UNSAFE.values(), ids=UNSAFE.keys())
@pytest.mark.parametrize("route", ["/go", "/go-response"])
def test_unsafe_redirect_target_is_a_json_400(client, refused, route, target):
    resp = client.get(f"{route}?next={quote(target, safe='')}", allow_redirects=False)
    assert "redirect" in refused(resp, 400)["error"].lower()
    assert "Location" not in resp.headers


SAFE = {
    "absolute-https": ("https://other.example/welcome", "https://other.example/welcome"),
    "absolute-http": ("http://other.example/", "http://other.example/"),
    "local-path": ("/static/page", "http://testserver/static/page"),
    "relative-path": ("page", "http://testserver/page"),
    "local-with-query": ("/query?a=1&a=2", "http://testserver/query?a=1&a=2"),
}


@pytest.mark.parametrize(("target", "location"), SAFE.values(), ids=SAFE.keys())
def test_safe_redirect_target_is_followed(client, target, location):
    resp = client.get(f"/go?next={quote(target, safe='')}", allow_redirects=False)
    assert resp.status_code == 307
    assert resp.headers["Location"] == location
