"""OpenTelemetry traces: one SERVER span per request, named by its route's template.

::

    from microroute.telemetry import instrument

    instrument(app)                      # the global providers the SDK set up
    instrument(app, tracer_provider=tp, meter_provider=mp)

or, with no code at all, ``opentelemetry-instrument microroute run app.py``
(the ``microroute`` entry point of ``opentelemetry_instrumentor``: every
``App`` made in the process is instrumented). Needs the ``otel`` extra
(``pip install "microroute[otel]"``: ``opentelemetry-api`` only); you bring
the SDK and an exporter.

Each request gets one span, as the HTTP semantic conventions describe it:

* named ``GET /api/posts/[id]`` (the template, never the raw path, so every
  post shares one name), or just ``GET`` when no route matched;
* ``http.request.method``, ``http.route``, ``url.path``, ``url.scheme``,
  ``http.response.status_code``, ``server.address``, ``server.port``,
  ``client.address``, ``user_agent.original``, ``network.protocol.version``,
  and ``microroute.cache`` (``HIT``, ``MISS``, ``STALE``) for a static route;
* a child of the caller's span when the request carries a W3C ``traceparent``
  (whatever propagators the SDK configured);
* an exception a handler or middleware raised is recorded on it; a 5xx, or a
  body cut by an error, sets its status to ERROR;
* it ends when the body ends: a stream's last chunk, or the client leaving
  (recorded as a ``microroute.client_disconnected`` event);
* it is the current span in the handler, in every chunk of its stream, in its
  ``after()`` work and its ``on_disconnect`` callbacks, so spans made there are
  its children;
* a static build is an INTERNAL child span, ``build /api/posts/[id]``, of the
  request that caused it (a MISS, or the request that found the entry stale).

With a meter provider (given, or the global one the SDK set), the semantic
conventions' ``http.server.request.duration`` histogram, in seconds, to the
body's end.

Everything goes through :mod:`microroute.lifecycle`: the app knows nothing of
OpenTelemetry, and an app that is not instrumented pays nothing.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Collection
from typing import Any, Protocol

from .errors import StartupError
from .lifecycle import Exchange, Observer
from .version import __version__

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, propagate, trace
    from opentelemetry.propagators.textmap import Getter
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ModuleNotFoundError as missing:  # pragma: no cover - exercised without the extra
    raise StartupError(
        "microroute.telemetry needs opentelemetry-api, which is not installed:"
        ' pip install "microroute[otel]" (and an SDK and exporter of your choice)'
    ) from missing

__all__ = ["MicrorouteInstrumentor", "Telemetry", "instrument"]

#: The semantic conventions' version the attributes follow (HTTP is stable since 1.23).
SCHEMA_URL = "https://opentelemetry.io/schemas/1.26.0"
#: ``http.server.request.duration``'s buckets, as the conventions advise.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
#: Methods named as they are; any other becomes ``_OTHER`` (a bounded set of names).
KNOWN_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY")
)
#: The response header the cache marks its answers with.
CACHE_HEADER = "x-microroute-cache"
#: The event a span gets when its client left before the body's end.
DISCONNECTED = "microroute.client_disconnected"

# Where the span, and the cache's answer, live on an exchange (``exchange.extra``).
_SPAN = "otel.span"
_CACHE = "otel.cache"


class Observable(Protocol):
    """What :func:`instrument` needs of an app: :meth:`~microroute.App.observe`."""

    def observe(self, observer: Any) -> Any: ...


class _EnvironGetter(Getter[dict[str, Any]]):
    """Reads propagation headers (``traceparent``) from a WSGI environ."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}  # "traceparent" -> "HTTP_TRACEPARENT": a few

    def get(self, carrier: dict[str, Any], key: str) -> list[str] | None:
        name = self._names.get(key)
        if name is None:
            name = self._names[key] = "HTTP_" + key.upper().replace("-", "_")
        value = carrier.get(name)
        return None if value is None else [value]

    def keys(self, carrier: dict[str, Any]) -> list[str]:
        return [k[5:].lower().replace("_", "-") for k in carrier if k.startswith("HTTP_")]


_ENVIRON = _EnvironGetter()


