"""Scaling: what a big route table costs per request, at start-up and in memory.

* **Match cost.** Apps with 10 to 10,000 routes, a third each static
  (``/api/s7/items``), ``[id]`` (``/api/p8/[id]``) and catch-all
  (``/api/c9/[...slug]``), registered with ``Router.add``. Measured through the
  whole WSGI call, in µs per matched request: on the last-registered route of
  each kind, and on random routes (64 of them, in turn). The sizes take turns
  within each round; the figure is the median round.
* **Discovery.** ``App(app_dir=...)`` over 10, 100 and 1,000 generated
  ``route.py`` files (the same mix, as folders), in a fresh temporary folder
  each time: the first scan ("cold") and a second one of the same folder.
* **Memory.** ``tracemalloc``: bytes allocated by building ``Router`` + ``App``
  for 1,000 and 10,000 routes, per route (handler functions excluded).

``--smoke`` runs the same steps at :data:`SMOKE` sizes (a few seconds), to
prove they work; its figures mean nothing.
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from microroute import App, Router

from .apps.microroute_decorators import CACHE_OFF
from .calls import make_environ
from .stats import MICRO, TIMES, render, summary

__all__ = ["FULL", "SMOKE", "Sizes", "run", "tables"]

KINDS = ("static", "param", "catchall")


class Sizes(NamedTuple):
    """How many routes each step builds, and how often discovery is repeated."""

    match: tuple[int, ...]
    discovery: tuple[int, ...]
    memory: tuple[int, ...]
    discovery_reps: int


FULL = Sizes((10, 100, 1_000, 10_000), (10, 100, 1_000), (1_000, 10_000), 3)
SMOKE = Sizes((10, 100), (10,), (100,), 1)


def _static() -> dict[str, bool]:
    return {"ok": True}


def _param(id: str) -> dict[str, str]:
    return {"id": id}


def _catchall(slug: list[str]) -> dict[str, int]:
    return {"depth": len(slug)}


_HANDLERS = {"static": _static, "param": _param, "catchall": _catchall}


def _route(i: int) -> tuple[str, str, str]:
    """(kind, route path, a request path it matches) for route number *i*."""
    kind = KINDS[i % 3]
    if kind == "static":
        return kind, f"/api/s{i}/items", f"/api/s{i}/items"
    if kind == "param":
        return kind, f"/api/p{i}/[id]", f"/api/p{i}/42"
    return kind, f"/api/c{i}/[...slug]", f"/api/c{i}/a/b/c"


def build_app(n: int) -> App:
    router = Router()
    for i in range(n):
        kind, path, _ = _route(i)
        router.add(path, _HANDLERS[kind], methods=["GET"])
    return App(router, **CACHE_OFF)


def _targets(n: int, rng: random.Random) -> dict[str, list[str]]:
    last = {kind: max(i for i in range(n) if KINDS[i % 3] == kind) for kind in KINDS}
    targets = {f"last {kind}": [_route(i)[2]] for kind, i in last.items()}
    targets["random"] = [_route(rng.randrange(n))[2] for _ in range(64)]
    return targets


def _runner(app: App, paths: Sequence[str]) -> Callable[[int], None]:
    templates = [make_environ("GET", path) for path in paths]
    count = len(templates)

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        if not status.startswith("200"):
            raise AssertionError(f"{status} for {paths}")

    def run(n: int) -> None:
        for i in range(n):
            result = app(templates[i % count].copy(), start_response)
            for _chunk in result:
                pass
            close = getattr(result, "close", None)
            if close is not None:
                close()

    return run


def match_cost(
    reps: int, batch: int, log: Callable[[str], None], sizes: Sequence[int] = FULL.match
) -> dict[str, Any]:
    rng = random.Random(7)
    cells: list[tuple[int, str, Callable[[int], None]]] = []
    build: dict[str, float] = {}
    for n in sizes:
        start = time.perf_counter()
        app = build_app(n)
        build[str(n)] = time.perf_counter() - start
        for name, paths in _targets(n, rng).items():
            runner = _runner(app, paths)
            runner(batch)  # warm up, and prove every path answers 200
            cells.append((n, name, runner))
    samples: list[list[float]] = [[] for _ in cells]
    log(f"  match cost: {len(cells)} cells x {reps} rounds of {batch} requests")
    for rep in range(reps):
        shift = rep % len(cells)
        for index in [*range(shift, len(cells)), *range(shift)]:
            start = time.perf_counter()
            cells[index][2](batch)
            samples[index].append((time.perf_counter() - start) / batch * 1e6)
    results: dict[str, dict[str, Any]] = {}
    for (n, name, _), cell in zip(cells, samples, strict=True):
        results.setdefault(name, {})[str(n)] = summary(cell)
    for by_size in results.values():
        smallest = by_size[str(sizes[0])]["median"]
        for entry in by_size.values():
            entry["vs_smallest"] = entry["median"] / smallest
    return {"results": results, "build_seconds": build, "batch": batch, "reps": reps}


def _write_tree(root: Path, n: int) -> Path:
    app_dir = root / "app"
    for i in range(n):
        kind, path, _ = _route(i)
        folder = app_dir / path.removeprefix("/")
        folder.mkdir(parents=True)
        args = {"static": "", "param": "id: str", "catchall": "slug: list[str]"}[kind]
        value = {"static": "True", "param": "id", "catchall": "len(slug)"}[kind]
        (folder / "route.py").write_text(f'def GET({args}):\n    return {{"v": {value}}}\n')
    return app_dir


def _forget(root: Path) -> None:
    """Undo discovery's side effects: its modules and its ``sys.path`` entry."""
    prefix = str(root)
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(prefix):
            del sys.modules[name]
    sys.path[:] = [p for p in sys.path if not p.startswith(prefix)]


