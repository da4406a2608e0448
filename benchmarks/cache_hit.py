"""What a cache HIT costs: ``GET /hello`` cached, uncached, and as raw WSGI.

Issue 6's target: a HIT on a static GET costs at most 1.25x a hand-written
WSGI callable returning the same bytes, i.e. HIT >= 0.8x raw requests/second.

All are called in-process (no server, no socket), as a server would: a fresh
environ per request (a copy of one template), the body consumed and closed.
Middleware wraps the cache, so a pass-through middleware's cost is shown
beside: HIT and uncached, each with one. Each is first checked to answer the
same bytes (and the cached ones to say ``X-Microroute-Cache: HIT``), then
calibrated to ~``batch`` seconds a batch; rounds interleave them in a rotated
order so machine noise hits them alike; the figure kept is the median
µs/request over the rounds.

    python -m benchmarks.cache_hit [--rounds 200] [--batch 0.01]
    python -m benchmarks.cache_hit --smoke    # one round of 1 ms batches: it works

A smoke run checks the answers and prints the table, but its figures mean
nothing, so it does not hold them to the target.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from microroute import App

from .apps import ENDPOINTS, Endpoint
from .apps.microroute_decorators import api
from .apps.raw_wsgi import app as raw_app
from .calls import call, check, header, make_caller
from .inprocess import _calibrate

TARGET = 0.8  # HIT requests/s as a fraction of raw WSGI's
SMOKE = {"rounds": 1, "batch": 0.001}  # under --smoke; an option given still wins


def _endpoint() -> Endpoint:
    return next(e for e in ENDPOINTS if e.method == "GET" and e.path == "/hello")


def _passthrough(request: Any, call_next: Callable[[Any], Any]) -> Any:
    """The least a middleware can do: middleware wraps the cache, so it runs on a HIT."""
    return call_next(request)


def measure(rounds: int, batch: float) -> dict[str, float]:
    """Median µs/request of each contender, keyed by label."""
    endpoint = _endpoint()
    with_middleware = App(api)
    with_middleware.use(_passthrough)
    uncached_with_middleware = App(api, cache=False)
    uncached_with_middleware.use(_passthrough)
    apps: dict[str, Callable[..., Any]] = {
        "cache HIT": App(api),
        "uncached handler": App(api, cache=False),
        "raw WSGI": raw_app,
        "HIT + middleware": with_middleware,
        "uncached + mw": uncached_with_middleware,
    }
    call(apps["cache HIT"], endpoint)  # the MISS that stores the entry
    call(apps["HIT + middleware"], endpoint)
    for label, app in apps.items():
        reply = call(app, endpoint)
        problem = check(reply, endpoint)
        if problem is not None:
            raise SystemExit(f"{label} answers GET /hello wrongly: {problem}")
        if reply[2] != call(raw_app, endpoint)[2]:
            raise SystemExit(f"{label} does not send raw WSGI's bytes")
    for label in ("cache HIT", "HIT + middleware"):
        if header(call(apps[label], endpoint), "X-Microroute-Cache") != "HIT":
            raise SystemExit(f"{label}: the cached app does not answer GET /hello with a HIT")
    if header(call(apps["uncached handler"], endpoint), "X-Microroute-Cache") is not None:
        raise SystemExit("App(cache=False) still answers from a cache")

    labels = list(apps)
    runners = [make_caller(apps[label], endpoint) for label in labels]
    sizes = [_calibrate(runner, batch) for runner in runners]
    samples: list[list[float]] = [[] for _ in labels]
    for rep in range(rounds):
        shift = rep % len(labels)
        for index in [*range(shift, len(labels)), *range(shift)]:
            n = sizes[index]
            start = time.perf_counter()
            runners[index](n)
            samples[index].append((time.perf_counter() - start) / n * 1e6)
    return {label: statistics.median(s) for label, s in zip(labels, samples, strict=True)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cache_hit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=200, help="interleaved rounds")
    parser.add_argument("--batch", type=float, default=0.01, help="seconds per batch")
    parser.add_argument("--smoke", action="store_true", help="the tiniest run (see above)")
    args = parser.parse_args(argv)
    if args.smoke:  # again, with the smoke defaults
        parser.set_defaults(**SMOKE)
        args = parser.parse_args(argv)

    print(f"GET /hello in-process, Python {sys.version.split()[0]}, median of {args.rounds} rounds")
    results = measure(args.rounds, args.batch)
    raw = results["raw WSGI"]
    print(f"  {'':18} {'µs/req':>8} {'req/s':>10} {'vs raw':>7}")
    for label, micros in results.items():
        print(f"  {label:18} {micros:8.3f} {1e6 / micros:10.0f} {raw / micros:6.2f}x")
    hit_ratio = raw / results["cache HIT"]
    verdict = "meets" if hit_ratio >= TARGET else "MISSES"
    print(
        f"HIT/raw = {hit_ratio:.2f}x raw WSGI requests/s ({verdict} the >= {TARGET}x target);"
        f" HIT is {results['uncached handler'] / results['cache HIT']:.2f}x the uncached handler"
    )
    print(
        "with a pass-through middleware (it runs on every HIT): HIT is"
        f" {results['uncached + mw'] / results['HIT + middleware']:.2f}x the uncached handler"
    )
    return 0 if args.smoke or hit_ratio >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
