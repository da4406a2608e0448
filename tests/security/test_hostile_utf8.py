"""Invalid UTF-8 wherever a request carries text: refused or replaced, never a 500."""

from __future__ import annotations

import pytest

BAD = b"\xff\xfe\xc3\x28\xed\xa0\x80"  # invalid start bytes, a bad continuation, a surrogate
LATIN1 = BAD.decode("latin-1")  # how a WSGI server hands raw bytes over

# (path, method, body, query, extra environ, acceptable statuses)
CASES = {
    "json-body": ("/json", "POST", b'{"a": "' + BAD + b'"}', "", {}, (400,)),
    "urlencoded-body": (
        "/form",
        "POST",
        b"a=" + BAD,
        "",
        {"CONTENT_TYPE": "application/x-www-form-urlencoded"},
        (200, 400),
    ),
    "multipart-field": (
        "/form",
        "POST",
        b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n' + BAD + b"\r\n--B--\r\n",
        "",
        {"CONTENT_TYPE": "multipart/form-data; boundary=B"},
        (200, 400),
    ),
    "multipart-field-name": (
        "/form",
        "POST",
        b'--B\r\nContent-Disposition: form-data; name="' + BAD + b'"\r\n\r\nv\r\n--B--\r\n',
        "",
        {"CONTENT_TYPE": "multipart/form-data; boundary=B"},
        (400,),
    ),
    "text-body-bogus-charset": (
        "/text",
        "POST",
        BAD,
        "",
        {"CONTENT_TYPE": "text/plain; charset=" + LATIN1},
        (200,),
    ),
    "static-path": ("/static/" + LATIN1, "GET", b"", "", {}, (404,)),
    "param-path": ("/items/" + LATIN1, "GET", b"", "", {}, (200,)),
    "query-value": ("/query", "GET", b"", "a=" + LATIN1, {}, (200, 400)),
    "query-key": ("/query", "GET", b"", LATIN1 + "=1", {}, (200, 400)),
    "header": ("/headers", "GET", b"", "", {"HTTP_X_TEST": LATIN1}, (200,)),
    "content-length": ("/data", "POST", b"hello", "", {"CONTENT_LENGTH": LATIN1}, (400,)),
    "content-type-on-json": ("/json", "POST", b"[1]", "", {"CONTENT_TYPE": LATIN1}, (200,)),
    "plain-cookie": ("/cookie", "GET", b"", "", {"HTTP_COOKIE": "plain=" + LATIN1}, (200, 400)),
    "signed-cookie": ("/cookie", "GET", b"", "", {"HTTP_COOKIE": "token=" + LATIN1}, (200, 400)),
    "session-cookie": (
        "/session",
        "GET",
        b"",
        "",
        {"HTTP_COOKIE": "session=" + LATIN1},
        (200, 400),
    ),
    "redirect-target": ("/go", "GET", b"", "next=/" + LATIN1, {}, (307, 400)),
}


@pytest.mark.parametrize(
    ("path", "method", "body", "query", "extra", "statuses"), CASES.values(), ids=CASES.keys()
)
def test_invalid_utf8_is_refused_or_replaced(
    call, caplog, path, method, body, query, extra, statuses
):
    resp = call(path, method, body, query, **extra)
    assert resp.status_code in statuses, (resp.status_code, resp.text[:300])
    assert "Traceback" not in resp.text
    if resp.status_code != 307:
        assert resp.headers["Content-Type"] == "application/json"
        resp.json()
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
