"""Encoded slashes, dot segments and invalid UTF-8 in paths: routing is never escaped.

Every answer is either a JSON 404 or the route the path names, with its
parameters echoed back: no file is ever read, no other route reached.
"""

from __future__ import annotations

import pytest

# PATH_INFO as a server hands it over: percent-decoded, bytes carried as latin-1.
NOT_FOUND = {
    "dot-dot-to-root": "/../../etc/passwd",
    "dot-dot-decoded-slashes": "/static/../../etc/passwd",
    "dot-dot-after-a-route": "/static/page/../../../etc/passwd",
    "encoded-slash-in-one-segment-param": "/items/a/b",
    "dot-dot-into-a-sibling": "/items/../static/page",
    "backslashes": "/static\\..\\..\\etc\\passwd",
    "double-slash-root": "//etc/passwd",
    "empty-segment-param": "/items//x",
    "nul-after-a-static-route": "/static/page\x00.json",
    "nul-in-a-static-segment": "/sta\x00tic/page",
    "invalid-utf8-static": b"/static/\xff\xfe".decode("latin-1"),
    "overlong-utf8-slash": b"/static/page\xc0\xaf..\xc0\xaf".decode("latin-1"),
    "fullwidth-dot-dot": "/static/\uff0e\uff0e/page".encode().decode("latin-1"),
}


@pytest.mark.parametrize("path", NOT_FOUND.values(), ids=NOT_FOUND.keys())
def test_hostile_path_is_a_json_404(call, refused, path):
    refused(call(path), (404, 308))


NOT_FOUND_VIA_CLIENT = {
    "percent-encoded-slashes": "/static%2Fpage%2F..%2F..%2Fetc%2Fpasswd",
    "percent-encoded-dots": "/%2e%2e/%2e%2e/etc/passwd",
    "double-encoded": "/static/%252e%252e/%252e%252e/etc",
    "encoded-nul": "/static/page%00",
    "encoded-backslash": "/static%5C..%5Cpage",
}


@pytest.mark.parametrize("url", NOT_FOUND_VIA_CLIENT.values(), ids=NOT_FOUND_VIA_CLIENT.keys())
def test_hostile_url_is_a_json_404(client, refused, url):
    refused(client.get(url, allow_redirects=False), 404)


# The catch-all route only echoes its segments: reaching it is the intended route.
INTENDED = {
    "dot-dots-as-segments": ("/files/../../etc/passwd", ["..", "..", "etc", "passwd"]),
    "decoded-slashes-become-segments": ("/files/a/b/..", ["a", "b", ".."]),
    "nul-in-a-segment": ("/files/a\x00b", ["a\x00b"]),
}


@pytest.mark.parametrize(("path", "segments"), INTENDED.values(), ids=INTENDED.keys())
def test_dot_segments_reach_only_the_intended_route(call, path, segments):
    resp = call(path)
    assert resp.status_code == 200
    assert resp.json() == {"path": segments}


INTENDED_VIA_CLIENT = {
    "encoded-slashes": ("/files/a%2Fb%2F..", ["a", "b", ".."]),
    "encoded-dots": ("/files/%2e%2e/%2E%2E/x", ["..", "..", "x"]),
}


@pytest.mark.parametrize(("url", "segments"), INTENDED_VIA_CLIENT.values(), ids=INTENDED_VIA_CLIENT)
def test_encoded_dots_reach_only_the_intended_route(client, url, segments):
    resp = client.get(url, allow_redirects=False)
    assert resp.status_code == 200
    assert resp.json() == {"path": segments}


def test_invalid_utf8_in_a_param_is_replaced_not_a_500(call, not_a_500):
    resp = call(b"/items/\xff\xfe".decode("latin-1"))
    assert not_a_500(resp) == {"id": "\ufffd\ufffd"}


def test_trailing_slash_redirect_stays_on_the_site(call):
    resp = call("//evil.example/")
    assert resp.status_code == 308
    assert resp.headers["Location"] == "/evil.example"
