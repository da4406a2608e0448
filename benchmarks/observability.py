"""What traces and metrics cost per request, beside Falcon and FastAPI with their own.

    python -m benchmarks.observability [--reps 30] [--smoke]

One run, in-process, no socket: ``GET /users/42`` (a route with a parameter,
so a span is named by its template) answered with ``{"id":"42"}``:

* microroute (cache off, the handler runs) plain; with OpenTelemetry
  (:func:`microroute.telemetry.instrument`); with Prometheus metrics
  (``App(metrics="/metrics")``); with both;
* Falcon plain, and with ``opentelemetry-instrumentation-falcon``;
* FastAPI plain, and with ``opentelemetry-instrumentation-fastapi``.

OpenTelemetry is the SDK's ``TracerProvider`` with a ``SimpleSpanProcessor``
handing each span to an exporter that drops it: every span is made, ended and
exported on the request's own time, with no background thread competing for
the GIL and no span dropped by a full queue (a ``BatchSpanProcessor`` in
production moves only the export, here a no-op, off the request). Metrics go
to the global meter provider, which without an SDK meter provider is the API's
no-op, for all three alike. microroute and
Falcon are called as WSGI callables (``benchmarks.calls``), FastAPI as an ASGI
callable on one event loop (as ``benchmarks.typed`` does). Each app is checked
to answer 200 with the same JSON, and each instrumented one to make exactly one
span per request, before timing; rounds alternate between the apps and the
figure is the median µs per request.

Peers: ``pip install -r benchmarks/requirements.txt -r benchmarks/requirements-typed.txt
-r benchmarks/requirements-observability.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from .calls import make_environ

EXPECTED = {"id": "42"}
PATH = "/users/42"

Runner = Callable[[int], bytes]  # runs n requests, returns the last body


class Dropped(SpanExporter):
    """An exporter that drops every batch: the SDK's work, and no I/O."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def tracing() -> tuple[TracerProvider, Dropped]:
    exporter = Dropped()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


# -- the apps ------------------------------------------------------------------


def microroute_app(metrics: bool = False, ids: bool = True) -> Any:
    from microroute import App, Router

    api = Router()

    @api.get("/users/[id]")
    def user(id: str) -> dict[str, str]:
        return {"id": id}

    return App(
        api,
        cache=False,
        metrics="/metrics" if metrics else None,
        request_id_header="X-Request-ID" if ids else None,
    )


def with_access_log(run: Runner, path: str) -> Runner:
    """*run* with the ``microroute.access`` logger writing to the file *path*.

    Logging is the process's: it is turned on for this runner's batches only,
    so the other rows run with nobody listening, as under gunicorn.
    """
    import logging

    logger = logging.getLogger("microroute.access")
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))

    def logged(n: int) -> bytes:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        try:
            return run(n)
        finally:
            logger.removeHandler(handler)
            logger.setLevel(logging.NOTSET)
            logger.propagate = True

    return logged


def falcon_app() -> Any:
    import falcon

    class User:
        def on_get(self, req: falcon.Request, resp: falcon.Response, id: str) -> None:
            resp.media = {"id": id}

    app = falcon.App()
    app.add_route("/users/{id}", User())
    return app


def fastapi_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/users/{id}")
    async def user(id: str) -> dict[str, str]:
        return {"id": id}

    return app


# -- calling them ----------------------------------------------------------------


def wsgi_runner(app: Any) -> Runner:
    template = make_environ("GET", PATH)

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        assert status.startswith("200"), status

    def run(n: int) -> bytes:
        data = b""
        for _ in range(n):
            body = app(template.copy(), start_response)
            data = b"".join(body)
            close = getattr(body, "close", None)
            if close is not None:
                close()
        return data

    return run


