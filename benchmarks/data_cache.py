"""What a ``@cached`` HIT costs, in-process, beside ``functools.lru_cache`` and cachetools.

One function, ``price(sku, qty)`` returning a small dict, wrapped five ways and
called with the same arguments, so every call after the first is a hit:

- uncached: the function itself (what a hit saves depends on what it does; here
  it does almost nothing, so this is the floor, not a saving);
- ``functools.lru_cache``: a dict lookup in C, the value shared by every caller;
- cachetools' ``TTLCache`` (``@cachetools.cached``): the usual TTL cache in Python;
- ``@cached`` on the app's MemoryStore: a key made from the bound arguments
  (msgspec, hashed), the LRU lookup, and a msgspec decode of the value, so each
  caller gets its own copy;
- ``@cached`` on a RedisStore: the same, plus one pipelined round trip to a
  redis-server on 127.0.0.1 (started here in a temporary folder, stopped by PID,
  unless ``--redis-url`` names one).

The in-process contenders interleave in rotated rounds, batches of ~``batch``
seconds each; the Redis row is measured after them (the app made last serves
``@cached`` calls outside a request), beside ``lru_cache`` again. Each figure is
the median µs/call over the rounds.

    python -m benchmarks.data_cache [--rounds 100] [--batch 0.01] [--redis-url URL]
    python -m benchmarks.data_cache --smoke    # one round of 1 ms batches: it works
"""

from __future__ import annotations

import argparse
import functools
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import cachetools

from microroute import App, Router, cached
from microroute.cache import RedisStore

from .inprocess import _calibrate
from .processes import free_port

SMOKE = {"rounds": 1, "batch": 0.001}


def price(sku: str, qty: int) -> dict[str, Any]:
    return {"sku": sku, "qty": qty, "total": qty * 1.25}


def contenders() -> dict[str, Callable[[str, int], dict[str, Any]]]:
    return {
        "uncached": price,
        "functools.lru_cache": functools.lru_cache(maxsize=1024)(price),
        "cachetools TTLCache": cachetools.cached(cachetools.TTLCache(maxsize=1024, ttl=60))(price),
        "@cached (memory)": cached(revalidate=60)(price),
    }


def runner(fn: Callable[[str, int], Any]) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            fn("tea", 3)

    return run


def measure(
    fns: dict[str, Callable[[str, int], Any]], rounds: int, batch: float
) -> dict[str, float]:
    """Median µs/call of each, interleaved in rotated order."""
    expected = price("tea", 3)
    for label, fn in fns.items():
        if fn("tea", 3) != expected or fn("tea", 3) != expected:
            raise SystemExit(f"{label} does not return what price() returns")
    labels = list(fns)
    runners = [runner(fns[label]) for label in labels]
    sizes = [_calibrate(run, batch) for run in runners]
    samples: list[list[float]] = [[] for _ in labels]
    for rep in range(rounds):
        shift = rep % len(labels)
        for index in [*range(shift, len(labels)), *range(shift)]:
            n = sizes[index]
            start = time.perf_counter()
            runners[index](n)
            samples[index].append((time.perf_counter() - start) / n * 1e6)
    return {label: statistics.median(s) for label, s in zip(labels, samples, strict=True)}


@contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    """*url*, or a redis-server of our own on a free port, stopped by PID after."""
    if url is not None:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", folder],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            import redis

            client = redis.Redis(port=port, socket_timeout=1)
            deadline = time.monotonic() + 10
            while True:
                try:
                    client.ping()
                    break
                except redis.RedisError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("redis-server did not start") from None
                    time.sleep(0.02)
            client.close()
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.data_cache",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=100, help="interleaved rounds")
    parser.add_argument("--batch", type=float, default=0.01, help="seconds per batch")
    parser.add_argument("--redis-url", default=None, help="a redis-server to use (default: own)")
    parser.add_argument("--smoke", action="store_true", help="the tiniest run (see above)")
    args = parser.parse_args(argv)
    if args.smoke:
        parser.set_defaults(**SMOKE)
        args = parser.parse_args(argv)

    print(f"price('tea', 3), a HIT in-process, Python {sys.version.split()[0]},"
          f" median of {args.rounds} rounds")  # fmt: skip
    App(Router())  # @cached calls outside a request use the app made last: memory
    results = measure(contenders(), args.rounds, args.batch)
    lru = functools.lru_cache(maxsize=1024)(price)
    with redis_server(args.redis_url) as url:
        App(Router(), cache=RedisStore(url, timeout=1.0))  # now Redis
        on_redis = measure(
            {"lru_cache (again)": lru, "@cached (Redis)": cached(revalidate=60)(price)},
            args.rounds,
            args.batch,
        )
    results["@cached (Redis)"] = on_redis["@cached (Redis)"]
    base = results["functools.lru_cache"]
    print(f"  {'':22} {'µs/call':>9} {'calls/s':>11} {'vs lru_cache':>13}")
    for label, micros in results.items():
        print(f"  {label:22} {micros:9.3f} {1e6 / micros:11.0f} {micros / base:12.1f}x")
    print(f"(lru_cache measured again beside Redis: {on_redis['lru_cache (again)']:.3f} µs/call)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
