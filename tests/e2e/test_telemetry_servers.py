"""OpenTelemetry traces on every server kind: the same checks as in-process.

The app exports its spans to a file (one JSON line each) that ``/spans/<trace id>``
reads back, so what a check sees is what the server's process exported.
"""

from __future__ import annotations

import pytest
import requests
import telemetry_checks as checks
from servers import APPS, REPO, Launcher, Server, Target

OBSERVED_APP = Target(
    "observed",
    run=str((APPS / "observed_app.py").relative_to(REPO)),
    wsgi="observed_app:app",
    chdir=APPS,
)


@pytest.fixture
def server(launch: Launcher, tmp_path_factory: pytest.TempPathFactory) -> Server:
    spans = tmp_path_factory.mktemp("spans") / "spans.jsonl"
    return launch.start(OBSERVED_APP, env={"OBSERVED_SPANS": str(spans)})


def test_a_handler_span(server: Server) -> None:
    checks.check_a_handler_span(requests, server.url)


def test_a_stream_span_ends_at_its_last_chunk(server: Server) -> None:
    checks.check_a_stream_span_ends_at_its_last_chunk(requests, server.url)


def test_after_work_is_in_the_trace(server: Server) -> None:
    checks.check_after_work_is_in_the_trace(requests, server.url)


def test_a_client_leaving_is_recorded(server: Server) -> None:
    checks.check_a_client_leaving_is_recorded(requests, server.url)


def test_a_static_build_is_a_child_span(server: Server) -> None:
    checks.check_a_static_build_is_a_child_span(requests, server.url)


def test_an_exception_is_recorded(server: Server) -> None:
    checks.check_an_exception_is_recorded(requests, server.url)
