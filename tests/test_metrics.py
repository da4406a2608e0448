"""Prometheus metrics in-process: ``App(metrics="/metrics")``, through the lifecycle seam.

The scrape checks run on every server kind too (and across two gunicorn
workers) in ``tests/e2e/test_metrics_servers.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import metrics_checks as checks
import pytest

from microroute import App, Router, after
from microroute.errors import StartupError
from microroute.metrics import Metrics
from microroute.targets import load_app
from microroute.testing import TestClient

APP = Path(__file__).parent / "e2e" / "apps" / "observed_app.py"


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = load_app(str(APP))  # a fresh app: counts from zero
    with TestClient(app) as session:
        yield session


def test_counts_of_a_known_sequence(client: TestClient) -> None:
    checks.check_counts_of_a_known_sequence(client, "")


def test_open_streams(client: TestClient) -> None:
    checks.check_open_streams(client, "")


def test_pending_after_work_is_counted_while_it_runs() -> None:
    api = Router()
    seen: list[float] = []

    def work() -> None:  # the TestClient runs after() work inside close()
        samples = checks.scrape(session, "")
        seen.append(checks.value(samples, "microroute_after_pending"))

    @api.post("/jobs")
    def job():
        after(work)
        return {}

    app = App(api, metrics="/metrics")
    with TestClient(app) as session:
        session.post("/jobs")
        assert checks.value(checks.scrape(session, ""), "microroute_after_pending") == 0
    assert seen == [1]


def hello_router() -> Router:
    api = Router()

    @api.get("/hello")
    def hello():
        return {"hello": "world"}

    return api


def test_the_endpoint_is_a_route_outside_middleware() -> None:
    app = App(hello_router(), metrics="/metrics")

    @app.use
    def locked(request, call_next):
        return {"error": "locked"}, 401

    rows = {row["path"]: row for row in app.route_table()}
    assert rows["/metrics"]["mode"] == "dynamic"
    with TestClient(app) as session:
        assert session.get("/hello").status_code == 401
        scraped = session.get("/metrics")
        assert scraped.status_code == 200
        assert session.head("/metrics").status_code == 200
    # The middleware answered before routing: no route matched.
    assert 'route="unmatched",status="401"' in scraped.text


def test_openmetrics_when_the_scraper_asks() -> None:
    app = App(hello_router(), metrics="/metrics")
    with TestClient(app) as session:
        session.get("/hello")
        scraped = session.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert scraped.headers["Content-Type"].startswith("application/openmetrics-text")
    assert scraped.text.endswith("# EOF\n")


def test_each_app_counts_its_own_requests() -> None:
    first, second = App(hello_router(), metrics="/metrics"), App(hello_router(), metrics="/m")
    with TestClient(first) as one, TestClient(second) as two:
        one.get("/hello")
        assert checks.value(checks.scrape(one, ""), "microroute_requests_total",
                            method="GET", route="/hello", status="200") == 1  # fmt: skip
        samples = {
            line
            for line in two.get("/m").text.splitlines()
            if line.startswith("microroute_requests_total{")
        }
    assert samples == set()


def test_without_prometheus_client_a_start_up_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "microroute.metrics")
    with pytest.raises(StartupError, match=r'pip install "microroute\[metrics\]"'):
        App(hello_router(), metrics="/metrics")


def test_a_multiprocess_folder_set_too_late_is_a_start_up_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(StartupError, match="set after prometheus_client was imported"):
        Metrics("/metrics")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    with pytest.raises(StartupError, match="is not a folder"):
        Metrics("/metrics")


def test_a_path_must_be_absolute() -> None:
    with pytest.raises(StartupError, match="must start with"):
        App(hello_router(), metrics="metrics")
