"""OpenTelemetry traces on every server kind: the same checks as in-process.

The app exports its spans to a file (one JSON line each) that ``/spans/<trace id>``
reads back, so what a check sees is what the server's process exported.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import telemetry_checks as checks
from servers import APPS, REPO, Launcher, Server, Target, free_port, subprocess_env, wait_ready

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


def test_opentelemetry_instrument_traces_microroute_run(tmp_path: Path) -> None:
    """No code: ``opentelemetry-instrument microroute run`` finds the entry point."""
    wrapper = Path(sys.executable).with_name("opentelemetry-instrument")
    assert wrapper.exists(), "opentelemetry-instrument comes with the test extra"
    port = free_port()
    env = {
        "OTEL_TRACES_EXPORTER": "console",  # spans printed, as JSON, to the log
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_SERVICE_NAME": "hello",
    }
    argv = [str(wrapper), sys.executable, "-m", "microroute", "run", "examples/hello.py"]
    log = tmp_path / "instrumented.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*argv, "--port", str(port)],
            cwd=REPO,
            env=subprocess_env(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server("microroute", f"http://127.0.0.1:{port}", process, log)
    try:
        wait_ready(server)
        assert requests.get(f"{server.url}/hello/Ada", timeout=10).status_code == 200
        deadline = time.monotonic() + 10
        while '"name": "GET /hello/[name]"' not in server.output():
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        assert '"http.route": "/hello/[name]"' in server.output()
    finally:
        server.stop()
