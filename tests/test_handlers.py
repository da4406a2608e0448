"""What a handler returns becomes the response (DESIGN.md, "Handlers")."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Response as WerkzeugResponse

from microroute import Response, abort, redirect

INTERNAL_ERROR = {"error": "Internal Server Error"}


def serve(router: Any, make_client: Any, value: Any) -> Any:
    """Serve ``value`` from GET /x and return the client's response."""
    router.get("/x")(lambda: value)
    return make_client().get("/x", allow_redirects=False)


# -- plain values ---------------------------------------------------------------


@pytest.mark.parametrize("value", [{"a": 1, "b": [1, 2]}, [1, "two", None], []])
def test_dict_and_list_are_json_200(router, make_client, value):
    resp = serve(router, make_client, value)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == value


def test_str_is_utf8_text(router, make_client):
    resp = serve(router, make_client, "héllo ✓")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert resp.content == "héllo ✓".encode()


def test_bytes_are_octet_stream(router, make_client):
    resp = serve(router, make_client, b"\x00\xffraw")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert resp.content == b"\x00\xffraw"


def test_none_is_204_without_body(router, make_client):
    resp = serve(router, make_client, None)
    assert resp.status_code == 204
    assert resp.content == b""


@pytest.mark.parametrize("cls", [Response, WerkzeugResponse])
def test_response_is_sent_as_is(router, make_client, cls):
    value = cls("<b>hi</b>", status=202, headers={"X-Custom": "1"}, mimetype="text/html")
    resp = serve(router, make_client, value)
    assert resp.status_code == 202
    assert resp.headers["X-Custom"] == "1"
    assert resp.headers["Content-Type"].startswith("text/html")
    assert resp.text == "<b>hi</b>"


# -- tuples ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status", "content_type", "body"),
    [
        (({"id": 1}, 201), 201, "application/json", b'{"id":1}'),
        (("created", 201), 201, "text/plain; charset=utf-8", b"created"),
        ((b"raw", 202), 202, "application/octet-stream", b"raw"),
        (([1, 2], 404), 404, "application/json", b"[1,2]"),
    ],
)
def test_body_status_tuple(router, make_client, value, status, content_type, body):
    resp = serve(router, make_client, value)
    assert resp.status_code == status
    assert resp.headers["Content-Type"] == content_type
    assert resp.content.replace(b" ", b"") == body


def test_none_with_status(router, make_client):
    resp = serve(router, make_client, (None, 202))
    assert resp.status_code == 202
    assert resp.content == b""


@pytest.mark.parametrize("headers", [{"X-Trace": "abc"}, [("X-Trace", "abc")]])
def test_body_status_headers_tuple(router, make_client, headers):
    resp = serve(router, make_client, ({"ok": True}, 201, headers))
    assert resp.status_code == 201
    assert resp.headers["X-Trace"] == "abc"
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"ok": True}


def test_tuple_headers_replace_content_type(router, make_client):
    resp = serve(router, make_client, ("<p>hi</p>", 200, {"Content-Type": "text/html"}))
    # One Content-Type only: requests would join duplicates with ", ".
    assert resp.headers["Content-Type"] == "text/html"
    assert resp.text == "<p>hi</p>"


def test_tuple_status_and_headers_apply_to_a_response(router, make_client):
    resp = serve(router, make_client, (Response("x"), 418, {"X-Extra": "yes"}))
    assert resp.status_code == 418
    assert resp.headers["X-Extra"] == "yes"
    assert resp.text == "x"


# -- JSON encoding ----------------------------------------------------------------


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Tagged(dict):
    pass


def test_json_encodes_everyday_types(router, make_client):
    uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    value = {
        "point": Point(1, 2),
        "when": datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.timezone.utc),
        "day": datetime.date(2024, 5, 1),
        "id": uid,
    }
    resp = serve(router, make_client, value)
    assert resp.status_code == 200
    assert resp.json() == {
        "point": {"x": 1, "y": 2},
        "when": "2024-05-01T12:30:00+00:00",
        "day": "2024-05-01",
        "id": str(uid),
    }


@pytest.mark.parametrize("value", [Tagged(a=1), OrderedDict(a=1)])
def test_dict_subclass_is_json(router, make_client, value):
    resp = serve(router, make_client, value)
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"a": 1}


# -- what cannot be sent -----------------------------------------------------------


class Opaque:
    pass