class Telemetry(Observer):
    """The observer :func:`instrument` plugs in: spans, and the duration histogram."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        self.use(tracer_provider, meter_provider)

    def use(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        """Make spans with *tracer_provider* and record with *meter_provider* (None: global)."""
        self.tracer = trace.get_tracer(
            "microroute", __version__, tracer_provider, schema_url=SCHEMA_URL
        )
        meter = metrics.get_meter("microroute", __version__, meter_provider, SCHEMA_URL)
        self.duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )

    # -- a request ------------------------------------------------------------

    def request_started(self, exchange: Exchange) -> None:
        environ = exchange.environ
        method = exchange.method if exchange.method in KNOWN_METHODS else "_OTHER"
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": exchange.path,
            "url.scheme": environ.get("wsgi.url_scheme", "http"),
        }
        if method == "_OTHER":
            attributes["http.request.method_original"] = exchange.method
        address, port = _server(environ)
        attributes["server.address"] = address
        if port is not None:
            attributes["server.port"] = port
        client = environ.get("REMOTE_ADDR")
        if client:
            attributes["client.address"] = client
        agent = environ.get("HTTP_USER_AGENT")
        if agent:
            attributes["user_agent.original"] = agent
        protocol = environ.get("SERVER_PROTOCOL", "")
        if protocol.startswith("HTTP/"):
            attributes["network.protocol.version"] = protocol[5:]
        # The caller's trace (traceparent) over whatever is current here: a
        # server's own span, say, when no header names a parent.
        parent = propagate.extract(environ, otel_context.get_current(), _ENVIRON)
        span = self.tracer.start_span(
            method if method != "_OTHER" else "HTTP",
            parent,
            SpanKind.SERVER,
            attributes,
        )
        exchange.extra[_SPAN] = span
        # Current for the rest of the request: handler, stream chunks, after()
        # work, on_disconnect callbacks all run in this context or a copy of it.
        # Never detached: the context is the request's, dropped with it.
        otel_context.attach(trace.set_span_in_context(span, parent))

    def route_matched(self, exchange: Exchange) -> None:
        method = exchange.method if exchange.method in KNOWN_METHODS else "HTTP"
        exchange.extra[_SPAN].update_name(f"{method} {exchange.route}")

    def response_started(self, exchange: Exchange, headers: list[tuple[str, str]]) -> None:
        for name, value in reversed(headers):
            if name.lower() == CACHE_HEADER:
                exchange.extra[_CACHE] = value
                break
        raised = exchange.raised
        if raised is not None:
            exchange.extra[_SPAN].record_exception(raised)

    def response_ended(self, exchange: Exchange) -> None:
        span = exchange.extra[_SPAN]
        code = exchange.status_code
        # One call for what the response told: the SDK locks once per call.
        attributes: dict[str, Any] = {"http.response.body.size": exchange.bytes_sent}
        if code:
            attributes["http.response.status_code"] = code
        if exchange.route is not None:
            attributes["http.route"] = exchange.route
        cache = exchange.extra.get(_CACHE)
        if cache is not None:
            attributes["microroute.cache"] = cache
        error = exchange.error
        if error is not None:  # the body was cut after its headers went out
            span.record_exception(error)
            attributes["error.type"] = type(error).__qualname__
            span.set_status(Status(StatusCode.ERROR, f"the body failed: {error!r}"))
        elif code >= 500:
            raised = exchange.raised
            attributes["error.type"] = type(raised).__qualname__ if raised else str(code)
            span.set_status(Status(StatusCode.ERROR))
        if exchange.disconnected:
            span.add_event(DISCONNECTED, {"http.response.body.size": exchange.bytes_sent})
        span.set_attributes(attributes)
        span.end()
        self.duration.record(exchange.duration_ms / 1000.0, _metric_attributes(exchange))

    # -- a static build ---------------------------------------------------------

    def build_started(self, build: Exchange) -> None:
        cause = build.cause.extra.get(_SPAN) if build.cause is not None else None
        parent = trace.set_span_in_context(cause) if cause is not None else None
        span = self.tracer.start_span(
            f"build {build.route}",
            parent,
            SpanKind.INTERNAL,
            {"http.route": build.route or "", "url.path": build.path},
        )
        build.extra[_SPAN] = span
        otel_context.attach(trace.set_span_in_context(span, parent))

    def build_ended(self, build: Exchange) -> None:
        span = build.extra[_SPAN]
        if build.error is not None:
            span.record_exception(build.error)
            span.set_attribute("error.type", type(build.error).__qualname__)
            span.set_status(Status(StatusCode.ERROR))
        elif build.status is None:  # it called cookies() or headers(): the route is dynamic
            span.set_attribute("microroute.build.abandoned", True)
        else:
            span.set_attribute("http.response.status_code", build.status_code)
        span.end()


def _server(environ: dict[str, Any]) -> tuple[str, int | None]:
    """``server.address`` and ``server.port``: the Host header's, else the server's."""
    host = environ.get("HTTP_HOST")
    if not host:
        port = environ.get("SERVER_PORT", "")
        return environ.get("SERVER_NAME", ""), int(port) if port.isdigit() else None
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and (":" not in name or name.endswith("]")):
        return name, int(port)
    return host, None  # no port, or a bare IPv6 address


def _metric_attributes(exchange: Exchange) -> dict[str, Any]:
    """``http.server.request.duration``'s attributes: bounded, as the conventions ask."""
    method = exchange.method if exchange.method in KNOWN_METHODS else "_OTHER"
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.scheme": exchange.environ.get("wsgi.url_scheme", "http"),
    }
    if exchange.status_code:  # none when the client left before the answer began
        attributes["http.response.status_code"] = exchange.status_code
    if exchange.route is not None:
        attributes["http.route"] = exchange.route
    if exchange.status_code >= 500 or exchange.error is not None:
        failure = exchange.error or exchange.raised
        attributes["error.type"] = (
            type(failure).__qualname__ if failure is not None else str(exchange.status_code)
        )
    return attributes