def discovery(
    reps: int, log: Callable[[str], None], sizes: Sequence[int] = FULL.discovery
) -> dict[str, Any]:
    log(f"  discovery: {', '.join(map(str, sizes))} route files x {reps}")
    results: dict[str, dict[str, Any]] = {}
    for n in sizes:
        cold: list[float] = []
        again: list[float] = []
        for _ in range(reps):
            with tempfile.TemporaryDirectory(prefix="microroute-discovery-") as tmp:
                root = Path(tmp).resolve()
                app_dir = _write_tree(root, n)
                try:
                    for times in (cold, again):
                        start = time.perf_counter()
                        app = App(app_dir=app_dir, **CACHE_OFF)
                        times.append(time.perf_counter() - start)
                        if len(app.routes) != n:
                            raise AssertionError(f"{len(app.routes)} routes from {n} files")
                finally:
                    _forget(root)
        results[str(n)] = {
            "cold_seconds": statistics.median(cold),
            "again_seconds": statistics.median(again),
            "cold_runs": cold,
        }
    # With PYTHONDONTWRITEBYTECODE (or -B) every scan compiles every file.
    return {"results": results, "reps": reps, "writes_bytecode": not sys.dont_write_bytecode}


def memory(log: Callable[[str], None], sizes: Sequence[int] = FULL.memory) -> dict[str, Any]:
    log(f"  memory: {', '.join(map(str, sizes))} routes under tracemalloc")
    results: dict[str, Any] = {}
    for n in sizes:
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            app = build_app(n)
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        del app
        results[str(n)] = {"bytes": after - before, "bytes_per_route": (after - before) / n}
    return {"results": results}


def run(
    reps: int = 9,
    batch: int = 2_000,
    log: Callable[[str], None] = print,
    sizes: Sizes = FULL,
) -> dict[str, Any]:
    return {
        "match": match_cost(reps, batch, log, sizes.match),
        "discovery": discovery(sizes.discovery_reps, log, sizes.discovery),
        "memory": memory(log, sizes.memory),
    }


def tables(data: dict[str, Any], markdown: bool = False) -> list[tuple[str, str]]:
    """(title, table) pairs: match cost, discovery, memory."""
    out: list[tuple[str, str]] = []
    match = data["match"]["results"]
    sizes = list(next(iter(match.values())))  # as measured: a smoke run measures fewer
    header = ["request", *[f"{int(n):,} routes" for n in sizes], f"{sizes[-1]}/{sizes[0]}"]
    rows = [
        [
            name,
            *[f"{by_size[n]['median']:.2f}" for n in sizes],
            f"{by_size[sizes[-1]]['vs_smallest']:.2f}{TIMES}",
        ]
        for name, by_size in match.items()
    ]
    build = data["match"]["build_seconds"]
    rows.append(["(App build, ms)", *[f"{build[n] * 1000:.1f}" for n in sizes], ""])
    out.append((f"Match cost, {MICRO} per matched request", render(header, rows, markdown)))

    disc = data["discovery"]["results"]
    header = ["route.py files", "first scan (s)", "second scan (s)", "ms per file (first)"]
    rows = [
        [
            f"{int(n):,}",
            f"{entry['cold_seconds']:.3f}",
            f"{entry['again_seconds']:.3f}",
            f"{entry['cold_seconds'] * 1000 / int(n):.2f}",
        ]
        for n, entry in disc.items()
    ]
    out.append(("Discovery, App(app_dir=...)", render(header, rows, markdown)))

    mem = data["memory"]["results"]
    header = ["routes", "bytes allocated", "bytes per route"]
    rows = [
        [f"{int(n):,}", f"{entry['bytes']:,}", f"{entry['bytes_per_route']:,.0f}"]
        for n, entry in mem.items()
    ]
    out.append(("Memory, Router + App (tracemalloc)", render(header, rows, markdown)))
    return out
