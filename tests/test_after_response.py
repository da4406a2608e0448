"""after(fn, *args, **kwargs): work that runs once the response has been sent."""

from __future__ import annotations

import contextvars
import logging
import threading

import pytest

from microroute import App, HTTPError, Response, after, cookies, headers, redirect
from microroute.after_response import drain
from microroute.testing import TestClient

tag: contextvars.ContextVar[str] = contextvars.ContextVar("tag", default="-")


def test_after_is_the_function_even_once_its_module_is_imported():
    """``from microroute import after`` is the function, whatever was imported before."""
    import microroute.after_response  # the module that holds it
    import microroute.app  # and the app, which imports it

    assert microroute.after is after
    assert callable(after) and after.__module__ == "microroute.after_response"
    assert "after" in microroute.__all__


def test_runs_after_the_body_before_the_client_returns(router, make_client):
    """README: "The `TestClient` runs it before the response object is returned to the
    test (with `stream=True`, when the response is closed)"."""
    events: list[str] = []

    @router.get("/work")
    def work():
        after(events.append, "after")
        events.append("handler")
        return {"ok": True}

    resp = make_client().get("/work")
    assert resp.json() == {"ok": True}
    assert events == ["handler", "after"]


def test_runs_after_the_last_chunk_of_a_stream_and_its_finally(router, make_client):
    """README: "It runs once the response has been sent to its last byte, a stream's last
    chunk included (and after its generator's `finally:`)"."""
    events: list[str] = []

    @router.get("/stream")
    def stream():
        after(events.append, "after (handler)")
        try:
            yield "a"
            after(events.append, "after (mid-stream)")
            yield "b"
            events.append("last chunk")
        finally:
            events.append("finally")

    client = make_client()
    with client.get("/stream", stream=True) as resp:
        chunks = resp.iter_content(1)
        assert next(chunks) == b"a"
        assert events == []  # the body is still being sent
        assert b"".join(chunks) == b"b"
    assert events == ["last chunk", "finally", "after (handler)", "after (mid-stream)"]


def test_a_closed_stream_still_runs_its_work(router, make_client):
    """README: "... and also when the client left early" (the TestClient closing a stream)."""
    events: list[str] = []

    @router.get("/forever")
    def forever():
        after(events.append, "after")
        try:
            while True:
                yield "x"
        finally:
            events.append("finally")

    resp = make_client().get("/forever", stream=True)
    next(resp.iter_content(1))
    resp.close()
    assert events == ["finally", "after"]


def test_runs_after_an_error_and_its_error_handler(router, make_client, caplog):
    events: list[str] = []

    @router.get("/boom")
    def boom():
        after(events.append, "after")
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, logger="microroute"):
        resp = make_client().get("/boom")
    assert resp.status_code == 500
    assert events == ["after"]


def test_an_error_handler_may_schedule_work(router):
    events: list[object] = []

    @router.get("/teapot")
    def teapot():
        raise HTTPError(418, "short and stout")

    app = App(router)

    @app.errorhandler(418)
    def on_teapot(exc):
        after(events.append, exc.status)
        return {"error": "teapot"}, 418

    with TestClient(app) as client:
        assert client.get("/teapot").status_code == 418
    assert events == [418]


def test_runs_after_a_redirect(router, make_client):
    events: list[str] = []

    @router.get("/old")
    def old():
        after(events.append, "after")
        redirect("/new")

    resp = make_client().get("/old", allow_redirects=False)
    assert resp.status_code == 307
    assert resp.headers["Location"] == "http://testserver/new"
    assert events == ["after"]


def test_middleware_may_schedule_work(router):
    events: list[str] = []
    router.get("/x")(lambda: {"ok": True})
    app = App(router)

    @app.use
    def audit(request, call_next):
        after(events.append, f"audited {request.path}")
        return call_next(request)

    with TestClient(app) as client:
        assert client.get("/x").json() == {"ok": True}
    assert events == ["audited /x"]


def test_runs_in_the_request_context(router, make_client):
    """README: "It runs in the request's context: `cookies()`, `headers()` and the request's
    `ContextVar`s are readable; setting a cookie there raises, as the headers are gone"."""
    seen: dict[str, object] = {}

    def later():
        seen["cookie"] = cookies().get("user")
        seen["header"] = headers().get("X-Trace")
        seen["tag"] = tag.get()
        try:
            cookies().set("late", "1")
        except RuntimeError as exc:
            seen["write"] = str(exc)

    @router.get("/ctx")
    def ctx():
        tag.set("request-7")
        after(later)
        return {"ok": True}

    resp = make_client().get("/ctx", headers={"Cookie": "user=ada", "X-Trace": "t1"})
    assert resp.json() == {"ok": True}
    assert "late" not in resp.cookies
    assert seen["cookie"] == "ada" and seen["header"] == "t1" and seen["tag"] == "request-7"
    assert "after the response headers were sent" in str(seen["write"])
    assert tag.get() == "-"  # and nothing leaked out of the request


def test_passes_args_and_kwargs_and_keeps_the_order(router, make_client):
    got: list[object] = []

    @router.get("/args")
    def args():
        after(lambda *a, **k: got.append((a, k)), 1, 2, key="v")
        after(got.append, "second")
        after(lambda: after(got.append, "scheduled by after work"))
        return {}

    make_client().get("/args")
    assert got == [((1, 2), {"key": "v"}), "second", "scheduled by after work"]


