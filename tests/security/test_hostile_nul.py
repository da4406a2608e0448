"""NUL bytes in the path, the query, the body and the headers."""

from __future__ import annotations

import pytest

REFUSED = {
    "path-static": (("/static/page\x00",), {}, 404),
    "path-root": (("/\x00",), {}, 404),
    "path-middle": (("/static\x00/page",), {}, 404),
    "json-raw-nul": (("/json", "POST", b'{"a": "x\x00y"}'), {}, 400),
    "json-only-nul": (("/json", "POST", b"\x00"), {}, 400),
    "json-nul-padding": (("/json", "POST", b"[1]\x00\x00"), {}, 400),
    "content-length": (("/data", "POST", b"hello"), {"CONTENT_LENGTH": "5\x00"}, 400),
    "redirect-target": (("/go", "GET", b"", "next=/ok%00//evil.example"), {}, 400),
    "method": (("/static/page", "GET\x00"), {}, 405),
    "form-without-its-field": (
        ("/form", "POST", b"\x00=\x00"),
        {"CONTENT_TYPE": "application/x-www-form-urlencoded"},
        400,
    ),
}


@pytest.mark.parametrize(("args", "extra", "status"), REFUSED.values(), ids=REFUSED.keys())
def test_nul_is_a_json_4xx(call, refused, args, extra, status):
    refused(call(*args, **extra), status)


READ = {
    "query": (("/query", "GET", b"", "a=%00&b=\x00"), {}, {"a": ["\x00"], "b": "\x00"}),
    "header": (("/headers",), {"HTTP_X_TEST": "a\x00b"}, {"x": "a\x00b"}),
    "path-param": (("/items/a\x00b",), {}, {"id": "a\x00b"}),
    "json-escaped": (("/json", "POST", b'"\\u0000"'), {}, {"type": "str"}),
}


@pytest.mark.parametrize(("args", "extra", "expected"), READ.values(), ids=READ.keys())
def test_nul_in_data_is_read_as_data(call, not_a_500, args, extra, expected):
    body = not_a_500(call(*args, **extra))
    assert {key: body[key] for key in expected} == expected
