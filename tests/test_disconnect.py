"""request.disconnected and on_disconnect() through the TestClient.

In-process there is no socket to watch: the TestClient's way to leave is closing
a streamed response before its end, which runs the callbacks and closes the
generator. Real servers are in tests/e2e/test_disconnect_servers.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from microroute import Request, on_disconnect


def test_closing_a_stream_early_counts_as_a_disconnect(router, make_client):
    events: list[str] = []

    @router.get("/tokens")
    def tokens() -> Iterator[str]:
        on_disconnect(lambda: events.append("disconnected"))
        try:
            for n in range(100):
                yield f"token {n}\n"
        finally:
            events.append("finally")

    with make_client().get("/tokens", stream=True) as response:
        first = next(response.iter_content(None))
        assert first == b"token 0\n"
    assert events == ["disconnected", "finally"]


def test_a_stream_read_to_its_end_is_no_disconnect(router, make_client):
    events: list[str] = []

    @router.get("/short")
    def short() -> Iterator[str]:
        on_disconnect(lambda: events.append("disconnected"))
        yield "a"
        yield "b"

    assert make_client().get("/short").content == b"ab"
    assert events == []


def test_request_disconnected_is_false_while_the_client_waits(router, make_client):
    @router.get("/ask", dynamic="force-dynamic")
    def ask(request: Request) -> dict[str, bool]:
        return {"gone": request.disconnected}

    assert make_client().get("/ask").json() == {"gone": False}


def test_a_failing_callback_is_logged_not_sent(router, make_client, caplog):
    @router.get("/bad")
    def bad() -> Iterator[str]:
        on_disconnect(lambda: 1 / 0)
        yield "x"
        yield "y"

    with make_client().get("/bad", stream=True) as response:
        next(response.iter_content(None))
    assert "on_disconnect callback" in caplog.text
    assert "ZeroDivisionError" in caplog.text


def test_on_disconnect_outside_a_request_says_so():
    with pytest.raises(RuntimeError, match="on_disconnect\\(\\) was called outside a request"):
        on_disconnect(lambda: None)


def test_on_disconnect_makes_a_static_route_dynamic(router, make_client):
    """A handler that cares about its client is dynamic by nature: its build is abandoned."""

    @router.get("/cares")
    def cares() -> str:
        on_disconnect(lambda: None)
        return "live"

    client = make_client()
    assert client.get("/cares").text == "live"
    row = next(r for r in client.app.route_table() if r["path"] == "/cares")
    assert row["reason"] == "calls on_disconnect()"
