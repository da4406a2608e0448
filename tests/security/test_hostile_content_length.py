"""Content-Length that lies, chunked bodies past the limit, and bodies on GET."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

LIMIT = 4096  # security_app's max_body_size

BAD_LENGTHS = {
    "negative": ("-1", 400),
    "negative-zero-padded": ("-0005", 400),
    "letters": ("abc", 400),
    "float": ("5.0", 400),
    "exponent": ("1e3", 400),
    "hex": ("0x10", 400),
    "plus-sign": ("+5", 400),
    "underscore": ("0_5", 400),
    "two-values": ("5, 5", 400),
    "latin1-garbage": ("\xff\xfe", 400),
    "nul": ("5\x00", 400),
    "one-over-the-limit": (str(LIMIT + 1), 413),
    "absurd": ("9" * 40, 413),
    "larger-than-the-body": ("10", 400),
}


@pytest.mark.parametrize(("length", "status"), BAD_LENGTHS.values(), ids=BAD_LENGTHS.keys())
def test_bad_content_length_is_a_json_4xx(call, refused, length, status):
    """README: 'Content-Length | digits only | | 400 for -5, +5, lots'."""
    refused(call("/data", "POST", b"hello", CONTENT_LENGTH=length), status)


def chunks(total: int, size: int = 1000) -> Iterator[bytes]:
    """A body sent chunked (no Content-Length), *total* bytes in pieces."""
    while total > 0:
        yield b"x" * min(size, total)
        total -= size


OVER_LIMIT = {
    "get_data": ("/data", LIMIT + 1),
    "json": ("/json", LIMIT + 1),
    "text": ("/text", LIMIT * 4),
    "form": ("/form", LIMIT * 4),
}


@pytest.mark.parametrize(("path", "size"), OVER_LIMIT.values(), ids=OVER_LIMIT.keys())
def test_chunked_body_over_the_limit_is_a_413(client, refused, path, size):
    """README: 'request body ... a chunked body while reading'."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if path == "/form" else {}
    resp = client.post(path, data=chunks(size), headers=headers)
    assert "limit" in refused(resp, 413)["error"]


def test_chunked_body_at_the_limit_is_read_whole(client):
    assert client.post("/data", data=chunks(LIMIT)).json() == {"size": LIMIT}


BODIES_ON_GET = {
    "over-the-limit": ({"CONTENT_LENGTH": str(LIMIT * 10)}, b"x" * 10, 413),
    "negative-length": ({"CONTENT_LENGTH": "-5"}, b"hello", 400),
    "bad-length": ({"CONTENT_LENGTH": "five"}, b"hello", 400),
    "to-a-missing-route": ({}, b"hello", 404),
}


@pytest.mark.parametrize(("extra", "body", "status"), BODIES_ON_GET.values(), ids=BODIES_ON_GET)
def test_hostile_body_on_get_is_a_json_4xx(call, refused, extra, body, status):
    path = "/nowhere" if status == 404 else "/query"
    refused(call(path, "GET", body, **extra), status)


def test_plain_body_on_get_is_ignored(client):
    resp = client.request("GET", "/query?a=1", data=b"an unexpected body")
    assert resp.status_code == 200
    assert resp.json() == {"a": ["1"], "b": None}
