"""Broken and oversized multipart bodies: a JSON 4xx, never a 500."""

from __future__ import annotations

import pytest

MAX_PARTS = 8  # security_app's max_form_parts
MAX_FIELD = 512  # security_app's max_form_memory_size
MULTIPART = "multipart/form-data; boundary=BOUNDARY"


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    return f"--BOUNDARY\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


END = b"--BOUNDARY--\r\n"

CASES = {
    "too-many-parts": (
        MULTIPART,
        part("a", b"1") + b"".join(part(f"f{i}", b"x") for i in range(MAX_PARTS + 2)) + END,
        413,
    ),
    "too-many-files": (
        MULTIPART,
        part("a", b"1") + b"".join(part(f"f{i}", b"x", f"{i}.txt") for i in range(20)) + END,
        413,
    ),
    "field-over-max-form-memory-size": (MULTIPART, part("a", b"x" * (MAX_FIELD + 1)) + END, 413),
    "file-over-the-body-limit": (MULTIPART, part("a", b"x" * 5000, "big.bin") + END, 413),
    "truncated-boundary": (MULTIPART, part("a", b"1")[:-2] + b"--BOUND", 400),
    "no-closing-boundary": (MULTIPART, b"--BOUNDARY\r\nContent-Disposition: form-data", 400),
    "wrong-boundary": (MULTIPART, part("a", b"1").replace(b"BOUNDARY", b"OTHER") + END, 400),
    "no-boundary-parameter": ("multipart/form-data", part("a", b"1") + END, 400),
    "empty-boundary-parameter": ('multipart/form-data; boundary=""', part("a", b"1") + END, 400),
    "garbage-bytes": (MULTIPART, bytes(range(256)), 400),
    "headers-without-blank-line": (
        MULTIPART,
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="a"\r\n1\r\n' + END,
        400,
    ),
    "no-content-disposition": (MULTIPART, b"--BOUNDARY\r\nX-Other: 1\r\n\r\n1\r\n" + END, 400),
    "urlencoded-over-the-body-limit": (
        "application/x-www-form-urlencoded",
        b"a=" + b"x" * 5000,
        413,
    ),
}


@pytest.mark.parametrize(("content_type", "body", "status"), CASES.values(), ids=CASES.keys())
def test_broken_or_oversized_form_is_a_json_4xx(client, refused, content_type, body, status):
    resp = client.post("/form", data=body, headers={"Content-Type": content_type})
    refused(resp, status)


def test_a_well_formed_form_within_the_limits_is_read(client):
    body = part("a", b"x" * 100) + part("doc", b"data", "doc.txt") + END
    resp = client.post("/form", data=body, headers={"Content-Type": MULTIPART})
    assert resp.status_code == 200
    assert resp.json() == {"a": "x" * 100, "fields": ["a"], "files": ["doc"]}


@pytest.fixture
def roomy(app_with):
    """Realistic limits: werkzeug reads 64 KiB at a time, so the field limit is above that."""
    return app_with(max_body_size=1024 * 1024, max_form_memory_size=100_000)


def test_a_field_over_max_form_memory_size_is_a_413(roomy, refused):
    body = part("a", b"x" * 150_000) + END
    refused(roomy.post("/form", data=body, headers={"Content-Type": MULTIPART}), 413)


def test_a_file_bigger_than_max_form_memory_size_is_accepted(roomy):
    # The field limit is for values held in memory; files are spooled.
    body = part("a", b"1") + part("doc", b"x" * 300_000, "doc.bin") + END
    resp = roomy.post("/form", data=body, headers={"Content-Type": MULTIPART})
    assert resp.status_code == 200
    assert resp.json()["files"] == ["doc"]