def test_errors_are_logged_with_the_route_never_sent(router, make_client, caplog):
    """README: "An exception it raises is logged on the `microroute` logger with the
    request's method and path; the client never sees it"."""
    events: list[str] = []

    def fails():
        raise KeyError("missing")

    @router.post("/items")
    def items():
        after(fails)
        after(events.append, "next one still runs")
        return {"created": True}, 201

    with caplog.at_level(logging.ERROR, logger="microroute"):
        resp = make_client().post("/items")
    assert resp.status_code == 201 and resp.json() == {"created": True}
    assert events == ["next one still runs"]
    [record] = [r for r in caplog.records if "after()" in r.getMessage()]
    assert "POST /items" in record.getMessage() and "fails" in record.getMessage()
    assert "KeyError" in record.getMessage() and record.exc_info is not None


def test_a_redirect_raised_in_after_work_is_logged_not_sent(router, make_client, caplog):
    @router.get("/ok")
    def ok():
        after(redirect, "/elsewhere")
        return {"ok": True}

    with caplog.at_level(logging.ERROR, logger="microroute"):
        resp = make_client().get("/ok")
    assert resp.status_code == 200
    assert any("GET /ok" in r.getMessage() for r in caplog.records)


def test_outside_a_request_it_raises_a_clear_error():
    """README: "outside a request it raises `RuntimeError`"."""
    with pytest.raises(RuntimeError, match=r"after\(\) was called outside a request"):
        after(print)


def test_a_non_callable_is_refused(router, make_client):
    @router.get("/bad")
    def bad():
        after("not a function")

    resp = make_client().get("/bad")
    assert resp.status_code == 500


def test_a_static_get_that_schedules_work_becomes_dynamic(router, make_client):
    """README: "A static GET that calls it becomes dynamic, as with `cookies()`"."""
    events: list[int] = []

    @router.get("/page")
    def page():
        after(events.append, 1)
        return {"page": True}

    client = make_client()
    assert client.get("/page").json() == {"page": True}
    assert client.get("/page").json() == {"page": True}
    assert events == [1, 1]  # every request ran its handler and its work
    row = next(r for r in client.app.route_table() if r["path"] == "/page")
    assert row["mode"] == "dynamic" and "after()" in row["reason"]


def test_force_static_refuses_it_naming_the_route(router, make_client, caplog):
    """README: "with `dynamic = "force-static"` it is an error"."""
    @router.get("/forced", dynamic="force-static")
    def forced():
        after(print)
        return {}

    with caplog.at_level(logging.ERROR, logger="microroute"):
        resp = make_client().get("/forced")
    assert resp.status_code == 500
    assert any("force-static" in str(r.exc_info and r.exc_info[1]) for r in caplog.records)


def test_without_the_test_client_work_runs_on_the_pool_and_drain_waits(router):
    """A server's close() hands the work to the pool; drain() waits for it."""
    release = threading.Event()
    done: list[str] = []

    def slow():
        release.wait(5)
        done.append("done")

    @router.get("/slow")
    def handler():
        after(slow)
        return {"ok": True}

    app = App(router)
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/slow",
        "SERVER_NAME": "x",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    body = app(environ, lambda status, headers: None)
    assert b"".join(body) == b'{"ok":true}'
    assert done == []
    body.close()  # returns at once: the work is on the pool
    assert done == []
    assert drain(0.05) is False
    release.set()
    assert drain(5) is True
    assert done == ["done"]


def test_a_response_that_schedules_nothing_is_returned_as_is(router):
    router.get("/plain")(lambda: {"ok": True})
    app = App(router)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/plain", "wsgi.url_scheme": "http",
               "SERVER_NAME": "x", "SERVER_PORT": "80"}  # fmt: skip
    body = app(environ, lambda status, headers: None)
    assert type(body) is list  # the servers' one-write path stays


def test_werkzeug_response_bodies_too(router, make_client):
    events: list[str] = []

    @router.get("/resp")
    def resp():
        after(events.append, "after")
        return Response("text")

    assert make_client().get("/resp").text == "text"
    assert events == ["after"]


@pytest.mark.parametrize("kind", ["threads", "greenlets"])
def test_a_full_pool_makes_the_next_work_wait_never_drops_it(kind):
    """README: "When the pool is full, the next `after()` work waits for a slot rather
    than being dropped"."""
    import gevent

    from microroute.after_response import _GreenletPool, _ThreadPool

    pool = _ThreadPool(1) if kind == "threads" else _GreenletPool(1)
    done: list[int] = []
    release = threading.Event()

    def first():
        while not release.is_set():  # cooperative: greenlets must yield while they wait
            gevent.sleep(0.01) if kind == "greenlets" else release.wait(0.01)
        done.append(1)

    pool.submit(first)
    if kind == "greenlets":
        gevent.sleep(0)  # let it start
    submitted: list[bool] = []

    def second():
        pool.submit(lambda: done.append(2))
        submitted.append(True)

    if kind == "threads":
        waiter = threading.Thread(target=second)
        waiter.start()
        waiter.join(0.2)
        assert submitted == []  # still waiting for the one slot
        release.set()
        waiter.join(5)
    else:
        waiter = gevent.spawn(second)
        waiter.join(0.2)
        assert submitted == []
        release.set()
        waiter.join(5)
    assert submitted == [True]
    assert pool.join(5) is True
    assert done == [1, 2]


def test_runs_when_called_in_an_event_stream_generator(router, make_client):
    """README: "Call it in a handler, middleware, an error handler or a stream's
    generator" — an EventStream's, with its default heartbeat, too."""
    from microroute import EventStream

    events: list[str] = []

    @router.get("/events", dynamic="force-dynamic")
    def stream():
        def gen():
            yield "first"
            after(events.append, "usage recorded")
            yield "second"

        return EventStream(gen())

    resp = make_client().get("/events")
    assert resp.content == b"data: first\n\ndata: second\n\n"
    assert events == ["usage recorded"]
