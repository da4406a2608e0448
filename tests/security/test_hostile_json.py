"""Hostile JSON bodies: too deep, malformed, not UTF-8 — a JSON 400 every time."""

from __future__ import annotations

import pytest

DEPTH = 16  # security_app's max_json_depth

CASES = {
    "arrays-one-over": b"[" * (DEPTH + 1) + b"]" * (DEPTH + 1),
    "objects-one-over": b'{"a":' * (DEPTH + 1) + b"1" + b"}" * (DEPTH + 1),
    "mixed-nesting": b'[{"a":' * DEPTH + b"1" + b"}]" * DEPTH,
    "4k-open-brackets": b"[" * 4000,
    "4k-balanced": b"[" * 2000 + b"]" * 2000,
    "deep-after-a-string": b'["[[[[", ' + b"[" * 40 + b"]" * 40 + b"]",
    "not-utf8": b'{"a": "\xff\xfe"}',
    "utf16-bom": '{"a": 1}'.encode("utf-16"),
    "empty": b"",
    "whitespace-only": b" \t\r\n ",
    "truncated": b'{"a": [1, 2',
    "trailing-garbage": b'{"a": 1} xyz',
    "single-quotes": b"{'a': 1}",
    "unescaped-control-char": b'{"a": "line\nbreak"}',
    "bad-unicode-escape": b'"\\uZZZZ"',
}

# Bigger than the security app's 4 KiB body limit: the app's default limit applies.
HUGE = {"1M-open-brackets": b"[" * 1_000_000, "1M-balanced": b"[" * 500_000 + b"]" * 500_000}


@pytest.mark.parametrize("body", CASES.values(), ids=CASES.keys())
def test_hostile_json_is_a_json_400(client, refused, body):
    """README: 'Every malformed request gets a clear 4xx with a JSON ... never a
    500 and never a traceback'."""
    resp = client.post("/json", data=body, headers={"Content-Type": "application/json"})
    message = refused(resp, 400)["error"]
    assert message.startswith("Invalid JSON body")


@pytest.mark.parametrize("body", HUGE.values(), ids=HUGE.keys())
def test_huge_nesting_under_the_default_limits_is_a_400(app_with, refused, body):
    client = app_with(max_body_size=16 * 1024 * 1024, max_json_depth=64)
    assert refused(client.post("/json", data=body), 400)["error"].startswith("Invalid JSON body")


def test_depth_at_the_limit_is_parsed(client):
    body = b"[" * DEPTH + b"]" * DEPTH
    resp = client.post("/json", data=body)
    assert resp.status_code == 200
    assert resp.json() == {"type": "list"}


def test_brackets_inside_strings_do_not_count(client):
    body = b'["' + b"[" * 1000 + b'"]'
    assert client.post("/json", data=body).json() == {"type": "list"}


def test_the_depth_limit_is_an_app_setting(app_with, refused):
    client = app_with(max_json_depth=2)
    assert client.post("/json", data=b"[[1]]").status_code == 200
    refused(client.post("/json", data=b"[[[1]]]"), 400)


@pytest.mark.parametrize(
    "body",
    [b'{"a": "\\ud800"}', b'["\\udfff", "x"]', b'"\\ud83d"'],
    ids=["lone-high-surrogate", "lone-low-surrogate", "bare-string"],
)
def test_lone_surrogate_echoed_back_is_not_a_500(client, not_a_500, body):
    # JSON may escape a lone surrogate; echoing the parsed value must not crash
    # the response encoder: either refuse it (400) or send it escaped (200).
    resp = client.post("/echo", data=body)
    not_a_500(resp)


NUMBERS = {
    "5000-digit-integer": b"1" * 5000,
    "5000-digit-negative-integer-in-an-object": b'{"n": -' + b"9" * 5000 + b"}",
    "exponent-overflow": b"1e999999",
    "negative-exponent-overflow": b"[-1e400]",
    "nan": b"NaN",
    "infinity": b"[Infinity]",
    "negative-infinity": b'{"a": -Infinity}',
}


@pytest.mark.parametrize("body", NUMBERS.values(), ids=NUMBERS.keys())
@pytest.mark.parametrize("route", ["/json", "/get-json"])
def test_big_or_non_finite_numbers_are_a_json_400(app_with, refused, route, body):
    """README: 'and so are an integer over 4300 digits and a number too large for a float'."""
    client = app_with(max_body_size=64 * 1024)
    resp = client.post(route, data=body, headers={"Content-Type": "application/json"})
    assert refused(resp, 400)["error"].startswith("Invalid JSON body")


def test_big_but_finite_numbers_parse(client):
    resp = client.post("/echo", data=b"[1e308, -1e308, 1e-400, " + b"9" * 4000 + b"]")
    assert resp.status_code == 200
    assert resp.json()["got"][:3] == [1e308, -1e308, 0.0]


@pytest.mark.parametrize("body", CASES.values(), ids=CASES.keys())
def test_get_json_has_the_same_parser_and_limits_as_request_json(client, refused, body):
    """README: 'request.get_json() parses with the same parser and limits as request.json'."""
    resp = client.post("/get-json", data=body, headers={"Content-Type": "application/json"})
    assert refused(resp, 400)["error"].startswith("Invalid JSON body")


def test_get_json_deep_nesting_is_a_400_not_a_500(app_with, refused):
    client = app_with(max_body_size=16 * 1024 * 1024, max_json_depth=64)
    resp = client.post("/get-json", data=b"[" * 100_000 + b"]" * 100_000)
    assert "nested deeper than 64" in refused(resp, 400)["error"]


def test_get_json_silent_turns_a_refusal_into_none(client):
    resp = client.post("/get-json-silent", data=b"1e999999")
    assert resp.status_code == 200
    assert resp.json() == {"got": None}
