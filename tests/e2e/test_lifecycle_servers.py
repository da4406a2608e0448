"""The lifecycle seam on every server kind: the same four moments as in-process."""

from __future__ import annotations

import time

import lifecycle_checks as checks
import pytest
import requests
from servers import APPS, REPO, Launcher, Server, Target

LIFECYCLE_APP = Target(
    "lifecycle",
    run=str((APPS / "lifecycle_app.py").relative_to(REPO)),
    wsgi="lifecycle_app:app",
    chdir=APPS,
)


@pytest.fixture
def server(launch: Launcher) -> Server:
    return launch.start(LIFECYCLE_APP)


def test_a_dynamic_request(server: Server) -> None:
    checks.check_dynamic_request(requests, server.url)


def test_a_stream_ends_at_its_last_chunk(server: Server) -> None:
    checks.check_stream_ends_at_its_last_chunk(requests, server.url)


def test_cache_hits_are_observed(server: Server) -> None:
    checks.check_static_hits_are_observed(requests, server.url)


def test_unmatched_paths_and_early_errors(server: Server) -> None:
    checks.check_unmatched_and_early_errors(requests, server.url)


def test_after_work_runs_in_the_observed_context(server: Server) -> None:
    checks.check_after_work_sees_the_context(requests, server.url)


def test_a_client_that_leaves_mid_stream_ends_the_exchange(server: Server) -> None:
    name = checks.tag()
    with requests.get(
        f"{server.url}/endless", headers={"X-Tag": name}, stream=True, timeout=10
    ) as response:
        assert next(response.iter_lines()) == b"first"
        time.sleep(0.1)
    (record,) = checks.records(requests, server.url, name)
    assert record["route"] == "/endless"
    assert record["disconnected"] is True
    assert record["completed"] is False
