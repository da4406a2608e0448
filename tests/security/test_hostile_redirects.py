"""Redirect targets on another site: a JSON 400 unless ``allow_external=True``.

As Rails 7's ``redirect_to`` does, ``redirect()`` and ``Response.redirect()``
stay on the site by default: only a relative reference (a path, no scheme, no
host) is followed, so ``redirect(request.args["next"])`` is never an open
redirect, and a redirect that means to leave the site says so.
"""

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
    "absolute-https": "https://evil.example/phish",
    "absolute-http": "http://evil.example/",
    "scheme-without-slashes": "https:evil.example",
    "scheme-one-slash": "https:/evil.example",
    "scheme-upper-case": "HTTPS://EVIL.EXAMPLE",
    "scheme-mixed-case": "hTtPs:evil.example",
    "scheme-backslashes": "https:\\\\evil.example",
    "javascript": "javascript:alert(1)",
    "data": "data:text/html,<script>alert(1)</script>",
    "encoded-scheme-colon": "https%3A%2F%2Fevil.example",
    "leading-space-scheme": "  https://evil.example",
    "own-host-absolute": "http://testserver/static/page",
    "userinfo-trick": "https://testserver@evil.example/",
}


@pytest.mark.parametrize("target", UNSAFE.values(), ids=UNSAFE.keys())
@pytest.mark.parametrize("route", ["/go", "/go-response"])
def test_unsafe_redirect_target_is_a_json_400(client, refused, route, target):
    """README: 'Response.redirect() refuse, with a 400, a target on another site'."""
    resp = client.get(f"{route}?next={quote(target, safe='')}", allow_redirects=False)
    assert "redirect" in refused(resp, 400)["error"].lower()
    assert "Location" not in resp.headers


SAFE = {
    "local-path": ("/static/page", "http://testserver/static/page"),
    "dot-relative": ("./page", "http://testserver/page"),
    "colon-after-a-slash": ("/a:b", "http://testserver/a:b"),
    "query-only": ("?a=1", "http://testserver/go?a=1"),
    "relative-path": ("page", "http://testserver/page"),
    "local-with-query": ("/query?a=1&a=2", "http://testserver/query?a=1&a=2"),
}


@pytest.mark.parametrize(("target", "location"), SAFE.values(), ids=SAFE.keys())
def test_safe_redirect_target_is_followed(client, target, location):
    resp = client.get(f"/go?next={quote(target, safe='')}", allow_redirects=False)
    assert resp.status_code == 307
    assert resp.headers["Location"] == location


EXTERNAL = {
    "absolute-https": ("https://accounts.example/oauth?s=1", "https://accounts.example/oauth?s=1"),
    "scheme-relative": ("//accounts.example/oauth", "http://accounts.example/oauth"),
    "app-scheme": ("myapp://callback", "myapp://callback"),
}


@pytest.mark.parametrize(("target", "location"), EXTERNAL.values(), ids=EXTERNAL.keys())
def test_allow_external_redirects_to_another_site(client, target, location):
    """README: 'A redirect that means to leave the site says so with allow_external=True'."""
    resp = client.get(f"/go-external?next={quote(target, safe='')}", allow_redirects=False)
    assert resp.status_code == 307
    assert resp.headers["Location"] == location


def test_allow_external_still_refuses_control_characters(client, refused):
    target = "https://accounts.example/\r\nSet-Cookie: owned=1"
    resp = client.get(f"/go-external?next={quote(target, safe='')}", allow_redirects=False)
    refused(resp, 400)
    assert "Location" not in resp.headers
