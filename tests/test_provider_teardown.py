"""Generator providers: the code after ``yield`` runs once the response is done."""

from __future__ import annotations

import io
import logging
import threading

from microroute import App, abort, after
from microroute.testing import TestClient

# -- generator providers: teardown once the response is done ----------------------------


def test_a_generator_provider_tears_down_after_the_response(router):
    events: list[str] = []

    @router.get("/x")
    def handler(db):
        events.append(f"handler with {db}")
        after(events.append, "after() work")
        return {"ok": True}

    app = App(router)

    @app.provide("db")
    def database():
        events.append("open")
        yield "session"
        events.append("close")

    TestClient(app).get("/x")
    assert events == ["open", "handler with session", "close", "after() work"]


def test_teardown_runs_at_a_streams_end_and_when_the_client_leaves(router):
    events: list[str] = []

    @router.get("/stream")
    def stream(db):
        try:
            for n in range(1000):
                yield f"{db}{n}\n"
        finally:
            events.append("stream finally")

    app = App(router)

    @app.provide("db")
    def database():
        yield "row"
        events.append("close")

    client = TestClient(app)
    with client.get("/stream", stream=True) as response:
        lines = response.iter_lines()
        assert next(lines) == b"row0"
        assert events == []  # the stream is still using the session
    assert events == ["stream finally", "close"]


def test_teardowns_run_last_set_up_first(router):
    events: list[str] = []

    @router.get("/x")
    def handler(outer, inner):
        return "ok"

    app = App(router)

    @app.provide("outer")
    def outer():
        yield "o"
        events.append("outer closed")

    @app.provide("inner")
    def inner(outer):
        yield "i"
        events.append("inner closed")

    TestClient(app).get("/x")
    assert events == ["inner closed", "outer closed"]


def test_the_handlers_error_is_thrown_into_the_provider(router, caplog):
    events: list[str] = []

    @router.get("/fails")
    def fails(db):
        raise LookupError("no such row")

    @router.get("/aborts")
    def aborts(db):
        abort(404)

    app = App(router)

    @app.provide("db")
    def database():
        try:
            yield "session"
        except LookupError as exc:
            events.append(f"rollback after {exc}")
            raise
        else:
            events.append("commit")

    client = TestClient(app)
    with caplog.at_level(logging.ERROR, "microroute"):
        assert client.get("/fails").status_code == 500
    assert client.get("/aborts").status_code == 404  # an answer, not a failure
    assert events == ["rollback after no such row", "commit"]
    assert not [r for r in caplog.records if "teardown of provider" in r.getMessage()]


def test_a_provider_that_fails_still_tears_down_those_set_up_before_it(router):
    events: list[str] = []

    @router.get("/x")
    def handler(db, user):
        return "never"

    app = App(router)

    @app.provide("db")
    def database():
        yield "session"
        events.append("closed")

    @app.provide("user")
    def user(db):
        abort(401)

    assert TestClient(app).get("/x").status_code == 401
    assert events == ["closed"]


def test_a_failing_teardown_is_logged_never_sent(router, caplog):
    @router.get("/x")
    def handler(db):
        return {"ok": True}

    app = App(router)

    @app.provide("db")
    def database():
        yield "session"
        raise OSError("disk gone")

    with caplog.at_level(logging.ERROR, "microroute"):
        response = TestClient(app).get("/x")
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    (record,) = [r for r in caplog.records if "teardown of provider" in r.getMessage()]
    assert "database()" in record.getMessage()
    assert "OSError" in record.getMessage()


def test_a_provider_that_yields_twice_is_logged(router, caplog):
    @router.get("/x")
    def handler(db):
        return "ok"

    app = App(router)

    @app.provide("db")
    def database():
        yield 1
        yield 2

    with caplog.at_level(logging.ERROR, "microroute"):
        assert TestClient(app).get("/x").status_code == 200
    assert any("yielded more than once" in r.getMessage() for r in caplog.records)


def test_teardown_runs_in_the_thread_that_served_the_request(router):
    """Not on the after() pool: a sqlite connection refuses other threads."""
    threads: list[int] = []

    @router.get("/x")
    def handler(db):
        threads.append(threading.get_ident())
        return "ok"

    app = App(router)

    @app.provide("db")
    def database():
        yield None
        threads.append(threading.get_ident())

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/x",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
    }
    body = app(environ, lambda status, headers: None)
    list(body)
    body.close()  # as a server does, with no TestClient marking the request
    assert len(threads) == 2 and threads[0] == threads[1]
