"""Prometheus metrics: ``App(metrics="/metrics")`` serves the exposition format.

::

    app = App(route, metrics="/metrics")      # pip install "microroute[metrics]"

=======================================================  =========  ==============================
``microroute_requests_total{method,route,status}``        counter    requests answered
``microroute_request_duration_seconds{method,route}``     histogram  arrival to the body's end
``microroute_requests_in_flight``                         gauge      arrived, body not yet ended
``microroute_streams_open``                               gauge      streamed bodies still sending
``microroute_cache_total{result}``                        counter    ``HIT``, ``MISS``, ``STALE``
``microroute_after_pending``                              gauge      requests whose ``after()``
                                                                     work has not all run yet
=======================================================  =========  ==============================

``route`` is the matched route's template (``/api/posts/[id]``), never the raw
path, and ``unmatched`` when no route matched, so a scan of random URLs adds
no series; a method outside the standard ones is ``_OTHER``. A request counts
when its body ends (its last byte, an error, or its client leaving).

The endpoint is a route like any other (it is in the route table), but never
cached and not behind middleware: an auth middleware does not lock the
scraper out. Beside microroute's own metrics it serves prometheus-client's
default registry (the process's and Python's metrics, and any you made).

**Several worker processes** (``gunicorn -w 4``): set ``PROMETHEUS_MULTIPROC_DIR``
to an empty folder before the server starts, and each scrape, whichever
worker answers it, adds up every worker's values (prometheus-client's
multiprocess mode); add :func:`child_exit` to gunicorn's config so a dead
worker's gauges go with it::

    # gunicorn.conf.py
    from microroute.metrics import child_exit

Everything is observed through :mod:`microroute.lifecycle`; an app without
``metrics=`` pays nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from .context import headers
from .errors import StartupError
from .lifecycle import Exchange, Observer
from .responses import Response
from .routing import Router

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client import values as _values
    from prometheus_client.exposition import choose_encoder
    from prometheus_client.metrics_core import Metric
    from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
except ModuleNotFoundError as missing:
    raise StartupError(
        "App(metrics=...) serves Prometheus metrics with prometheus-client, which is not"
        ' installed: pip install "microroute[metrics]"'
    ) from missing

__all__ = ["MULTIPROC_ENV", "Metrics", "child_exit"]

#: The folder prometheus-client's multiprocess mode keeps every worker's values in.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Methods labelled as they are; any other is ``_OTHER`` (a bounded label).
KNOWN_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY")
)
CACHE_RESULTS = frozenset(("HIT", "MISS", "STALE"))
_CACHE_HEADER = "x-microroute-cache"


class Families:
    """The six metrics, registered in *registry* (None: nowhere, multiprocess mode)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.requests = Counter(
            "microroute_requests_total",
            "HTTP requests answered, by method, route template and status.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.duration = Histogram(
            "microroute_request_duration_seconds",
            "Time from a request's arrival to its body's end (a stream's last chunk).",
            ("method", "route"),
            registry=registry,
        )
        self.in_flight = Gauge(
            "microroute_requests_in_flight",
            "Requests arrived whose body has not ended.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.streams = Gauge(
            "microroute_streams_open",
            "Streamed responses still sending.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.cache = Counter(
            "microroute_cache_total",
            "Static routes' cache answers: HIT, MISS or STALE.",
            ("result",),
            registry=registry,
        )
        self.after = Gauge(
            "microroute_after_pending",
            "Requests whose after() work was handed on and has not all run.",
            registry=registry,
            multiprocess_mode="livesum",
        )


