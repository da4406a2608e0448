"""EventStream and Event: framing, heartbeats, Last-Event-ID, closing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest

from microroute import App, Event, EventStream, Request, Router, abort, headers, redirect
from microroute.sse import HEARTBEAT, encode_event
from microroute.testing import TestClient

MakeClient = Callable[..., TestClient]


# Framing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "wire"),
    [
        ("hello", b"data: hello\n\n"),
        ("", b"data: \n\n"),
        (" leading space", b"data:  leading space\n\n"),
        ("one\ntwo", b"data: one\ndata: two\n\n"),
        ("crlf\r\nand\rcr", b"data: crlf\ndata: and\ndata: cr\n\n"),
        ("trailing\n", b"data: trailing\ndata: \n\n"),
        ("not a break\u2028here", "data: not a break\u2028here\n\n".encode()),
        ({"a": 1, "b": "é"}, 'data: {"a":1,"b":"é"}\n\n'.encode()),
        ({"text": "two\nlines"}, b'data: {"text":"two\\nlines"}\n\n'),
        ([1, 2], b"data: [1,2]\n\n"),
    ],
)
def test_data_framing(item: Any, wire: bytes) -> None:
    assert encode_event(item) == wire


def test_event_fields_in_order() -> None:
    event = Event("a\nb", event="update", id=7, retry=2500)
    assert event.encode() == b"id: 7\nevent: update\nretry: 2500\ndata: a\ndata: b\n\n"


def test_event_with_json_data() -> None:
    assert Event({"n": 1}, event="tick").encode() == b'event: tick\ndata: {"n":1}\n\n'


def test_event_without_data_sends_only_fields() -> None:
    assert Event(None, retry=1000).encode() == b"retry: 1000\n\n"


@pytest.mark.parametrize(
    "fields",
    [
        {"event": "a\nb"},
        {"id": "1\r2"},
        {"id": "nul\0"},
        {"retry": -1},
        {"retry": 1.5},
        {"retry": True},
    ],
)
def test_event_rejects_fields_that_would_corrupt_the_stream(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Event("x", **fields)


@pytest.mark.parametrize("item", [b"bytes", 3, None, object()])
def test_other_items_are_a_type_error(item: Any) -> None:
    with pytest.raises(TypeError, match="yield a str, a dict or list"):
        encode_event(item)


def test_heartbeat_must_be_positive() -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        EventStream(iter([]), heartbeat=0)


def test_a_generator_function_must_be_called() -> None:
    def events() -> Iterator[str]:
        yield "x"

    with pytest.raises(TypeError, match=r"EventStream\(events\(\)\)"):
        EventStream(events)  # type: ignore[arg-type]


# Through the app -----------------------------------------------------------------


@pytest.mark.parametrize("heartbeat", [15.0, None])
def test_stream_headers_and_body(router: Router, make_client: MakeClient, heartbeat: Any) -> None:
    @router.get("/events")
    def events() -> EventStream:
        return EventStream(iter(["a", {"b": 2}, Event("c", id=3)]), heartbeat=heartbeat)

    response = make_client().get("/events")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert response.content == b'data: a\n\ndata: {"b":2}\n\nid: 3\ndata: c\n\n'


def test_status_and_headers_from_a_tuple(router: Router, make_client: MakeClient) -> None:
    @router.get("/events")
    def events() -> tuple[EventStream, int, dict[str, str]]:
        return EventStream(iter(["a"])), 201, {"X-Stream": "yes"}

    response = make_client().get("/events")
    assert response.status_code == 201
    assert response.headers["X-Stream"] == "yes"
    assert response.headers["Content-Type"] == "text/event-stream"


def test_empty_stream(router: Router, make_client: MakeClient) -> None:
    router.get("/events")(lambda: EventStream(iter([])))
    response = make_client().get("/events")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.content == b""


def test_events_arrive_one_by_one(router: Router, make_client: MakeClient) -> None:
    @router.get("/events")
    def events() -> EventStream:
        def gen() -> Iterator[str]:
            for i in range(3):
                yield str(i)
                gevent.sleep(0.1)

        return EventStream(gen())

    started = time.monotonic()
    with make_client().get("/events", stream=True) as response:
        first = next(response.iter_content(chunk_size=None))
        assert first == b"data: 0\n\n"
        assert time.monotonic() - started < 0.09


def test_heartbeat_while_the_generator_is_idle(router: Router, make_client: MakeClient) -> None:
    @router.get("/events")
    def events() -> EventStream:
        def gen() -> Iterator[str]:
            yield "first"
            gevent.sleep(0.35)  # blocked: only a second greenlet can speak meanwhile
            yield "second"

        return EventStream(gen(), heartbeat=0.1)

    chunks = list(make_client().get("/events", stream=True).iter_content(chunk_size=None))
    assert chunks[0] == b"data: first\n\n"
    assert chunks[-1] == b"data: second\n\n"
    assert 2 <= chunks.count(HEARTBEAT) <= 4
    assert HEARTBEAT == b": heartbeat\n\n"


def test_a_slow_first_event_is_primed_before_headers_whatever_the_heartbeat(
    router: Router, make_client: MakeClient
) -> None:
    """README: "it is primed before headers are sent, however long the first event
    takes (heartbeats start after it): an exception, an `abort()` or a `redirect()`
    before the first event is a proper error response"."""

    @router.get("/events")
    def events() -> EventStream:
        def gen() -> Iterator[str]:
            gevent.sleep(0.25)
            yield "late"
            gevent.sleep(0.25)
            yield "later"

        return EventStream(gen(), heartbeat=0.1)

    @router.get("/denied")
    def denied() -> EventStream:
        def gen() -> Iterator[str]:
            gevent.sleep(0.25)
            abort(403, "not yours")
            yield "never"

        return EventStream(gen(), heartbeat=0.1)

    client = make_client()
    chunks = list(client.get("/events", stream=True).iter_content(chunk_size=None))
    assert chunks[0] == b"data: late\n\n"
    assert HEARTBEAT in chunks[1:-1] and chunks[-1] == b"data: later\n\n"
    resp = client.get("/denied")
    assert (resp.status_code, resp.json()) == (403, {"error": "not yours"})
    assert resp.headers["Content-Type"] == "application/json"