def asgi_runner(app: Any) -> Runner:
    scope_template = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", b"benchmarks/1.0"),
            (b"accept", b"*/*"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    loop = asyncio.new_event_loop()
    message = {"type": "http.request", "body": b"", "more_body": False}

    async def batch(n: int) -> bytes:
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            return message

        async def send(event: dict[str, Any]) -> None:
            if event["type"] == "http.response.start":
                assert event["status"] == 200, event
                chunks.clear()
            elif event["type"] == "http.response.body":
                chunks.append(event.get("body", b""))

        for _ in range(n):
            await app(dict(scope_template), receive, send)
        return b"".join(chunks)

    def run(n: int) -> bytes:
        return loop.run_until_complete(batch(n))

    return run


def runners() -> tuple[dict[str, Runner], dict[str, tuple[TracerProvider, Dropped]]]:
    """Every app, and the tracing each instrumented one exports to."""
    from opentelemetry.instrumentation.falcon import FalconInstrumentor
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    from microroute.telemetry import instrument

    traced: dict[str, tuple[TracerProvider, Dropped]] = {}
    apps: dict[str, Runner] = {
        "microroute (request ids off)": wsgi_runner(microroute_app(ids=False)),
        "microroute": wsgi_runner(microroute_app()),
    }
    handle, log = tempfile.mkstemp(prefix="microroute-access-", suffix=".log")
    os.close(handle)
    apps["microroute + access log"] = with_access_log(wsgi_runner(microroute_app()), log)

    app = microroute_app()
    traced["microroute + OTel"] = tracing()
    instrument(app, tracer_provider=traced["microroute + OTel"][0])
    apps["microroute + OTel"] = wsgi_runner(app)
    apps["microroute + metrics"] = wsgi_runner(microroute_app(metrics=True))
    app = microroute_app(metrics=True)
    traced["microroute + OTel + metrics"] = tracing()
    instrument(app, tracer_provider=traced["microroute + OTel + metrics"][0])
    apps["microroute + OTel + metrics"] = wsgi_runner(app)

    apps["Falcon"] = wsgi_runner(falcon_app())
    traced["Falcon + OTel"] = tracing()
    # falcon.App is patched from now on (and uninstrumenting would turn the
    # instrumented app's spans off too): the plain app was made before.
    FalconInstrumentor().instrument(tracer_provider=traced["Falcon + OTel"][0])
    apps["Falcon + OTel"] = wsgi_runner(falcon_app())

    apps["FastAPI"] = asgi_runner(fastapi_app())
    app = fastapi_app()
    traced["FastAPI + OTel"] = tracing()
    FastAPIInstrumentor.instrument_app(app, tracer_provider=traced["FastAPI + OTel"][0])
    apps["FastAPI + OTel"] = asgi_runner(app)
    return apps, traced


def check(apps: dict[str, Runner], traced: dict[str, tuple[TracerProvider, Dropped]]) -> None:
    """The same answer from each; one span a request from each instrumented one."""
    for name, run in apps.items():
        body = run(3)
        assert json.loads(body) == EXPECTED, (name, body)
        if name in traced:
            exporter = traced[name][1]
            # FastAPI's instrumentation adds an INTERNAL span per ASGI message sent.
            expected = 3 if not name.startswith("FastAPI") else 9
            assert exporter.spans == expected, (name, exporter.spans)
            exporter.spans = 0


def measure(apps: dict[str, Runner], reps: int, batch_seconds: float) -> dict[str, float]:
    sizes: dict[str, int] = {}
    for name, run in apps.items():
        n = 10
        while True:
            start = time.perf_counter()
            run(n)
            if time.perf_counter() - start >= batch_seconds:
                break
            n *= 4
        sizes[name] = n
    samples: dict[str, list[float]] = {name: [] for name in apps}
    names = list(apps)
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            start = time.perf_counter()
            apps[name](sizes[name])
            samples[name].append((time.perf_counter() - start) / sizes[name] * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def table(medians: dict[str, float]) -> str:
    """The figures, what instrumentation adds, and microroute's place beside its peers."""
    lines = [
        f"In-process, GET {PATH}: µs per request (median), OpenTelemetry SDK, no-op exporter;"
        " microroute with request ids on unless said, access log to a file",
        f"{'app':<30} {'µs/req':>8} {'added µs':>9} {'x plain':>8} {'vs microroute':>14}",
    ]
    plain = {"microroute": medians["microroute"]}
    plain["Falcon"] = medians["Falcon"]
    plain["FastAPI"] = medians["FastAPI"]
    for name, value in medians.items():
        framework = name.split(" + ")[0].split(" (")[0]
        # microroute's own row (request ids on, the default) is measured
        # against everything off; its other rows against it.
        if name.startswith("microroute (") or name == "microroute":
            base = medians["microroute (request ids off)"]
        else:
            base = plain[framework]
        # Against microroute in the same configuration: plain with plain, OTel with OTel.
        same = "microroute + OTel" if name.endswith("+ OTel") else "microroute"
        versus = value / medians[same] if framework != "microroute" else None
        lines.append(
            f"{name:<30} {value:>8.2f} {value - base:>9.2f} {value / base:>7.2f}x "
            + (f"{versus:>13.2f}x" if versus is not None else f"{'':>14}")
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.observability", description=__doc__)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--smoke", action="store_true", help="3 rounds of tiny batches")
    args = parser.parse_args(argv)
    reps, batch = (3, 0.002) if args.smoke else (args.reps, 0.02)
    apps, traced = runners()
    check(apps, traced)
    medians = measure(apps, reps, batch)
    print(table(medians))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
