"""An app with traces and metrics on: OpenTelemetry's SDK, and ``App(metrics="/metrics")``.

Spans go to the file named by ``OBSERVED_SPANS`` (one JSON object a line, so
every worker of a server appends to the same file), or stay in memory when it
is unset (in-process tests). ``/spans/[trace_id]`` returns a trace's spans
either way; each route makes child spans where the request's span must be
current: in the handler, in each chunk of a stream, in after() work, in an
on_disconnect callback.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from microroute import App, Router, after, on_disconnect
from microroute.telemetry import instrument


def as_dict(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "parent_id": f"{span.parent.span_id:016x}" if span.parent is not None else None,
        "start": span.start_time,
        "end": span.end_time,
        "attributes": dict(span.attributes or {}),
        "events": [event.name for event in span.events],
        "status": span.status.status_code.name,
        "pid": os.getpid(),
    }


class SpanFile(SpanExporter):
    """Appends each finished span to a file, one JSON line, from any worker."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(as_dict(span)) + "\n" for span in spans)
        with self.lock, open(self.path, "a") as out:
            out.write(lines)
        return SpanExportResult.SUCCESS


SPANS_FILE = os.environ.get("OBSERVED_SPANS")
memory = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(SpanFile(SPANS_FILE) if SPANS_FILE else memory))
tracer = provider.get_tracer("observed_app")


def spans_of(trace_id: str) -> list[dict[str, Any]]:
    if SPANS_FILE:
        try:
            with open(SPANS_FILE) as lines:
                found = [json.loads(line) for line in lines if line.endswith("\n")]
        except FileNotFoundError:
            found = []
    else:
        found = [as_dict(span) for span in memory.get_finished_spans()]
    return [span for span in found if span["trace_id"] == trace_id]


api = Router()


@api.get("/items/[id]", dynamic="force-dynamic")
def item(id: str):
    with tracer.start_as_current_span("handler work"):
        pass
    return {"id": id, "pid": os.getpid()}


@api.get("/stream")
def stream():
    with tracer.start_as_current_span("chunk 1"):
        yield "first\n"
    time.sleep(0.2)
    with tracer.start_as_current_span("chunk 2"):
        yield "second\n"


def after_work() -> None:
    with tracer.start_as_current_span("after work"):
        pass


@api.post("/jobs")
def job():
    after(after_work)
    return {"queued": True}


@api.post("/slow-jobs")
def slow_job():
    after(time.sleep, 0.5)
    return {"queued": True}


def left() -> None:
    with tracer.start_as_current_span("on_disconnect"):
        pass


@api.get("/endless")
def endless():
    on_disconnect(left)
    yield "first\n"
    while True:
        time.sleep(0.05)
        yield "more\n"


@api.get("/pages/[n]")
def page(n: str):
    with tracer.start_as_current_span("page work"):
        return {"page": n}


@api.get("/boom", dynamic="force-dynamic")
def boom():
    raise LookupError("no such thing")


@api.get("/spans/[trace_id]", dynamic="force-dynamic")
def spans(trace_id: str):
    return {"spans": spans_of(trace_id)}


app = App(api, metrics="/metrics")
instrument(app, tracer_provider=provider)
