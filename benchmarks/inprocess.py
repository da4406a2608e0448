"""In-process: each app called as a WSGI callable, no server, no socket.

This isolates the framework's own per-request cost. For every app and
endpoint the harness first checks the answer, then calibrates a batch size
(about ``batch_seconds`` of work), then runs ``reps`` rounds; within a round
the apps take turns, in a rotated order, so a noisy neighbour slows them all
alike. The figure kept is the median of the rounds, in µs per request,
harness loop included (the raw WSGI row shows that floor).

Ratios are speed ratios: ``vs Falcon 1.20x`` means 1.2 times Falcon's
requests per second (Falcon's µs divided by this app's µs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .apps import APPS_BY_KEY, AppSpec, Endpoint, load
from .calls import call, check, header, make_caller
from .stats import MICRO, ratio, render, summary

__all__ = ["REFERENCES", "run", "table"]

#: The apps every other is compared with, in table order.
REFERENCES = ("raw", "falcon", "flask")


def _calibrate(runner: Callable[[int], None], batch_seconds: float) -> int:
    """How many requests take about *batch_seconds* (and warm the app up)."""
    n = 10
    while True:
        start = time.perf_counter()
        runner(n)
        elapsed = time.perf_counter() - start
        if elapsed >= 0.02:
            return max(10, int(n * batch_seconds / elapsed))
        n *= 4


def run(
    apps: Sequence[AppSpec],
    endpoints: Sequence[Endpoint],
    reps: int = 100,
    batch_seconds: float = 0.01,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure every app on every endpoint; returns the JSON-ready results."""
    errors: dict[str, str] = {}
    cache: dict[str, dict[str, str | None]] = {}
    cells: list[tuple[AppSpec, Endpoint, Callable[[int], None]]] = []
    for spec in apps:
        try:
            app = load(spec)
        except Exception as exc:  # a peer not installed, a broken app
            errors[spec.key] = f"cannot load {spec.target}: {type(exc).__name__}: {exc}"
            log(f"  skipped {spec.label}: {errors[spec.key]}")
            continue
        for endpoint in endpoints:
            call(app, endpoint)  # a first call: a cache MISS, lazy set-up
            reply = call(app, endpoint)
            problem = check(reply, endpoint)
            if problem is not None:
                errors[f"{spec.key} {endpoint.key}"] = problem
                log(f"  skipped {spec.label} {endpoint.label}: {problem}")
                continue
            cache.setdefault(spec.key, {})[endpoint.key] = header(reply, "X-Microroute-Cache")
            cells.append((spec, endpoint, make_caller(app, endpoint)))

    sizes = [_calibrate(runner, batch_seconds) for _, _, runner in cells]
    samples: list[list[float]] = [[] for _ in cells]
    log(f"  {len(cells)} app/endpoint pairs x {reps} rounds of ~{batch_seconds * 1000:.0f} ms")
    for rep in range(reps):
        shift = rep % len(cells)
        for index in [*range(shift, len(cells)), *range(shift)]:
            runner, n = cells[index][2], sizes[index]
            start = time.perf_counter()
            runner(n)
            samples[index].append((time.perf_counter() - start) / n * 1e6)

    results: dict[str, dict[str, Any]] = {}
    for (spec, endpoint, _), cell_samples, n in zip(cells, samples, sizes, strict=True):
        entry = {**summary(cell_samples), "batch": n, "cache": cache[spec.key][endpoint.key]}
        results.setdefault(endpoint.key, {})[spec.key] = entry
    for by_app in results.values():
        for entry in by_app.values():
            entry["speed_vs"] = {
                ref: by_app[ref]["median"] / entry["median"] if ref in by_app else None
                for ref in REFERENCES
            }
    return {
        "settings": {"reps": reps, "batch_seconds": batch_seconds},
        "endpoints": {e.key: e.label for e in endpoints},
        "apps": {s.key: s.label for s in apps},
        "results": results,
        "errors": errors,
    }


def table(data: dict[str, Any], endpoint: str, markdown: bool = False) -> str:
    """One endpoint's results: µs per request, spread, speed ratios."""
    by_app: dict[str, Any] = data["results"].get(endpoint, {})
    labels = {**{k: s.label for k, s in APPS_BY_KEY.items()}, **data.get("apps", {})}
    header = ["app", f"{MICRO}/req (median)", "p25-p75", "vs raw", "vs Falcon", "vs Flask"]
    rows = []
    for key, entry in by_app.items():
        label = labels.get(key, key)
        if entry.get("cache"):
            label += f" [{entry['cache']}]"
        rows.append(
            [
                label,
                f"{entry['median']:.2f}",
                f"{entry['p25']:.2f}-{entry['p75']:.2f}",
                *[ratio(entry["speed_vs"].get(ref)) for ref in REFERENCES],
            ]
        )
    return render(header, rows, markdown)
