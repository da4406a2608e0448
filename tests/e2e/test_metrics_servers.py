"""A ``/metrics`` scrape on every server kind; under gunicorn, across two workers.

Each scrape passes Prometheus's ``promtool check metrics``. gunicorn runs two
workers in prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``,
and README's ``gunicorn.conf.py`` with ``child_exit``): whichever worker answers
a scrape, the counts are those of every request both workers served.
"""

from __future__ import annotations

import metrics_checks as checks
import pytest
import requests
from servers import Launcher, Server
from test_telemetry_servers import OBSERVED_APP


@pytest.fixture
def server(launch: Launcher, tmp_path_factory: pytest.TempPathFactory) -> Server:
    if launch.kind == "microroute":  # one process
        return launch.start(OBSERVED_APP)
    folder = tmp_path_factory.mktemp("prometheus")
    config = folder / "gunicorn.conf.py"
    config.write_text("from microroute.metrics import child_exit  # noqa: F401\n")
    shared = folder / "multiproc"
    shared.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared), "GUNICORN_CMD_ARGS": f"--config {config}"}
    return launch.start(OBSERVED_APP, env=env, workers=2)


@pytest.fixture
def workers(launch: Launcher) -> int:
    return 1 if launch.kind == "microroute" else 2


def test_counts_of_a_known_sequence(server: Server, workers: int) -> None:
    checks.check_counts_of_a_known_sequence(requests, server.url, workers)


def test_open_streams(server: Server) -> None:
    checks.check_open_streams(requests, server.url)


def test_pending_after_work(server: Server) -> None:
    checks.check_pending_after_work(requests, server.url)
