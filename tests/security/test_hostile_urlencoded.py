"""URL-encoded forms held to the same limits as multipart, before they are parsed.

werkzeug applies ``max_form_parts`` and ``max_form_memory_size`` to multipart
bodies only: a URL-encoded body of a million fields was parsed into a million
pairs (seconds of CPU, hundreds of MB) before any limit was looked at.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

MAX_PARTS = 8  # security_app's max_form_parts
MAX_FIELD = 512  # security_app's max_form_memory_size
FORM = "application/x-www-form-urlencoded"

CASES = {
    "too-many-fields": ("&".join(f"f{i}=x" for i in range(MAX_PARTS + 1)), "max_form_parts"),
    "many-empty-fields": ("a=1" + "&" * 100, "max_form_parts"),
    "field-over-max-form-memory-size": ("a=" + "x" * (MAX_FIELD + 1), "max_form_memory_size"),
    "encoded-field-over-the-limit": ("a=" + "%41" * (MAX_FIELD + 1), "max_form_memory_size"),
    "plus-signs-over-the-limit": ("a=" + "+" * (MAX_FIELD + 1), "max_form_memory_size"),
}


@pytest.mark.parametrize(("body", "setting"), CASES.values(), ids=CASES.keys())
def test_urlencoded_form_over_a_limit_is_a_413_naming_it(client, refused, body, setting):
    """README: 'URL-encoded forms are held to the same two limits, before parsing'."""
    resp = client.post("/form", data=body, headers={"Content-Type": FORM})
    assert setting in refused(resp, 413)["error"]


def test_a_field_whose_encoding_is_long_but_value_fits_is_accepted(client):
    # 3 bytes on the wire per byte of value: over the limit as sent, not as read.
    value = "\u00e9" * (MAX_FIELD // 2)
    body = "a=" + quote(value)
    assert len(body) > MAX_FIELD
    resp = client.post("/form", data=body, headers={"Content-Type": FORM})
    assert resp.status_code == 200
    assert resp.json()["a"] == value


def test_a_form_at_the_limits_is_parsed(client):
    body = "a=" + "x" * MAX_FIELD + "".join(f"&f{i}=y" for i in range(MAX_PARTS - 1))
    resp = client.post("/form", data=body, headers={"Content-Type": FORM})
    assert resp.status_code == 200
    assert len(resp.json()["fields"]) == MAX_PARTS


def test_a_million_fields_are_refused_before_parsing(app_with, refused):
    client = app_with(max_body_size=16 * 1024 * 1024, max_form_parts=1000)
    body = b"&".join([b"a=1"] * 1_000_000)
    started = time.perf_counter()
    resp = client.post("/form", data=body, headers={"Content-Type": FORM})
    took = time.perf_counter() - started
    assert "max_form_parts (1000)" in refused(resp, 413)["error"]
    assert took < 2.0, took  # parsing them all took about 6 s
