"""The lifecycle seam in-process: an observer sees every request's four moments.

The same checks run on every server kind in ``tests/e2e/test_lifecycle_servers.py``.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from pathlib import Path

import lifecycle_checks as checks
import pytest

from microroute import App, Router, abort, after, cookies
from microroute.lifecycle import Exchange, Observer
from microroute.targets import load_app
from microroute.testing import TestClient

APP = Path(__file__).parent / "e2e" / "apps" / "lifecycle_app.py"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = load_app(str(APP))
    with TestClient(app) as session:
        yield session


def test_a_dynamic_request(client: TestClient) -> None:
    checks.check_dynamic_request(client, "")


def test_a_stream_ends_at_its_last_chunk(client: TestClient) -> None:
    checks.check_stream_ends_at_its_last_chunk(client, "")


def test_cache_hits_are_observed(client: TestClient) -> None:
    checks.check_static_hits_are_observed(client, "")


def test_unmatched_paths_and_early_errors(client: TestClient) -> None:
    checks.check_unmatched_and_early_errors(client, "")


def test_after_work_runs_in_the_observed_context(client: TestClient) -> None:
    checks.check_after_work_sees_the_context(client, "")


def test_a_stream_the_client_closes_is_disconnected() -> None:
    ended: list[Exchange] = []

    class Ends(Observer):
        def response_ended(self, exchange: Exchange) -> None:
            ended.append(exchange)

    api = Router()

    @api.get("/endless")
    def endless():
        while True:
            yield "tick\n"

    app = App(api)
    app.observe(Ends())
    with TestClient(app) as session:
        response = session.get("/endless", stream=True)
        assert next(response.iter_content(5)) == b"tick\n"
        response.close()
    (exchange,) = ended
    assert exchange.route == "/endless"
    assert exchange.disconnected is True
    assert exchange.completed is False
    assert exchange.bytes_sent >= 5


def test_an_error_after_the_first_chunk_is_recorded() -> None:
    ended: list[Exchange] = []

    class Ends(Observer):
        def response_ended(self, exchange: Exchange) -> None:
            ended.append(exchange)

    api = Router()

    @api.get("/broken")
    def broken():
        yield "one\n"
        raise ValueError("mid-stream")

    app = App(api)
    app.observe(Ends())
    with TestClient(app) as session:
        response = session.get("/broken", stream=True)
        chunks = response.iter_content(None)
        assert next(chunks) == b"one\n"
        with pytest.raises(RuntimeError, match="after the first chunk"):
            next(chunks)
        response.close()
    (exchange,) = ended
    assert exchange.error is not None
    assert exchange.disconnected is False
    assert exchange.status_code == 200


def test_observed_hits_keep_the_fast_path_and_name_their_route() -> None:
    """A HIT is still a dict lookup with an observer: the route comes from the entry."""
    seen: list[tuple[str | None, int, bool]] = []

    class Ends(Observer):
        def response_ended(self, exchange: Exchange) -> None:
            seen.append((exchange.route, exchange.status_code, exchange.streaming))

    api = Router()

    @api.get("/pages/[n]")
    def page(n: str):
        return {"page": n}

    app = App(api)
    app.observe(Ends())
    with TestClient(app) as session:
        assert session.get("/pages/1").headers["X-Microroute-Cache"] == "MISS"
        assert session.get("/pages/1").headers["X-Microroute-Cache"] == "HIT"
    assert app._fast is not None
    assert seen == [("/pages/[n]", 200, False), ("/pages/[n]", 200, False)]


class Moments(Observer):
    """Records the moments beyond the response: after() work, builds, rendered errors."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.builds: list[Exchange] = []
        self.ended: list[Exchange] = []

    def after_scheduled(self, exchange: Exchange) -> None:
        self.seen.append(("after scheduled", exchange.path))

    def after_done(self, exchange: Exchange) -> None:
        self.seen.append(("after done", exchange.path))

    def build_started(self, build: Exchange) -> None:
        self.seen.append(("build started", build.route))

    def build_ended(self, build: Exchange) -> None:
        self.seen.append(("build ended", build.route))
        self.builds.append(build)

    def response_ended(self, exchange: Exchange) -> None:
        self.seen.append(("ended", exchange.path))
        self.ended.append(exchange)


def test_after_work_is_seen_handed_on_and_done() -> None:
    api = Router()
    ran: list[str] = []

    @api.post("/jobs")
    def job():
        after(ran.append, "work")
        return {"queued": True}

    app = App(api)
    moments = app.observe(Moments())
    with TestClient(app) as session:
        session.post("/jobs")
    assert ran == ["work"]
    # The TestClient runs after() work inside close(), before the exchange ends.
    assert moments.seen == [
        ("after scheduled", "/jobs"),
        ("after done", "/jobs"),
        ("ended", "/jobs"),
    ]


def test_a_static_build_is_seen_as_the_requests_own() -> None:
    api = Router()
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="fresh")
    seen_in_build: list[str] = []

    class Marks(Moments):
        def build_started(self, build: Exchange) -> None:
            super().build_started(build)
            marker.set("set by the observer")  # in the build's own context

    @api.get("/pages/[n]", revalidate=0.05)
    def page(n: str):
        seen_in_build.append(marker.get())
        return {"page": n}

    app = App(api)
    moments = app.observe(Marks())
    with TestClient(app) as session:
        assert session.get("/pages/1").headers["X-Microroute-Cache"] == "MISS"
        time.sleep(0.1)
        assert session.get("/pages/1").headers["X-Microroute-Cache"] == "STALE"
        deadline = time.monotonic() + 5
        while len(moments.builds) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    first, rebuild = moments.builds
    assert moments.seen[:3] == [
        ("build started", "/pages/[n]"),
        ("build ended", "/pages/[n]"),
        ("ended", "/pages/1"),
    ]
    assert seen_in_build == ["set by the observer", "set by the observer"]
    # The first build was the MISS's, the rebuild the STALE request's.
    assert first.cause is moments.ended[0]
    assert rebuild.cause is moments.ended[1]
    assert (first.status, first.path, first.method) == ("200 OK", "/pages/1", "GET")


def test_an_abandoned_build_has_no_status_and_a_failed_one_its_error() -> None:
    api = Router()

    @api.get("/personal")
    def personal():
        return {"user": cookies().get("user")}

    @api.get("/broken")
    def broken():
        raise ValueError("only in a build")

    app = App(api)
    moments = app.observe(Moments())
    with TestClient(app) as session:
        session.get("/personal")
        session.get("/broken")
    abandoned, failed = moments.builds
    assert abandoned.route == "/personal"
    assert abandoned.status is None
    assert abandoned.error is None
    assert failed.route == "/broken"
    assert isinstance(failed.error, ValueError)


def test_an_exception_rendered_as_an_error_page_is_kept() -> None:
    api = Router()

    @api.get("/boom", dynamic="force-dynamic")
    def boom():
        raise KeyError("missing")

    @api.get("/gone", dynamic="force-dynamic")
    def gone():
        abort(410)

    app = App(api)
    moments = app.observe(Moments())
    with TestClient(app) as session:
        assert session.get("/boom").status_code == 500
        assert session.get("/gone").status_code == 410
    failed, answered = moments.ended
    assert isinstance(failed.raised, KeyError)
    assert answered.raised is None  # abort() is an answer, not a failure
