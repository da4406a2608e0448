"""Unknown and unexpected methods: a JSON 405 with an Allow header."""

from __future__ import annotations

import pytest

CASES = {
    "brew": ("BREW", "/static/page"),
    "propfind": ("PROPFIND", "/static/page"),
    "trace": ("TRACE", "/static/page"),
    "connect": ("CONNECT", "/items/1"),
    "lowercase-get": ("get", "/static/page"),
    "near-miss": ("GETT", "/query"),
    "very-long": ("X" * 1000, "/query"),
    "nul-in-method": ("G\x00ET", "/static/page"),
    "latin1-method": ("G\xc9T", "/static/page"),
    "post-on-get-only": ("POST", "/static/page"),
    "delete-on-a-param-route": ("DELETE", "/items/1"),
    "get-on-post-only": ("GET", "/json"),
}


@pytest.mark.parametrize(("method", "path"), CASES.values(), ids=CASES.keys())
def test_unknown_method_is_a_json_405_with_allow(call, refused, method, path):
    resp = call(path, method)
    refused(resp, 405)
    allowed = resp.headers["Allow"].split(", ")
    assert allowed == sorted(allowed)
    assert "OPTIONS" in allowed
    assert method not in allowed


def test_unknown_method_through_the_client(client, refused):
    resp = client.request("BREW", "/items/7")
    refused(resp, 405)
    assert resp.headers["Allow"] == "GET, HEAD, OPTIONS"


def test_unknown_method_on_a_missing_path_is_a_404(call, refused):
    refused(call("/nowhere", "BREW"), 404)
