"""The limits README's table promises, at their default values.

The other tables use the security app's small limits; these use ``App()``'s
defaults, so the numbers in the README are the numbers in the code.
"""

from __future__ import annotations

import gevent
import pytest
from security_app import api

from microroute import App, Router

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def app() -> App:
    """The security app's routes with every limit at its default."""
    return App(api, secret_key="security-tests", cache=False)


class Unread:
    """A request body that fails the test if anything reads it."""

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")


def test_a_body_over_16_mib_is_a_413_before_it_is_read(call, refused):
    """README: '16 MiB ... 413, from Content-Length before reading'."""
    resp = call(
        "/data", "POST", CONTENT_LENGTH=str(16 * 1024 * 1024 + 1), **{"wsgi.input": Unread()}
    )
    assert "16777216 bytes" in refused(resp, 413)["error"]


def test_json_nested_65_levels_is_a_400(client, refused):
    """README: 'JSON nesting | 64 levels ... 400, checked before parsing'."""
    assert client.post("/json", data=b"[" * 64 + b"]" * 64).status_code == 200
    resp = client.post("/json", data=b"[" * 65 + b"]" * 65)
    assert "nested deeper than 64" in refused(resp, 400)["error"]


def test_a_form_field_over_500_kb_is_a_413_naming_the_setting(client, refused):
    """README: 'form field (non-file) | 500 kB ... 413 naming the setting'."""
    ok = client.post("/form", data="a=" + "x" * 500_000, headers={"Content-Type": FORM})
    assert ok.status_code == 200
    resp = client.post("/form", data="a=" + "x" * 500_001, headers={"Content-Type": FORM})
    assert "max_form_memory_size (500000 bytes)" in refused(resp, 413)["error"]


@pytest.mark.parametrize("kind", ["urlencoded", "multipart"])
def test_a_form_of_1001_parts_is_a_413_naming_the_setting(client, refused, kind):
    """README: 'form parts | 1000 ... 413 naming the setting'."""
    if kind == "urlencoded":
        body, content_type = "a=1" + "&f=x" * 1000, FORM
    else:
        part = '--B\r\nContent-Disposition: form-data; name="f"\r\n\r\nx\r\n'
        body, content_type = part * 1001 + "--B--\r\n", "multipart/form-data; boundary=B"
    resp = client.post("/form", data=body, headers={"Content-Type": content_type})
    assert "max_form_parts (1000)" in refused(resp, 413)["error"]


def test_handler_timeout_is_a_504_and_the_handler_finally_runs(client_for, caplog):
    """README: 'App(handler_timeout=seconds) | 504; the handler is interrupted at its next I/O'."""
    cleaned_up = []
    slow = Router()

    @slow.get("/slow")
    def wait() -> dict[str, bool]:
        try:
            gevent.sleep(5)  # the handler's next I/O
            return {"finished": True}
        finally:
            cleaned_up.append(True)

    client = client_for(App(slow, handler_timeout=0.2, cache=False))
    resp = client.get("/slow")
    assert resp.status_code == 504
    assert resp.json() == {"error": "The handler did not finish within 0.2 seconds"}
    assert cleaned_up == [True]
