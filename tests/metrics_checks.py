"""What a ``/metrics`` scrape must show, checked the same way in-process and on every server.

Each check takes a ``requests.Session``-like client and the base URL of a
*fresh* ``tests/e2e/apps/observed_app.py`` (counts start at zero). Every scrape
is checked by Prometheus's own ``promtool check metrics`` (Debian's
``prometheus`` package): a missing promtool fails the test, it never skips.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

TIMEOUT = 10
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def promtool_accepts(text: str) -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool not found: apt-get install prometheus (.ci/run does)"
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def scrape(client: Any, base: str) -> Samples:
    response = client.get(f"{base}/metrics", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "X-Microroute-Cache" not in response.headers  # never cached
    promtool_accepts(response.text)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def check_counts_of_a_known_sequence(client: Any, base: str, workers: int = 1) -> None:
    """Known requests, then what they added; with *workers*, until each worker served some."""
    before = scrape(client, base)
    pids = set()
    for n in (1, 1, 1, 2, 2):
        pids.add(client.get(f"{base}/items/{n}", timeout=TIMEOUT).json()["pid"])
    items = 5
    while len(pids) < workers and items < 500:  # the kernel spreads connections: go on
        pids.add(client.get(f"{base}/items/{items}", timeout=TIMEOUT).json()["pid"])
        items += 1
    assert len(pids) == workers, f"{items} requests, served by {pids}"
    page = uuid.uuid4().hex[:8]  # not built yet: a MISS, then a HIT
    caches = [
        client.get(f"{base}/pages/{page}{suffix}", timeout=TIMEOUT).headers["X-Microroute-Cache"]
        for suffix in ("a", "a", "b")
    ]
    assert caches == ["MISS", "HIT", "MISS"] or workers > 1  # each worker has its own cache
    assert client.get(f"{base}/nowhere/7", timeout=TIMEOUT).status_code == 404
    assert client.post(f"{base}/items/1", timeout=TIMEOUT).status_code == 405
    assert client.request("PURGE", f"{base}/items/1", timeout=TIMEOUT).status_code == 405
    assert client.get(f"{base}/stream", timeout=TIMEOUT).text == "first\nsecond\n"
    assert client.get(f"{base}/boom", timeout=TIMEOUT).status_code == 500

    total, duration = "microroute_requests_total", "microroute_request_duration_seconds"
    expected = {
        (total, ("GET", "/items/[id]", "200")): items,
        (total, ("GET", "/pages/[n]", "200")): 3,
        (total, ("GET", "unmatched", "404")): 1,
        (total, ("POST", "/items/[id]", "405")): 1,
        (total, ("_OTHER", "/items/[id]", "405")): 1,  # a made-up method adds no series
        (total, ("GET", "/stream", "200")): 1,
        (total, ("GET", "/boom", "500")): 1,
        (f"{duration}_count", ("GET", "/items/[id]")): items,
        (f"{duration}_count", ("GET", "/stream")): 1,
    }

    def added(samples: Samples, name: str, labels: tuple[str, ...]) -> float:
        keys = ("method", "route", "status")[: len(labels)]
        named = dict(zip(keys, labels, strict=True))
        return value(samples, name, **named) - value(before, name, **named)

    # A worker counts a request as its body closes, just after the client has
    # it: another worker's scrape may come first, so look again for a moment.
    deadline = time.monotonic() + 3
    for scrapes in range(2):  # either worker may answer either scrape: the same totals
        while True:
            samples = scrape(client, base)
            got = {key: added(samples, *key) for key in expected}
            if got == expected or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert got == expected
        # The stream's time runs to its last chunk, 0.2 s after its first.
        assert added(samples, f"{duration}_sum", ("GET", "/stream")) >= 0.2
        assert value(samples, f"{duration}_bucket", method="GET", route="/stream", le="0.1") == 0
        hits = value(samples, "microroute_cache_total", result="HIT") - value(
            before, "microroute_cache_total", result="HIT"
        )
        misses = value(samples, "microroute_cache_total", result="MISS") - value(
            before, "microroute_cache_total", result="MISS"
        )
        assert (hits, misses) == (1, 2) or (workers > 1 and hits + misses == 3)
        assert value(samples, total, method="GET", route="/metrics", status="200") > scrapes
        assert value(samples, "microroute_requests_in_flight") == 1  # the scrape itself
        assert value(samples, "microroute_streams_open") == 0
        assert value(samples, "microroute_after_pending") == 0
    # The raw path never becomes a label.
    routes = {dict(labels).get("route") for _, labels in samples} - {None}
    assert routes <= {"/items/[id]", "/pages/[n]", "/stream", "/boom", "/metrics", "unmatched",
                      "/spans/[trace_id]", "/endless", "/slow-jobs", "/jobs"}, routes  # fmt: skip


def settled(client: Any, base: str, name: str) -> Samples:
    """A scrape once gauge *name* is back to 0 (a stream's close, after() work: soon after)."""
    deadline = time.monotonic() + 5
    while True:
        samples = scrape(client, base)
        if value(samples, name) == 0:
            return samples
        assert time.monotonic() < deadline, f"{name} stays at {value(samples, name)}"
        time.sleep(0.05)


def check_open_streams(client: Any, base: str) -> None:
    with client.get(f"{base}/endless", stream=True, timeout=TIMEOUT) as response:
        lines = response.iter_lines()  # kept: a dropped iterator closes the connection
        assert next(lines) == b"first"
        samples = scrape(client, base)
        assert value(samples, "microroute_streams_open") == 1
        assert value(samples, "microroute_requests_in_flight") == 2
    samples = settled(client, base, "microroute_streams_open")
    assert value(samples, "microroute_requests_in_flight") == 1


def check_pending_after_work(client: Any, base: str) -> None:
    """A server runs after() work in its pool: 0.5 s of it is pending, then done."""
    assert client.post(f"{base}/slow-jobs", timeout=TIMEOUT).status_code == 200
    assert value(scrape(client, base), "microroute_after_pending") == 1
    settled(client, base, "microroute_after_pending")
