"""``App(health=True)``: ``/healthz`` and ``/readyz`` (``microroute.health``), in-process.

The server's side, a stop turning ``/readyz`` to 503 at once, is in
``tests/e2e/test_graceful_stop.py``.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder

from microroute import App, Router
from microroute.logs import QUIET
from microroute.stopping import STOPPING
from microroute.testing import TestClient


def make_app() -> App:
    api = Router()

    @api.get("/x")
    def x() -> dict[str, int]:
        return {"x": 1}

    app = App(api, health=True)

    @app.use
    def tag(request: Any, call_next: Any) -> Any:
        response = call_next(request)
        response.headers["X-Middleware"] = "1"
        return response

    return app


def test_healthz_and_readyz_answer_before_middleware_and_never_cached() -> None:
    client = TestClient(make_app())
    for path, body in (("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})):
        for _ in range(2):
            resp = client.get(path)
            assert (resp.status_code, resp.json()) == (200, body)
            assert resp.headers["Cache-Control"] == "no-store"
            assert "X-Microroute-Cache" not in resp.headers
            assert "X-Middleware" not in resp.headers
        head = client.head(path)
        assert (head.status_code, head.content) == (200, b"")
    assert client.get("/x").headers["X-Middleware"] == "1"
    assert client.post("/readyz").status_code == 405  # the route table's answer


def test_a_ready_check_that_fails_or_raises_makes_readyz_503() -> None:
    app = make_app()
    client = TestClient(app)
    state = {"db": True}

    @app.ready_check
    def database() -> bool:
        return state["db"]

    @app.ready_check
    def cache() -> bool:
        if state.get("boom"):
            raise ConnectionError("cache down")
        return True

    assert client.get("/readyz").status_code == 200
    state["db"] = False
    resp = client.get("/readyz")
    assert (resp.status_code, resp.json()) == (
        503,
        {
            "status": "not ready",
            "failed": [
                "test_a_ready_check_that_fails_or_raises_makes_readyz_503.<locals>.database"
            ],
        },
    )
    state["db"], state["boom"] = True, True
    assert client.get("/readyz").json()["failed"][0].endswith("cache")
    state["boom"] = False
    assert client.get("/readyz").status_code == 200
    assert client.get("/healthz").status_code == 200  # alive throughout


class Stop:
    stopping = False


def test_readyz_is_503_from_the_moment_the_server_says_it_stops() -> None:
    app = make_app()
    stop = Stop()
    replies: list[str] = []

    def call(path: str) -> dict[str, Any]:
        environ = EnvironBuilder(path=path).get_environ()
        environ[STOPPING] = stop
        body = b"".join(app(environ, lambda status, headers: replies.append(status)))
        assert environ[QUIET]  # servers write no access line for it
        return {"status": replies[-1], "body": body}

    assert call("/readyz")["status"] == "200 OK"
    stop.stopping = True
    assert call("/readyz") == {
        "status": "503 Service Unavailable",
        "body": b'{"status":"stopping"}',
    }
    assert call("/healthz")["status"] == "200 OK"  # still serving


def test_the_probes_are_in_the_route_table_and_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    rows = {row["path"]: row for row in app.route_table()}
    assert rows["/healthz"]["methods"] == rows["/readyz"]["methods"] == "GET"
    assert rows["/readyz"]["mode"] == "dynamic"
    client = TestClient(app)
    with caplog.at_level(logging.INFO, logger="microroute.access"):
        client.get("/readyz")
        client.get("/healthz")
        client.get("/x")
    paths = [getattr(record, "path", None) for record in caplog.records]
    assert paths == ["/x"], paths


def test_probes_are_off_by_default_and_ready_check_says_how_to_turn_them_on() -> None:
    api = Router()

    @api.get("/x")
    def x() -> dict[str, int]:
        return {"x": 1}

    app = App(api)
    assert TestClient(app).get("/healthz").status_code == 404
    with pytest.raises(RuntimeError, match="health=True"):
        app.ready_check(lambda: True)
