"""The servers side by side, and microroute's peers: throughput, server CPU per request, p99.

::

    python -m benchmarks.servers [--rounds 5] [--seconds 3]

One interleaved run (:mod:`benchmarks.interleaved`: every server started up
front on a free 127.0.0.1 port, pinned to one core, ``wrk -t1`` on the other,
median requests/s and server CPU µs per request over the rounds, stopped by
PID) of these contenders, one worker process each:

* microroute's four gevent servers — gevent's pywsgi tuned as ``microroute
  run`` used to be (``benchmarks/pywsgi_server.py``), ``microroute run``
  (llhttp), ``gunicorn -k gevent`` and ``gunicorn -k microroute.gunicorn.Worker``
  — each serving raw WSGI, Falcon and microroute on ``/hello`` and ``POST
  /echo`` (issue 14's table and ratios);
* the peers (issue 25): granian (``granian --interface wsgi``, a Rust server
  running WSGI apps in its threads) serving raw WSGI, Falcon and microroute;
  uvicorn (httptools, uvloop) serving Starlette, FastAPI with ``async def``
  handlers and FastAPI with plain ``def`` handlers; and ``microroute run``'s
  raw WSGI and microroute rows for comparison — on ``/hello``, ``/users/42``,
  ``POST /echo`` and ``/io`` (a sync handler blocked 20 ms in ``time.sleep``,
  loaded with *io_connections*).

Then, on the same pinned servers, microroute's app on each gevent server,
``GET /hello``:

* p99 at a fixed rate: ``hey`` (Debian package ``hey``), 20 clients at 100
  requests/s each, 2,000 requests/s in all, for *latency_seconds*;
* p99 at 1,000 keep-alive connections: ``wrk -t1 -c1000``.

It prints markdown tables for BENCHMARKS.md: issue 14's with its ratios, and the
peers' requests/s and server CPU per request with their ratios to microroute
on ``microroute run``. It exits non-zero if an issue-14 target is missed. The
peers come from ``benchmarks/requirements-servers.txt``.

``--baseline DIR`` adds to the same interleaved run ``microroute run`` and the
worker once more, serving raw WSGI and microroute's app with the microroute of
*DIR* (another checkout, e.g. ``git worktree add ../base 952c49f``), labelled
with its commit (``microroute run @952c49f``), and prints each of their rows
over its baseline row: requests/s and server CPU per request. ``--only
"microroute run,microroute.gunicorn"`` keeps the contenders whose name (``raw
WSGI on microroute run``) contains one of the comma-separated strings; a target
whose servers were left out is not checked. So, before and after a change::

    python -m benchmarks.servers --baseline ../base --only "microroute run,microroute.gunicorn"

``--compiled`` builds this checkout with its server compiled (``MICROROUTE_COMPILE=1``,
README's "A compiled server"; mypy must be installed) in a folder of the run and
adds ``microroute run (mypyc)`` and the worker once more, serving raw WSGI and
microroute's app, to the run and to the peer table; issue 25's ratio (``microroute
run`` over the same app on granian, ``/hello`` and ``/users/42``, at least 0.7) is
printed for both builds.

``--smoke`` is the tiniest run (CI's, about 30 s): raw WSGI and microroute's app
on each server (no Falcon), the three ASGI apps, ``GET /hello`` only, one 1 s
round, no warm-up, 1 s latency runs. It proves every server starts, answers and
can be loaded; its figures mean nothing, so it enforces no target, but it exits
non-zero if anything could not be measured.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import interleaved, machine, over_http
from .apps import APPS_BY_KEY, ASGI_APPS, ENDPOINTS_BY_KEY, IO, Endpoint
from .interleaved import Contender, Pinning
from .over_http import REPO
from .stats import TIMES

PYWSGI = "pywsgi (tuned)"
RUN = "microroute run"
GUNICORN = "gunicorn -k gevent -w 1"
WORKER = "gunicorn -k microroute.gunicorn.Worker -w 1"
GEVENT_SERVERS = (PYWSGI, RUN, GUNICORN, WORKER)
GRANIAN = "granian --interface wsgi"
UVICORN = "uvicorn (httptools, uvloop)"
#: (server, baseline, endpoint, target): issue 14's ratios, microroute's app on both.
TARGETS = [
    (RUN, PYWSGI, "hello", 3.0),
    (RUN, PYWSGI, "echo", 2.0),
    (WORKER, GUNICORN, "hello", 3.0),
]
#: Issue 25: microroute run's requests/s over the same app's on granian, /hello and /users/42.
GRANIAN_TARGET = 0.7
#: Under ``--smoke``: the options (a command-line option still wins), apps and endpoints.
SMOKE = {"rounds": 1, "seconds": 1, "latency_seconds": 1, "warmup": 0}
SMOKE_APPS = ("raw", "microroute")
SMOKE_ENDPOINTS = ("hello",)
#: The peer table's endpoints, and its rows: (server, app key), in order. The
#: first row is the one every ratio is taken against.
PEER_ENDPOINTS = (*(ENDPOINTS_BY_KEY[k] for k in ("hello", "users", "echo")), IO)
#: ``--compiled``: microroute run and the worker once more, with the server compiled.
COMPILED = " (mypyc)"
RUN_COMPILED = RUN + COMPILED
PEER_ROWS = [
    (RUN, "microroute"),
    (RUN, "raw"),
    (RUN, "falcon"),
    (RUN_COMPILED, "microroute"),
    (RUN_COMPILED, "raw"),
    (GRANIAN, "microroute"),
    (GRANIAN, "falcon"),
    (GRANIAN, "raw"),
    *((UVICORN, spec.key) for spec in ASGI_APPS),
]
#: What ``--baseline`` runs again on the older checkout: these servers, these apps.
BASELINE_SERVERS = (RUN, WORKER)
BASELINE_APPS = ("raw", "microroute")
#: The rows ``--baseline`` compares: app key -> the baseline's app key. Request ids
#: and the access record (issue 22) are on by default since 952c49f, so the app
#: with them off (``microroute-bare``, run only then) is compared with its app too.
BASELINE_ROWS = {"raw": "raw", "microroute": "microroute", "microroute-bare": "microroute"}
_HEY_P99 = re.compile(r"99%+ in ([\d.]+) secs")
_HEY_SLOWEST = re.compile(r"Slowest:\s+([\d.]+) secs")
_HEY_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_HEY_CODES = re.compile(r"\[(\d{3})\]\s+(\d+) responses")


def _granian(target: str, port: int) -> list[str]:
    """One worker process; WSGI handlers in its threads (granian's defaults)."""
    return [
        sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", "1",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", target,
    ]  # fmt: skip


def _uvicorn(target: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "--http", "httptools", "--loop", "uvloop",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
        "--log-level", "warning", target,
    ]  # fmt: skip


SERVERS = {**over_http.SERVERS, GRANIAN: _granian, UVICORN: _uvicorn}


def contenders(smoke: bool) -> list[Contender]:
    """Every (server, app) of the run, each with the endpoints it is loaded on."""
    apps = SMOKE_APPS if smoke else ("raw", "falcon", "microroute")
    table14 = tuple(ENDPOINTS_BY_KEY[k] for k in (SMOKE_ENDPOINTS if smoke else ("hello", "echo")))
    peers = table14 if smoke else PEER_ENDPOINTS
    peer_rows = set(PEER_ROWS)
    found = []
    for server in (*GEVENT_SERVERS, GRANIAN):
        for key in apps:
            wanted = peers if (server, key) in peer_rows else table14
            found.append(Contender(server, APPS_BY_KEY[key], SERVERS[server], wanted))
    found += [Contender(UVICORN, spec, _uvicorn, peers) for spec in ASGI_APPS]
    return found


def _commit(tree: Path) -> str:
    """*tree*'s commit, short; its folder's name when it is not a git checkout."""
    done = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else tree.name


def baseline_home(tree: Path, folder: Path) -> Path:
    """A folder in *folder* whose ``microroute`` is *tree*'s and whose ``benchmarks`` is ours.

    The baseline servers run there: ``python -m`` and gunicorn put their working
    folder first on ``sys.path``, ahead of ``PYTHONPATH`` and of the editable
    install, so they import *tree*'s microroute, yet the same app modules as
    the rest of the run (an older checkout's apps may lack an endpoint, ``/io``).
    """
    package = tree.resolve() / "microroute"
    if not (package / "__init__.py").is_file():
        raise SystemExit(f"--baseline {tree}: no microroute package in it")
    home = folder / "baseline"
    home.mkdir()
    (home / "microroute").symlink_to(package, target_is_directory=True)
    (home / "benchmarks").symlink_to(REPO / "benchmarks", target_is_directory=True)
    done = subprocess.run(
        [sys.executable, "-c", "import microroute; print(microroute.__file__)"],
        cwd=home,
        env={**os.environ, "PYTHONPATH": str(home)},
        capture_output=True,
        text=True,
        check=False,
    )
    imported = Path(done.stdout.strip()).resolve()
    if done.returncode != 0 or not imported.is_relative_to(package):
        raise SystemExit(f"--baseline {tree}: its servers would import {imported}: {done.stderr}")
    return home


def baselines(found: Sequence[Contender], tree: Path, home: Path) -> list[Contender]:
    """What ``--baseline`` adds to *found*: ``microroute run`` and the worker again, on *tree*'s
    microroute, labelled with its commit, and microroute's app with ids and access log off.

    Each is loaded on the endpoints its counterpart (microroute's app) is.
    """
    tag = _commit(tree)
    again = [c for c in found if c.server in BASELINE_SERVERS and c.spec.key in BASELINE_APPS]
    bare = APPS_BY_KEY["microroute-bare"]
    return [
        *(replace(c, spec=bare) for c in again if c.spec.key == "microroute"),
        *(replace(c, server=f"{c.server} @{tag}", cwd=home, env={"PYTHONPATH": str(home)})
          for c in again),
    ]  # fmt: skip


def compiled_home(folder: Path) -> Path:
    """A folder in *folder* with this checkout's microroute compiled (``MICROROUTE_COMPILE=1``).

    The package, ``setup.py`` and its metadata are copied there and built in
    place with mypyc (README, "A compiled server"); ``benchmarks`` is ours, so
    the compiled servers serve the same app modules as the rest of the run.
    """
    if importlib.util.find_spec("mypyc") is None:
        needs = "pip install -r benchmarks/requirements-servers.txt"
        raise SystemExit(f"--compiled builds with mypyc: {needs}")
    home = folder / "compiled"
    shutil.copytree(REPO / "microroute", home / "microroute",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))  # fmt: skip
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, home / name)
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=home,
        env={**os.environ, "MICROROUTE_COMPILE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        # mypyc prints type errors on stdout, the C compiler on stderr
        said = done.stdout[-3000:] + done.stderr[-3000:]
        raise SystemExit(f"--compiled: the build failed:\n{said}")
    (home / "benchmarks").symlink_to(REPO / "benchmarks", target_is_directory=True)
    check = subprocess.run(
        [sys.executable, "-m", "microroute", "--version"],
        cwd=home,
        capture_output=True,
        text=True,
        check=False,
    )
    if "compiled" not in check.stdout:
        raise SystemExit(f"--compiled: the build does not say it is: {check.stdout}{check.stderr}")
    return home


def compiled(found: Sequence[Contender], home: Path) -> list[Contender]:
    """What ``--compiled`` adds to *found*: ``microroute run`` and the worker again, compiled.

    Raw WSGI and microroute's app, each on the endpoints its pure-Python row is.
    """
    again = [c for c in found if c.server in BASELINE_SERVERS and c.spec.key in BASELINE_APPS]
    return [
        replace(c, server=c.server + COMPILED, cwd=home, env={"PYTHONPATH": str(home)})
        for c in again
    ]


def only(found: Sequence[Contender], wanted: str | None) -> list[Contender]:
    """The contenders whose name contains one of *wanted*'s comma-separated strings."""
    if not wanted:
        return list(found)
    parts = [part.strip() for part in wanted.split(",") if part.strip()]
    return [c for c in found if any(part in c.name for part in parts)]


def _hey(port: int, seconds: int, prefix: list[str]) -> dict[str, float]:
    command = [*prefix, "hey", "-z", f"{seconds}s", "-c", "20", "-q", "100",
               f"http://127.0.0.1:{port}/hello"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    # Under 100 answers (a stalled server, a smoke run) hey prints no 99% line: the
    # slowest answer is then the p99.
    p99 = _HEY_P99.search(done.stdout) or _HEY_SLOWEST.search(done.stdout)
    rps = _HEY_RPS.search(done.stdout)
    if done.returncode != 0 or p99 is None or rps is None:
        raise RuntimeError(f"hey failed ({done.returncode}): {done.stderr or done.stdout}")
    codes = {code: int(n) for code, n in _HEY_CODES.findall(done.stdout)}
    errors = sum(n for code, n in codes.items() if code != "200")
    return {"p99_ms": float(p99.group(1)) * 1000, "rps": float(rps.group(1)), "errors": errors}


def _latency(
    ready: dict[tuple[str, str], over_http.Server],
    seconds: int,
    pinned: Pinning,
    log: Any,
    kinds: Sequence[str] = GEVENT_SERVERS,
) -> dict[str, dict[str, float]]:
    """Fixed-rate and 1,000-connection p99 for microroute's app on each gevent server (*kinds*).

    On the servers of the interleaved run, still pinned, after its rounds.
    """
    hello = ENDPOINTS_BY_KEY["hello"]
    prefix = pinned.wrk_prefix()
    found: dict[str, dict[str, float]] = {}
    for kind in kinds:
        server = ready.get((kind, "microroute"))
        if server is None:
            log(f"  skipped {kind}: it did not start")
            continue
        try:
            fixed = _hey(server.port, seconds, prefix)
            crowd = over_http._wrk(server.port, hello, seconds, 1000, [], prefix)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            log(f"  {kind}: {exc}")
            continue
        found[kind] = {
            "fixed_p99_ms": fixed["p99_ms"],
            "fixed_rps": fixed["rps"],
            "fixed_errors": fixed["errors"],
            "c1000_p99_ms": crowd.get("p99_ms", float("nan")),
            "c1000_rps": crowd["rps"],
            "c1000_errors": crowd["non_2xx"] + crowd["socket_errors"],
        }
        log(f"  {kind}: {found[kind]}")
    return found


def _path(endpoint: Endpoint) -> str:
    return endpoint.path if endpoint.method == "GET" else f"{endpoint.method} {endpoint.path}"


def peer_tables(data: dict[str, Any], endpoints: tuple[Endpoint, ...]) -> str:
    """The peers' requests/s and server CPU per request, each with its ratio to the first row."""
    results = data["results"]
    base_server, base_app = PEER_ROWS[0]
    labels = {spec.key: spec.label for spec in (*APPS_BY_KEY.values(), *ASGI_APPS)}

    def entry(server: str, app: str, endpoint: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = results.get(server, {}).get(endpoint, {}).get(app)
        return found

    def table(field: str, fmt: str, ratios: bool = True) -> list[str]:
        header = " | ".join(_path(e) for e in endpoints)
        lines = [f"| contender | {header} |", "|---|" + "---:|" * len(endpoints)]
        for server, app in PEER_ROWS:
            cells = []
            for endpoint in endpoints:
                mine = entry(server, app, endpoint.key)
                base = entry(base_server, base_app, endpoint.key)
                if mine is None:
                    cells.append("-")
                    continue
                value = mine[field]
                if not ratios:
                    cells.append(f"{value:{fmt}}")
                    continue
                ratio = value / base[field] if base and base[field] else float("nan")
                cells.append(f"{value:{fmt}} ({ratio:.2f}{TIMES})")
            if any(cell != "-" for cell in cells):
                lines.append(f"| {labels[app]} · {server} | " + " | ".join(cells) + " |")
        return lines

    return "\n".join(
        [
            f"Requests/s (median; in brackets, the ratio to {labels[base_app]} on {base_server}):",
            "",
            *table("rps", ",.0f"),
            "",
            "Server CPU per request, µs (median; lower is better; in brackets, the same ratio):",
            "",
            *table("cpu_us", ".1f"),
            "",
            "How much of its core the server used (its CPU time over the run's length): well"
            " below 100%, it waited, for requests (the load generator) or for its core (other"
            " processes), and that, not the server, set the requests/s above:",
            "",
            *table("busy", ".0%", ratios=False),
        ]
    )


def baseline_table(data: dict[str, Any], against: dict[str, str]) -> str:
    """Each server's rows over its baseline's (*against*: server -> baseline server).

    The app with ids and access log off is taken over the baseline's microroute app.
    """
    results = data["results"]
    tag = next(iter(against.values())).rpartition(" ")[2] if against else "baseline"
    lines = [
        f"| contender | request | req/s | {tag} | ratio | CPU µs/request | {tag} | ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for server, base in against.items():
        for key, base_key in BASELINE_ROWS.items():
            for endpoint in PEER_ENDPOINTS:
                mine = results.get(server, {}).get(endpoint.key, {}).get(key)
                theirs = results.get(base, {}).get(endpoint.key, {}).get(base_key)
                if not mine or not theirs:
                    continue
                rps, cpu = mine["rps"] / theirs["rps"], mine["cpu_us"] / theirs["cpu_us"]
                lines.append(
                    f"| {APPS_BY_KEY[key].label} · {server} | {_path(endpoint)}"
                    f" | {mine['rps']:,.0f} | {theirs['rps']:,.0f} | {rps:.3f}{TIMES}"
                    f" | {mine['cpu_us']:.1f} | {theirs['cpu_us']:.1f} | {cpu:.3f}{TIMES} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.servers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved wrk rounds")
    parser.add_argument("--seconds", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--io-connections", type=int, default=256, help="wrk connections on /io")
    parser.add_argument("--latency-seconds", type=int, default=5, help="seconds per p99 run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of wrk warm-up, once")
    parser.add_argument("--no-pin", action="store_true", help="leave servers and wrk unpinned")
    parser.add_argument("--smoke", action="store_true", help="the tiniest run (see above)")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="also run microroute run and the worker on DIR's microroute (an older checkout)",
    )
    parser.add_argument(
        "--only", metavar="A,B", help="only the contenders whose name contains A or B"
    )
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="also run microroute run and the worker with the server compiled (mypyc)",
    )
    args = parser.parse_args(argv)
    if args.smoke:  # again, with the smoke defaults
        parser.set_defaults(**SMOKE)
        args = parser.parse_args(argv)
    for tool in ("wrk", "hey"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: apt-get install {tool}")
    with tempfile.TemporaryDirectory(prefix="microroute-servers-") as tmp:
        return _main(args, Path(tmp))


def _main(args: argparse.Namespace, folder: Path) -> int:
    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    chosen = contenders(args.smoke)
    against: dict[str, str] = {}
    if args.baseline is not None:
        again = baselines(chosen, args.baseline, baseline_home(args.baseline, folder))
        against = {c.server.rpartition(" @")[0]: c.server for c in again if c.cwd}
        chosen += again
    if args.compiled:
        chosen += compiled(chosen, compiled_home(folder))
    chosen = only(chosen, args.only)
    if not chosen:
        raise SystemExit(f"--only {args.only!r}: no contender's name contains it")
    ran = {(c.server, c.spec.key) for c in chosen}
    # Latency is measured, and issue 14's table shows a row, for each gevent server
    # serving microroute's app in this run.
    built = [s + COMPILED for s in BASELINE_SERVERS] if args.compiled else []
    kinds = [s for s in (*GEVENT_SERVERS, *built, *against.values()) if (s, "microroute") in ran]
    pinned = interleaved.pinning(not args.no_pin)
    load_average = machine.describe()["load_average"]
    if args.smoke:
        log("a smoke run: the tiniest size; no figure below means anything")
    log(f"one interleaved run: wrk -t1 -c{args.connections} (-c{args.io_connections} on /io)")
    latency: dict[str, dict[str, float]] = {}

    def measure_latency(ready: dict[tuple[str, str], over_http.Server]) -> None:
        log("latency: microroute's app, GET /hello")
        latency.update(_latency(ready, args.latency_seconds, pinned, log, kinds))

    data = interleaved.run(
        chosen,
        rounds=args.rounds,
        seconds=args.seconds,
        warmup=args.warmup,
        connections=lambda e: args.io_connections if e.key == IO.key else args.connections,
        pinned=pinned,
        log=log,
        then=measure_latency,
    )
    rps = data["results"]

    def get(server: str, endpoint: str, app: str) -> float:
        value: float = rps.get(server, {}).get(endpoint, {}).get(app, {}).get("rps", 0.0)
        return value

    def cell(server: str, endpoint: str, app: str) -> str:
        measured = get(server, endpoint, app)
        return f"{measured:,.0f}" if measured else "-"

    command = f"python -m benchmarks.servers --rounds {args.rounds} --seconds {args.seconds}"
    if args.baseline is not None:
        command += f" --baseline {args.baseline}"
    if args.compiled:
        command += " --compiled"
    if args.only:
        command += f' --only "{args.only}"'
    print(f"\n`{command}` (median req/s of {args.rounds} rounds; one worker each;"
          f" {pinned.describe()}; load average at start"
          f" {', '.join(map(str, load_average))})\n")  # fmt: skip
    print(
        "| server | raw /hello | Falcon /hello | microroute /hello | raw /echo |"
        " Falcon /echo | microroute /echo | p99 at 2,000 req/s | p99 at 1,000 conns |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for server in kinds:
        cells = [cell(server, e, a) for e in ("hello", "echo")
                 for a in ("raw", "falcon", "microroute")]  # fmt: skip
        lat = latency.get(server, {})
        fixed = f"{lat['fixed_p99_ms']:.1f} ms" if lat else "-"
        crowd = f"{lat['c1000_p99_ms']:.1f} ms" if lat else "-"
        print(f"| {server} | " + " | ".join(cells) + f" | {fixed} | {crowd} |")
    print()
    missed = 0
    for server, baseline, endpoint, target in TARGETS:
        if (server, "microroute") not in ran or (baseline, "microroute") not in ran:
            continue  # left out by --only
        mine, theirs = get(server, endpoint, "microroute"), get(baseline, endpoint, "microroute")
        ratio = mine / theirs if theirs else float("nan")
        verdict = "meets" if ratio >= target else "MISSES"
        missed += ratio < target
        print(f"- {server} / {baseline}, microroute /{endpoint}: {ratio:.2f}x"
              f" ({verdict} >= {target}x)")  # fmt: skip
    if PYWSGI in latency and RUN in latency:
        for key, label in (("fixed_p99_ms", "2,000 req/s"), ("c1000_p99_ms", "1,000 conns")):
            ours, base = latency[RUN][key], latency[PYWSGI][key]
            verdict = "meets" if ours <= base else "MISSES"
            missed += ours > base
            print(f"- p99 at {label}: microroute run {ours:.1f} ms, pywsgi {base:.1f} ms"
                  f" ({verdict}: no worse)")  # fmt: skip
    endpoints = PEER_ENDPOINTS
    if args.smoke:
        endpoints = tuple(ENDPOINTS_BY_KEY[k] for k in SMOKE_ENDPOINTS)
    print(f"\nThe peers, in the same run (wrk -t1 -c{args.connections}, /io"
          f" -c{args.io_connections}; one worker process each):\n")  # fmt: skip
    print(peer_tables(data, endpoints))
    for server in (RUN, RUN_COMPILED):
        for endpoint in ("hello", "users"):
            mine, theirs = get(server, endpoint, "microroute"), get(GRANIAN, endpoint, "microroute")
            if mine and theirs:  # issue 25's target
                ratio = mine / theirs
                verdict = "meets" if ratio >= GRANIAN_TARGET else "MISSES"
                print(f"- {server} / {GRANIAN}, microroute /{endpoint}: {ratio:.2f}x"
                      f" ({verdict} >= {GRANIAN_TARGET}x)")  # fmt: skip
    if against:
        print(f"\nBefore and after, in the same run: each row over the same row on"
              f" --baseline {args.baseline} (a ratio over 1: more req/s, more CPU):\n")  # fmt: skip
        print(baseline_table(data, against))
    if args.smoke:
        unmeasured = dict(data["errors"])
        unmeasured.update({f"latency on {s}": "not measured" for s in kinds if s not in latency})
        for key, problem in unmeasured.items():
            log(f"smoke run failed: {key}: {problem}")
        return 1 if unmeasured else 0  # targets: not from figures this small
    for key, problem in data["errors"].items():
        log(f"not measured: {key}: {problem}")
    return 1 if missed or data["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