_instrumented: weakref.WeakKeyDictionary[Any, Telemetry] = weakref.WeakKeyDictionary()


def instrument(
    app: Observable, tracer_provider: Any = None, meter_provider: Any = None
) -> Telemetry:
    """Trace every request of *app*; returns the observer.

    *tracer_provider* and *meter_provider* default to the global ones (those
    the SDK, or ``opentelemetry-instrument``, set up). An app is instrumented
    once: a second call only switches to the providers it names.
    """
    telemetry = _instrumented.get(app)
    if telemetry is not None:
        if tracer_provider is not None or meter_provider is not None:
            telemetry.use(tracer_provider, meter_provider)
        return telemetry
    telemetry = Telemetry(tracer_provider, meter_provider)
    app.observe(telemetry)
    _instrumented[app] = telemetry
    return telemetry


class MicrorouteInstrumentor:
    """What ``opentelemetry-instrument`` loads: every ``App`` made afterwards is instrumented.

    It has the shape of opentelemetry-instrumentation's ``BaseInstrumentor``
    (``instrument(**kwargs)``, ``uninstrument()``), without needing that
    package; ``opentelemetry-instrument`` finds it through the
    ``opentelemetry_instrumentor`` entry point named ``microroute``
    (``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=microroute`` turns it off).
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def instrument(self, **kwargs: Any) -> None:
        """Wrap ``App.__init__``: each new app gets :func:`instrument` with these
        ``tracer_provider=`` and ``meter_provider=`` (None: the global ones)."""
        from .app import App

        if getattr(App.__init__, "_microroute_original", None) is not None:
            return
        original = App.__init__
        tracer_provider = kwargs.get("tracer_provider")
        meter_provider = kwargs.get("meter_provider")

        @functools.wraps(original)
        def __init__(app: App, *args: Any, **kw: Any) -> None:
            original(app, *args, **kw)
            instrument(app, tracer_provider, meter_provider)

        __init__._microroute_original = original  # type: ignore[attr-defined]
        setattr(App, "__init__", __init__)  # noqa: B010 - mypy refuses assigning a method

    def uninstrument(self, **kwargs: Any) -> None:
        """Apps made from now on are not instrumented (those made before still are)."""
        from .app import App

        original = getattr(App.__init__, "_microroute_original", None)
        if original is not None:
            setattr(App, "__init__", original)  # noqa: B010
