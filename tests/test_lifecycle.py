"""The lifecycle seam in-process: an observer sees every request's four moments.

The same checks run on every server kind in ``tests/e2e/test_lifecycle_servers.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lifecycle_checks as checks
import pytest

from microroute import App, Router
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
