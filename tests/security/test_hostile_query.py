"""Query strings: duplicate keys, invalid UTF-8 and NUL bytes."""

from __future__ import annotations

import pytest

DUPLICATES = {
    "two-values": ("a=1&a=2", ["1", "2"]),
    "empty-and-full": ("a=&a=x&a", ["", "x", ""]),
    "many": ("&".join(["a=v"] * 500), ["v"] * 500),
    "encoded-key": ("a=1&%61=2", ["1", "2"]),
    "semicolon-is-not-a-separator": ("a=1;a=2", ["1;a=2"]),
}


@pytest.mark.parametrize(("query", "values"), DUPLICATES.values(), ids=DUPLICATES.keys())
def test_duplicate_keys_are_all_kept_in_order(client, query, values):
    resp = client.get(f"/query?{query}")
    assert resp.status_code == 200
    assert resp.json()["a"] == values


HOSTILE = {
    "invalid-utf8-raw": b"a=\xff\xfe&b=1",
    "invalid-utf8-in-key": b"\xff=1&a=2",
    "percent-encoded-invalid-utf8": b"a=%ff%fe&b=1",
    "truncated-percent": b"a=%e2%82&b=%",
    "overlong-utf8": b"a=%c0%af",
    "nul-raw": b"a=x\x00y&b=\x00",
    "nul-encoded": b"a=%00&b=%00",
    "only-separators": b"&&&&===&&",
}


@pytest.mark.parametrize("query", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_query_is_never_a_500(call, not_a_500, query):
    # Either read (with replacement characters) or refused as a 400: never a crash.
    not_a_500(call("/query", query=query))