def test_unknown_return_type_is_500_and_logged(router, make_client, caplog):
    @router.get("/x")
    def gives_opaque():
        return Opaque()

    with caplog.at_level(logging.ERROR, logger="microroute"):
        resp = make_client().get("/x")
    assert resp.status_code == 500
    assert resp.json() == INTERNAL_ERROR
    messages = [r.getMessage() for r in caplog.records if r.name == "microroute"]
    assert any("gives_opaque" in m and "Opaque" in m for m in messages), messages


@pytest.mark.parametrize(
    "value",
    [({}, "201"), ({}, 99), ({}, 600), ({}, True), ({}, 200.0), ({}, 200, {}, "extra"), ({},)],
    ids=["str", "too-low", "too-high", "bool", "float", "four-items", "one-item"],
)
def test_bad_tuple_is_500(router, make_client, value):
    resp = serve(router, make_client, value)
    assert resp.status_code == 500
    assert resp.json() == INTERNAL_ERROR


# -- streaming -----------------------------------------------------------------------


def test_str_chunks_stream_as_text(router, make_client):
    resp = serve(router, make_client, (c for c in ["a", "é", "c"]))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert resp.content == "aéc".encode()


def test_bytes_chunks_stream_as_octet_stream(router, make_client):
    resp = serve(router, make_client, (c for c in [b"\x00", b"\x01"]))
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert resp.content == b"\x00\x01"


def test_iterator_streams(router, make_client):
    resp = serve(router, make_client, iter(["x", "y"]))
    assert resp.status_code == 200
    assert resp.text == "xy"


def test_generator_function_handler(router, make_client):
    @router.get("/items/[id]")
    def items(id):
        yield f"item {id}\n"
        yield "done\n"

    resp = make_client().get("/items/7")
    assert resp.status_code == 200
    assert resp.text == "item 7\ndone\n"


def test_chunks_arrive_one_by_one(router, make_client):
    events: list[str] = []

    @router.get("/events")
    def stream():
        for i in range(3):
            events.append(f"made {i}")
            yield f"{i};"

    with make_client().get("/events", stream=True) as resp:
        for chunk in resp.iter_content(None):
            events.append(f"got {chunk.decode()}")
    assert events == ["made 0", "got 0;", "made 1", "got 1;", "made 2", "got 2;"]


def test_error_before_first_chunk_is_json_500(router, make_client, caplog):
    @router.get("/broken")
    def broken():
        raise RuntimeError("no data")
        yield "never"

    with caplog.at_level(logging.ERROR, logger="microroute"):
        resp = make_client().get("/broken")
    assert resp.status_code == 500
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == INTERNAL_ERROR
    assert any(r.exc_info and "broken" in r.getMessage() for r in caplog.records)


def test_redirect_before_first_chunk(router, make_client):
    @router.get("/old")
    def old():
        redirect("/new")
        yield "never"

    resp = make_client().get("/old", allow_redirects=False)
    assert resp.status_code == 307
    assert resp.headers["Location"] == "http://testserver/new"


def test_abort_before_first_chunk(router, make_client):
    @router.get("/private")
    def private():
        abort(403, "Admins only")
        yield "never"

    resp = make_client().get("/private")
    assert resp.status_code == 403
    assert resp.json() == {"error": "Admins only"}


def test_closing_a_stream_early_runs_finally(router, make_client):
    state: dict[str, Any] = {"sent": 0, "closed": False}

    @router.get("/forever")
    def forever() -> Iterator[str]:
        try:
            while True:
                state["sent"] += 1
                yield "tick\n"
        finally:
            state["closed"] = True

    resp = make_client().get("/forever", stream=True)
    chunks = resp.iter_content(None)
    assert next(chunks) == b"tick\n"
    assert not state["closed"]
    resp.close()
    assert state["closed"]
    assert state["sent"] <= 2


def test_stream_with_status_and_headers(router, make_client):
    def events() -> Iterator[str]:
        yield "data: 1\n\n"

    router.get("/sse")(lambda: (events(), 201, {"Content-Type": "text/event-stream", "X-A": "1"}))
    with make_client().get("/sse", stream=True) as resp:
        assert resp.status_code == 201
        assert resp.headers["Content-Type"] == "text/event-stream"
        assert resp.headers["X-A"] == "1"
        assert list(resp.iter_content(None)) == [b"data: 1\n\n"]
