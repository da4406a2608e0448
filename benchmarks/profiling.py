"""Where one app's time goes per request: cProfile over many in-process calls.

``python -m benchmarks profile --app microroute --endpoint hello`` prints, for
each function, its own time per request (``tottime``) and the time under it
(``cumtime``). cProfile's own overhead inflates every call, so the table also
gives each function's share of the profiled total and that share applied to
the unprofiled µs/request measured just before, less the harness loop's own
cost (a do-nothing app): the "est. µs" column.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import time
from collections.abc import Sequence
from typing import Any

from .apps import AppSpec, Endpoint, load
from .calls import call, check, make_caller
from .stats import MICRO, render

__all__ = ["profile", "table"]


def _unprofiled(runner: Any, n: int) -> float:
    """The best of 30 short batches: on a shared machine, load only adds time."""
    batch = max(100, n // 30)
    best = float("inf")
    for _ in range(30):
        start = time.perf_counter()
        runner(batch)
        best = min(best, (time.perf_counter() - start) / batch * 1e6)
    return best


def _null_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Does nothing: what the harness loop alone costs."""
    start_response("200 OK", [])
    return [b""]


def _where(func: tuple[str, int, str]) -> str:
    filename, line, name = func
    if filename == "~":
        return name  # a builtin: "<method 'encode' of 'str' objects>"
    parts = filename.split(os.sep)
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    elif "microroute" in parts:
        parts = parts[parts.index("microroute") :]
    elif "benchmarks" in parts:
        parts = parts[parts.index("benchmarks") :]
    else:
        parts = parts[-2:]
    return f"{'/'.join(parts)}:{line} {name}"


def profile(spec: AppSpec, endpoint: Endpoint, n: int = 20_000) -> dict[str, Any]:
    """Profile *n* requests of *endpoint* on *spec*'s app."""
    app = load(spec)
    call(app, endpoint)
    problem = check(call(app, endpoint), endpoint)
    if problem is not None:
        raise RuntimeError(f"{spec.label} {endpoint.label}: {problem}")
    runner = make_caller(app, endpoint)
    runner(min(n, 2_000))
    floor = _unprofiled(make_caller(_null_app, endpoint), n)
    plain = _unprofiled(runner, n)
    profiler = cProfile.Profile()
    profiler.runcall(runner, n)
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    rows = []
    total = 0.0
    for func, (_cc, ncalls, tottime, cumtime, _callers) in entries.items():
        if func[0].endswith(os.path.join("benchmarks", "calls.py")):
            continue  # the harness loop itself
        total += tottime
        rows.append(
            {
                "function": _where(func),
                "calls_per_request": ncalls / n,
                "tottime_us": tottime / n * 1e6,
                "cumtime_us": cumtime / n * 1e6,
            }
        )
    rows.sort(key=lambda r: r["tottime_us"], reverse=True)
    total_us = total / n * 1e6
    for row in rows:
        row["share"] = row["tottime_us"] / total_us if total_us else 0.0
        row["estimated_us"] = row["share"] * (plain - floor)
    return {
        "app": spec.key,
        "endpoint": endpoint.key,
        "requests": n,
        "unprofiled_us": plain,
        "harness_floor_us": floor,
        "profiled_us": total_us,
        "functions": rows,
    }


def table(data: dict[str, Any], top: int = 25, markdown: bool = False) -> str:
    rows: Sequence[dict[str, Any]] = data["functions"][:top]
    header = [
        "function",
        "calls/req",
        f"own {MICRO} (profiled)",
        f"cum {MICRO} (profiled)",
        "share",
        f"est. {MICRO}",
    ]
    body = [
        [
            r["function"],
            f"{r['calls_per_request']:.2f}",
            f"{r['tottime_us']:.2f}",
            f"{r['cumtime_us']:.2f}",
            f"{r['share'] * 100:.1f}%",
            f"{r['estimated_us']:.2f}",
        ]
        for r in rows
    ]
    return render(header, body, markdown)
