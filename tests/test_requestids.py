"""Request ids: kept or made, on every response, readable, and on every log record."""

from __future__ import annotations

import logging
import re

import pytest

from microroute import App, EventStream, Router, after, on_disconnect, request_id
from microroute.testing import TestClient

ID = "X-Request-ID"
FRESH = re.compile(r"[0-9a-f]{12}-[0-9a-f]+")
log = logging.getLogger("tests.requestids")


def make_app(**options) -> App:
    api = Router()

    @api.get("/static")
    def static():
        return {"static": True}

    @api.get("/who", dynamic="force-dynamic")
    def who(request):
        log.warning("in the handler")
        after(log.warning, "in after() work")
        return {"id": request.id, "helper": request_id()}

    @api.get("/stream")
    def stream():
        on_disconnect(lambda: log.warning("in on_disconnect"))
        log.warning("in the handler")
        yield "a\n"
        log.warning("in the stream")
        yield "b\n"

    @api.get("/events", dynamic="force-dynamic")
    def events():
        def gen():
            log.warning("in the event stream")
            yield "tick"

        return EventStream(gen())

    @api.get("/boom")
    def boom():
        raise RuntimeError("boom")

    @api.post("/upload")
    def upload():
        return {"never": True}

    return App(api, max_body_size=10, **options)


@pytest.fixture
def client():
    with TestClient(make_app()) as session:
        yield session


def test_every_response_carries_one(client):
    """README: "Every response carries it: a cache HIT, an early 413, a 404, a 500"."""
    client.get("/static")
    responses = {
        "miss/hit": client.get("/static"),
        "404": client.get("/nowhere"),
        "413": client.post("/upload", data=b"x" * 100),
        "500": client.get("/boom"),
        "dynamic": client.get("/who"),
    }
    assert responses["miss/hit"].headers["X-Microroute-Cache"] == "HIT"
    assert responses["413"].status_code == 413
    ids = [r.headers[ID] for r in responses.values()]
    assert all(FRESH.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids)


def test_a_valid_incoming_id_is_kept_and_readable(client):
    """README: "an incoming id that is a short token (`[A-Za-z0-9._:-]{1,128}`) is kept";
    "`request.id` or `request_id()` read it"."""
    given = "trace-42.a:b_C"
    response = client.get("/who", headers={ID: given})
    assert response.headers[ID] == given
    assert response.json() == {"id": given, "helper": given}
    assert client.get("/static", headers={ID: given}).headers[ID] == given  # HIT too


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "semi;colon", "é", ""])
def test_anything_else_is_replaced(client, bad):
    """README: "anything else is replaced by a fresh one, so a client cannot write into
    your logs"."""
    response = client.get("/who", headers={ID: bad})
    assert FRESH.fullmatch(response.headers[ID])
    assert response.json()["id"] == response.headers[ID]


def test_every_record_of_the_request_has_it(client, caplog):
    """README: "Each log record made while a request is served (in its handler, its
    stream, its after() work, its on_disconnect callbacks) gets a `request_id`
    attribute"."""
    with caplog.at_level(logging.WARNING, logger="tests.requestids"):
        who = client.get("/who", headers={ID: "req-1"})
        with client.get("/stream", headers={ID: "req-2"}, stream=True) as streamed:
            assert next(streamed.iter_lines()) == b"a"
        events = client.get("/events", headers={ID: "req-3"})
    assert who.status_code == streamed.status_code == events.status_code == 200
    seen = {(r.getMessage(), r.request_id) for r in caplog.records if r.name == log.name}
    assert seen >= {
        ("in the handler", "req-1"),
        ("in after() work", "req-1"),
        ("in the handler", "req-2"),
        ("in on_disconnect", "req-2"),
        ("in the event stream", "req-3"),
    }
    outside = logging.getLogger("tests.requestids").makeRecord("x", 30, "f", 1, "m", (), None)
    assert outside.request_id == "-"


def test_the_500_log_names_the_request_id(client, caplog):
    """README: "a 500 in the log can be tied to the client's report"."""
    with caplog.at_level(logging.ERROR, logger="microroute"):
        response = client.get("/boom", headers={ID: "report-7"})
    assert response.status_code == 500
    (record,) = [r for r in caplog.records if "Unhandled RuntimeError" in r.getMessage()]
    assert record.request_id == "report-7"


def test_none_turns_them_off():
    """README: "`None` turns it off"."""
    with TestClient(make_app(request_id_header=None)) as session:
        response = session.get("/who", headers={ID: "kept?"})
        assert ID not in response.headers
        assert response.json() == {"id": None, "helper": None}


def test_another_header_name():
    with TestClient(make_app(request_id_header="X-Correlation-ID")) as session:
        response = session.get("/who", headers={"X-Correlation-ID": "corr-1"})
        assert response.headers["X-Correlation-ID"] == "corr-1"
        assert ID not in response.headers


def test_a_bad_header_name_is_refused_at_start_up():
    with pytest.raises(ValueError, match="request_id_header"):
        App(Router(), request_id_header="X Request ID")


def test_request_id_outside_a_request_is_none():
    assert request_id() is None
