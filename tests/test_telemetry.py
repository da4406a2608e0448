"""OpenTelemetry traces in-process: one span per request, through the lifecycle seam.

The trace checks run on every server kind too, in
``tests/e2e/test_telemetry_servers.py``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import telemetry_checks as checks
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from microroute import App, Router
from microroute.targets import load_app
from microroute.telemetry import MicrorouteInstrumentor, Telemetry, instrument
from microroute.testing import TestClient

APP = Path(__file__).parent / "e2e" / "apps" / "observed_app.py"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = load_app(str(APP))
    with TestClient(app) as session:
        yield session


def test_a_handler_span(client: TestClient) -> None:
    checks.check_a_handler_span(client, "")


def test_a_stream_span_ends_at_its_last_chunk(client: TestClient) -> None:
    checks.check_a_stream_span_ends_at_its_last_chunk(client, "")


def test_after_work_is_in_the_trace(client: TestClient) -> None:
    checks.check_after_work_is_in_the_trace(client, "")


def test_a_client_leaving_is_recorded(client: TestClient) -> None:
    checks.check_a_client_leaving_is_recorded(client, "")


def test_a_static_build_is_a_child_span(client: TestClient) -> None:
    checks.check_a_static_build_is_a_child_span(client, "")


def test_an_exception_is_recorded(client: TestClient) -> None:
    checks.check_an_exception_is_recorded(client, "")


def test_an_unmatched_path_is_named_by_its_method(client: TestClient) -> None:
    checks.check_an_unmatched_path_is_named_by_its_method(client, "")


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def hello_app() -> App:
    api = Router()

    @api.get("/hello", dynamic="force-dynamic")
    def hello():
        return {"hello": "world"}

    def anything():
        return {}

    api.add("/anything", anything, methods=["GET", "PURGE"], dynamic="force-dynamic")

    @api.get("/broken-stream")
    def broken_stream():
        yield "one\n"
        raise ValueError("mid-stream")

    return App(api)


def test_an_unknown_method_is_other(provider: TracerProvider, exporter: InMemorySpanExporter):
    app = hello_app()
    instrument(app, tracer_provider=provider)
    with TestClient(app) as session:
        assert session.request("PURGE", "/anything").status_code == 200
    (span,) = exporter.get_finished_spans()
    assert span.name == "HTTP /anything"
    assert span.attributes is not None
    assert span.attributes["http.request.method"] == "_OTHER"
    assert span.attributes["http.request.method_original"] == "PURGE"


def test_an_error_mid_stream_fails_the_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app = hello_app()
    instrument(app, tracer_provider=provider)
    with TestClient(app) as session:
        response = session.get("/broken-stream", stream=True)
        chunks = response.iter_content(None)
        assert next(chunks) == b"one\n"
        with pytest.raises(RuntimeError):
            next(chunks)
        response.close()
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert [event.name for event in span.events] == ["exception"]
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 200


def test_instrumenting_twice_adds_one_observer(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app = hello_app()
    first = instrument(app, tracer_provider=provider)
    assert instrument(app) is first
    with TestClient(app) as session:
        session.get("/hello")
    assert [span.name for span in exporter.get_finished_spans()] == ["GET /hello"]


def test_the_duration_metric_with_a_meter_provider(provider: TracerProvider) -> None:
    reader = InMemoryMetricReader()
    app = hello_app()
    instrument(app, tracer_provider=provider, meter_provider=MeterProvider([reader]))
    with TestClient(app) as session:
        session.get("/hello")
        session.get("/hello")
        session.get("/nowhere")
    data = reader.get_metrics_data()
    assert data is not None
    (scope,) = data.resource_metrics[0].scope_metrics
    assert scope.scope.name == "microroute"
    (metric,) = scope.metrics
    assert metric.name == "http.server.request.duration"
    assert metric.unit == "s"
    points = {
        (p.attributes.get("http.route"), p.attributes["http.response.status_code"]): p
        for p in metric.data.data_points  # type: ignore[union-attr]
    }
    assert points[("/hello", 200)].count == 2  # type: ignore[union-attr]
    assert points[(None, 404)].count == 1  # type: ignore[union-attr]
    assert points[("/hello", 200)].attributes["http.request.method"] == "GET"


def test_the_instrumentor_instruments_every_app_made_after_it(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    instrumentor = MicrorouteInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        app = hello_app()
        assert any(isinstance(o, Telemetry) for o in app._observers)
    finally:
        instrumentor.uninstrument()
    assert not any(isinstance(o, Telemetry) for o in hello_app()._observers)
    with TestClient(app) as session:
        session.get("/hello")
    (span,) = exporter.get_finished_spans()
    assert span.kind is SpanKind.SERVER
    assert span.name == "GET /hello"


def test_opentelemetry_instrument_finds_the_entry_point() -> None:
    """``opentelemetry-instrument`` loads the ``microroute`` instrumentor by its entry point."""
    script = (
        "import opentelemetry.instrumentation.auto_instrumentation.sitecustomize\n"
        "from microroute import App, Router\n"
        "from microroute.telemetry import Telemetry\n"
        "api = Router()\n"
        "api.add('/', lambda: {})\n"
        "print(any(isinstance(o, Telemetry) for o in App(api)._observers))\n"
    )
    env = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "PATH": ""}
    env["OTEL_LOGS_EXPORTER"] = "none"
    found = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert found.stdout.strip() == "True", found.stderr