def test_last_event_id(router: Router, make_client: MakeClient) -> None:
    @router.get("/implicit")
    def implicit() -> dict[str, Any]:
        return {"id": EventStream.last_event_id()}

    @router.get("/explicit")
    def explicit(request: Request) -> dict[str, Any]:
        return {"id": EventStream.last_event_id(request)}

    client = make_client()
    for path in ("/implicit", "/explicit"):
        assert client.get(path, headers={"Last-Event-ID": "41"}).json() == {"id": "41"}
        assert client.get(path).json() == {"id": None}
        assert client.get(path, headers={"Last-Event-ID": ""}).json() == {"id": None}


def test_last_event_id_outside_a_request_says_so() -> None:
    with pytest.raises(RuntimeError, match="outside a request"):
        EventStream.last_event_id()


def test_request_helpers_work_inside_the_generator(router: Router, make_client: MakeClient) -> None:
    @router.get("/events")
    def events() -> EventStream:
        def gen() -> Iterator[str]:
            yield headers().get("X-Who", "?")
            gevent.sleep(0.01)
            yield headers().get("X-Who", "?")

        return EventStream(gen())

    response = make_client().get("/events", headers={"X-Who": "ada"})
    assert response.content == b"data: ada\n\ndata: ada\n\n"


# Errors and closing ---------------------------------------------------------------


@pytest.mark.parametrize("heartbeat", [15.0, None])
def test_error_before_the_first_event_is_a_500(
    router: Router, make_client: MakeClient, heartbeat: Any
) -> None:
    @router.get("/events")
    def events() -> EventStream:
        def gen() -> Iterator[str]:
            raise KeyError("boom")
            yield "never"

        return EventStream(gen(), heartbeat=heartbeat)

    response = make_client().get("/events")
    assert response.status_code == 500
    assert response.json() == {"error": "Internal Server Error"}


def test_redirect_before_the_first_event(router: Router, make_client: MakeClient) -> None:
    @router.get("/events")
    def events() -> EventStream:
        def gen() -> Iterator[str]:
            redirect("/login")
            yield "never"

        return EventStream(gen())

    response = make_client().get("/events", allow_redirects=False)
    assert response.status_code == 307
    assert response.headers["Location"].endswith("/login")


def test_bad_item_before_the_first_event_is_a_500(router: Router, make_client: MakeClient) -> None:
    router.get("/events")(lambda: EventStream(iter([42])))
    assert make_client().get("/events").status_code == 500


@pytest.mark.parametrize("heartbeat", [15.0, None])
@pytest.mark.parametrize("blocked", [True, False], ids=["blocked-in-sleep", "at-a-yield"])
def test_closing_runs_the_generators_finally(
    router: Router, make_client: MakeClient, heartbeat: Any, blocked: bool
) -> None:
    cleaned: list[str] = []

    @router.get("/events")
    def events() -> EventStream:
        def gen() -> Iterator[str]:
            try:
                yield "one"
                yield "two"
                if blocked:
                    gevent.sleep(30)
                yield "never"
            finally:
                cleaned.append("done")

        return EventStream(gen(), heartbeat=heartbeat)

    response = make_client().get("/events", stream=True)
    chunks = response.iter_content(chunk_size=None)
    assert next(chunks) == b"data: one\n\n"
    if blocked and heartbeat is not None:
        assert next(chunks) == b"data: two\n\n"
        gevent.sleep(0.01)  # let the generator reach its sleep
    started = time.monotonic()
    response.close()
    assert cleaned == ["done"]
    assert time.monotonic() - started < 1


def test_closing_before_iteration_closes_the_source() -> None:
    cleaned: list[str] = []

    def gen() -> Iterator[str]:
        try:
            yield "x"
        finally:
            cleaned.append("done")

    source = gen()
    next(source)
    EventStream(source).close()
    assert cleaned == ["done"]


def test_head_closes_the_stream(router: Router) -> None:
    cleaned: list[str] = []

    @router.get("/events")
    def events() -> EventStream:
        def gen() -> Iterator[str]:
            try:
                yield "x"
                gevent.sleep(30)
            finally:
                cleaned.append("done")

        return EventStream(gen())

    with TestClient(App(router)) as client:
        response = client.head("/events")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert cleaned == ["done"]


def test_error_mid_stream_ends_the_stream(router: Router, make_client: MakeClient) -> None:
    @router.get("/events")
    def events() -> EventStream:
        def gen() -> Iterator[str]:
            yield "ok"
            raise RuntimeError("mid-stream")

        return EventStream(gen())

    response = make_client().get("/events", stream=True)
    chunks = response.iter_content(chunk_size=None)
    assert next(chunks) == b"data: ok\n\n"
    with pytest.raises(Exception):  # noqa: B017 - the TestClient re-raises the error
        list(chunks)
