"""Encoded slashes, dot segments and invalid UTF-8 in paths: routing is never escaped.

Every answer is a JSON 404, a JSON 400 for a path with a ``.``, ``..`` or
empty segment, or the route the path names, with its parameters echoed back:
no file is ever read, no other route reached, and a catch-all never holds
``.``, ``..`` or ``""``.
"""

from __future__ import annotations

import pytest

# PATH_INFO as a server hands it over: percent-decoded, bytes carried as latin-1.
NOT_FOUND = {
    "backslashes": "/static\\..\\..\\etc\\passwd",
    "encoded-slash-in-one-segment-param": "/items/a/b",
    "nul-after-a-static-route": "/static/page\x00.json",
    "nul-in-a-static-segment": "/sta\x00tic/page",
    "invalid-utf8-static": b"/static/\xff\xfe".decode("latin-1"),
    "overlong-utf8-slash": b"/static/page\xc0\xaf..\xc0\xaf".decode("latin-1"),
    "fullwidth-dot-dot": "/static/\uff0e\uff0e/page".encode().decode("latin-1"),
    "dots-inside-a-segment": "/static/..page",
}
@pytest.mark.parametrize("path", NOT_FOUND.values(), ids=NOT_FOUND.keys())
def test_hostile_path_is_a_json_404(call, refused, path):
    refused(call(path), 404)


# PATH_INFO with a dot or empty segment, whatever route it would reach.
DOT_OR_EMPTY = {
    "dot-dot-to-root": "/../../etc/passwd",
    "dot-dot-decoded-slashes": "/static/../../etc/passwd",
    "dot-dot-after-a-route": "/static/page/../../../etc/passwd",
    "dot-dot-into-a-sibling": "/items/../static/page",
    "dot-dot-into-a-catch-all": "/files/a/../../etc/passwd",
    "dot-dot-at-the-end": "/files/a/..",
    "dot-segment": "/files/./a",
    "dot-at-the-end-with-a-slash": "/files/a/./",
    "empty-segment-in-a-catch-all": "/files/a//b",
    "empty-segment-param": "/items//x",
    "double-slash-root": "//etc/passwd",
    "double-slash-root-with-a-trailing-slash": "//evil.example/",
    "two-trailing-slashes": "/static/page//",
}


@pytest.mark.parametrize("path", DOT_OR_EMPTY.values(), ids=DOT_OR_EMPTY.keys())
def test_a_dot_or_empty_segment_is_a_json_400(call, refused, path):
    """README: 'A path with a `.`, `..` or empty segment is a 400, percent-encoded or not'."""
    resp = call(path)
    assert refused(resp, 400)["error"].startswith("Invalid path")
    assert "Location" not in resp.headers


NOT_FOUND_VIA_CLIENT = {
    "encoded-nul": "/static/page%00",
    "encoded-backslash": "/static%5C..%5Cpage",
    "double-encoded": "/static/%252e%252e/%252e%252e/etc",
}


@pytest.mark.parametrize("url", NOT_FOUND_VIA_CLIENT.values(), ids=NOT_FOUND_VIA_CLIENT.keys())
def test_hostile_url_is_a_json_404(client, refused, url):
    refused(client.get(url, allow_redirects=False), 404)


# Servers decode %2F and %2E before PATH_INFO: these are dot segments too.
DOT_OR_EMPTY_VIA_CLIENT = {
    "percent-encoded-slashes": "/static%2Fpage%2F..%2F..%2Fetc%2Fpasswd",
    "percent-encoded-dots": "/%2e%2e/%2e%2e/etc/passwd",
    "encoded-dots-in-a-catch-all": "/files/%2e%2e/%2E%2E/x",
    "encoded-slashes-in-a-catch-all": "/files/a%2Fb%2F..",
    "encoded-empty-segment": "/files/a%2F%2Fb",
}


@pytest.mark.parametrize("url", DOT_OR_EMPTY_VIA_CLIENT.values(), ids=DOT_OR_EMPTY_VIA_CLIENT)
def test_an_encoded_dot_or_empty_segment_is_a_json_400(client, refused, url):
    resp = client.get(url, allow_redirects=False)
    assert refused(resp, 400)["error"].startswith("Invalid path")


# The catch-all route only echoes its segments: reaching it is the intended route.
INTENDED = {
    "decoded-slashes-become-segments": ("/files/a/b/c", ["a", "b", "c"]),
    "dots-inside-segments": ("/files/.a/b./...", [".a", "b.", "..."]),
    "nul-in-a-segment": ("/files/a\x00b", ["a\x00b"]),
    "dot-file": ("/files/.well-known/x", [".well-known", "x"]),
}


@pytest.mark.parametrize(("path", "segments"), INTENDED.values(), ids=INTENDED.keys())
def test_clean_segments_reach_only_the_intended_route(call, path, segments):
    resp = call(path)
    assert resp.status_code == 200
    assert resp.json() == {"path": segments}


def test_invalid_utf8_in_a_param_is_replaced_not_a_500(call, not_a_500):
    resp = call(b"/items/\xff\xfe".decode("latin-1"))
    assert not_a_500(resp) == {"id": "\ufffd\ufffd"}


def test_trailing_slash_redirect_stays_on_the_site(call):
    resp = call("/static/page/")
    assert resp.status_code == 308
    assert resp.headers["Location"] == "/static/page"