class _DefaultRegistry:
    """prometheus-client's default registry, served beside the app's own metrics."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()

    def describe(self) -> list[Metric]:
        return []  # claims no names: the app's own never clash with it


# In multiprocess mode every value lives in a file named by metric and pid:
# one set of metrics per process, whatever the number of apps.
_shared: Families | None = None


class Metrics(Observer):
    """The observer behind ``App(metrics=path)``, and the route serving the scrape."""

    def __init__(self, path: str) -> None:
        if not path.startswith("/"):
            raise StartupError(f'App(metrics={path!r}): the path must start with "/"')
        self.path = path
        self.multiprocess = _multiprocess_folder() is not None
        if self.multiprocess:
            global _shared
            if _shared is None:
                _shared = Families(None)
            self.families = _shared
            self.registry: CollectorRegistry | None = None
        else:
            self.registry = CollectorRegistry()
            self.families = Families(self.registry)
            self.registry.register(_DefaultRegistry())
        # Children per label values, so a request takes no lock to find them.
        # Bounded: methods, route templates and status codes are.
        self._counted: dict[tuple[str, str, str], Any] = {}
        self._timed: dict[tuple[str, str], Any] = {}
        self._cached: dict[str, Any] = {}

    def router(self) -> Router:
        """The scrape route: GET *path*, never cached."""
        router = Router()
        router.add(self.path, self.scrape, methods=["GET"], dynamic="force-dynamic")
        return router

    def scrape(self) -> Response:
        """Prometheus metrics (the text format, or OpenMetrics if the scraper asks)."""
        body, content_type = self.exposition(headers().get("Accept", ""))
        response = Response(body, content_type=content_type)
        response.headers["Cache-Control"] = "no-store"
        return response

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The metrics in the format *accept* asks for, and its content type."""
        encode, content_type = choose_encoder(accept)
        if self.registry is not None:
            return encode(self.registry), content_type
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # every worker's files
        return encode(registry), content_type

    # -- the lifecycle ------------------------------------------------------------

    def request_started(self, exchange: Exchange) -> None:
        self.families.in_flight.inc()

    def response_started(self, exchange: Exchange, headers: list[tuple[str, str]]) -> None:
        if exchange.streaming:
            self.families.streams.inc()
        if exchange.method in ("GET", "HEAD") and exchange.route is not None:
            for name, value in reversed(headers):
                if name.lower() == _CACHE_HEADER:
                    if value in CACHE_RESULTS:
                        counter = self._cached.get(value)
                        if counter is None:
                            counter = self._cached[value] = self.families.cache.labels(value)
                        counter.inc()
                    break

    def response_ended(self, exchange: Exchange) -> None:
        families = self.families
        families.in_flight.dec()
        status = exchange.status
        if status is None:  # the client left before the response began: nothing answered
            return
        if exchange.streaming:
            families.streams.dec()
        method = exchange.method if exchange.method in KNOWN_METHODS else "_OTHER"
        route = exchange.route or "unmatched"
        key = (method, route, status[:3])
        counter = self._counted.get(key)
        if counter is None:
            counter = self._counted[key] = families.requests.labels(*key)
        counter.inc()
        timer = self._timed.get(key[:2])
        if timer is None:
            timer = self._timed[(method, route)] = families.duration.labels(method, route)
        timer.observe(exchange.duration_ms / 1000.0)

    def after_scheduled(self, exchange: Exchange) -> None:
        self.families.after.inc()

    def after_done(self, exchange: Exchange) -> None:
        self.families.after.dec()


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn's ``child_exit`` hook: a dead worker's live gauges leave the sum.

    Put ``from microroute.metrics import child_exit`` in ``gunicorn.conf.py``
    when ``PROMETHEUS_MULTIPROC_DIR`` is set.
    """
    if _multiprocess_folder() is not None:
        mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def _multiprocess_folder() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR``, checked: a folder, set before prometheus-client's import."""
    folder = os.environ.get(MULTIPROC_ENV) or os.environ.get(MULTIPROC_ENV.lower())
    if folder is None:
        return None
    if not os.path.isdir(folder):
        raise StartupError(f"{MULTIPROC_ENV}={folder!r} is not a folder: create it (empty)")
    if _values.ValueClass is _values.MutexValue:
        raise StartupError(
            f"{MULTIPROC_ENV} was set after prometheus_client was imported, so this process"
            " keeps its metrics in memory; set it in the environment the server starts with"
        )
    return folder
