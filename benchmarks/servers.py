"""The servers side by side: throughput, and tail latency at a fixed rate and at 1,000 connections.

::

    python -m benchmarks.servers [--rounds 5] [--seconds 2]

Four servers — gevent's pywsgi tuned as ``microroute run`` used to be
(``benchmarks/pywsgi_server.py``), ``microroute run`` (llhttp), ``gunicorn -k
gevent`` and ``gunicorn -k microroute.gunicorn.Worker``, one worker each — each
serving raw WSGI, Falcon and microroute, all started up front on free
127.0.0.1 ports and stopped by PID. Throughput is ``wrk -t1 -c32`` in
interleaved rounds (median requests/s, see :mod:`benchmarks.over_http`). Then,
for microroute's app on each server, ``GET /hello``:

* p99 at a fixed rate: ``hey`` (Debian package ``hey``), 20 clients at 100
  requests/s each, 2,000 requests/s in all, for *latency_seconds*;
* p99 at 1,000 keep-alive connections: ``wrk -t1 -c1000``.

It prints one markdown table for BENCHMARKS.md, the issue-14 ratios, and exits
non-zero if a target is missed.

``--smoke`` is the tiniest run (CI's, about 20 s): raw WSGI and microroute's app,
``GET /hello``, one 1 s round, no warm-up, 1 s latency runs. It proves every
server starts, answers and can be loaded; its figures mean nothing, so it
enforces no target, but it exits non-zero if anything could not be measured.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import over_http
from .apps import APPS_BY_KEY, ENDPOINTS_BY_KEY

PYWSGI = "pywsgi (tuned)"
RUN = "microroute run"
GUNICORN = "gunicorn -k gevent -w 1"
WORKER = "gunicorn -k microroute.gunicorn.Worker -w 1"
#: (server, baseline, endpoint, target): issue 14's ratios, microroute's app on both.
TARGETS = [
    (RUN, PYWSGI, "hello", 3.0),
    (RUN, PYWSGI, "echo", 2.0),
    (WORKER, GUNICORN, "hello", 3.0),
]
#: Under ``--smoke``: the options (a command-line option still wins), apps and endpoints.
SMOKE = {"rounds": 1, "seconds": 1, "latency_seconds": 1, "warmup": 0}
SMOKE_APPS = ("raw", "microroute")
SMOKE_ENDPOINTS = ("hello",)
_HEY_P99 = re.compile(r"99%+ in ([\d.]+) secs")
_HEY_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_HEY_CODES = re.compile(r"\[(\d{3})\]\s+(\d+) responses")


def _hey(port: int, seconds: int) -> dict[str, float]:
    command = ["hey", "-z", f"{seconds}s", "-c", "20", "-q", "100",
               f"http://127.0.0.1:{port}/hello"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    p99 = _HEY_P99.search(done.stdout)
    rps = _HEY_RPS.search(done.stdout)
    if done.returncode != 0 or p99 is None or rps is None:
        raise RuntimeError(f"hey failed ({done.returncode}): {done.stderr or done.stdout}")
    codes = {code: int(n) for code, n in _HEY_CODES.findall(done.stdout)}
    errors = sum(n for code, n in codes.items() if code != "200")
    return {"p99_ms": float(p99.group(1)) * 1000, "rps": float(rps.group(1)), "errors": errors}


def _latency(servers: list[str], seconds: int, log: Any) -> dict[str, dict[str, float]]:
    """Fixed-rate and 1,000-connection p99 for microroute's app on each server."""
    spec = APPS_BY_KEY["microroute"]
    hello = ENDPOINTS_BY_KEY["hello"]
    found: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="microroute-latency-") as tmp:
        for kind in servers:
            port = over_http._free_port()
            log_path = Path(tmp) / f"{kind.split()[0]}.log"
            with log_path.open("wb") as out:
                process = subprocess.Popen(
                    over_http.SERVERS[kind](spec.target, port),
                    cwd=over_http.REPO,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            server = over_http.Server(kind, spec, port, process, log_path)
            try:
                problem = over_http._wait_ready(
                    server, hello, time.monotonic() + over_http.READY_TIMEOUT
                )
                if problem is not None:
                    log(f"  skipped {kind}: {problem}")
                    continue
                fixed = _hey(port, seconds)
                crowd = over_http._wrk(port, hello, seconds, 1000, [])
                found[kind] = {
                    "fixed_p99_ms": fixed["p99_ms"],
                    "fixed_rps": fixed["rps"],
                    "fixed_errors": fixed["errors"],
                    "c1000_p99_ms": crowd.get("p99_ms", float("nan")),
                    "c1000_rps": crowd["rps"],
                    "c1000_errors": crowd["non_2xx"] + crowd["socket_errors"],
                }
                log(f"  {kind}: {found[kind]}")
            finally:
                server.stop()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.servers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved wrk rounds")
    parser.add_argument("--seconds", type=int, default=2, help="seconds per wrk run")
    parser.add_argument("--latency-seconds", type=int, default=5, help="seconds per p99 run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of wrk warm-up, once")
    parser.add_argument("--smoke", action="store_true", help="the tiniest run (see above)")
    args = parser.parse_args(argv)
    if args.smoke:  # again, with the smoke defaults
        parser.set_defaults(**SMOKE)
        args = parser.parse_args(argv)
    for tool in ("wrk", "hey"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed: apt-get install {tool}")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    servers = [PYWSGI, RUN, GUNICORN, WORKER]
    apps = [APPS_BY_KEY[k] for k in (SMOKE_APPS if args.smoke else ("raw", "falcon", "microroute"))]
    keys = SMOKE_ENDPOINTS if args.smoke else ("hello", "echo")
    endpoints = [ENDPOINTS_BY_KEY[k] for k in keys]
    if args.smoke:
        log("a smoke run: the tiniest size; no figure below means anything")
    log("throughput: wrk -t1 -c32, interleaved rounds")
    data = over_http.run(
        apps,
        endpoints,
        servers,
        rounds=args.rounds,
        seconds=args.seconds,
        warmup=args.warmup,
        log=log,
    )
    log("latency: microroute's app, GET /hello")
    latency = _latency(servers, args.latency_seconds, log)
    rps = data["results"]

    def get(server: str, endpoint: str, app: str) -> float:
        value: float = rps.get(server, {}).get(endpoint, {}).get(app, {}).get("rps", 0.0)
        return value

    def cell(server: str, endpoint: str, app: str) -> str:
        measured = get(server, endpoint, app)
        return f"{measured:,.0f}" if measured else "-"

    print(f"\n`python -m benchmarks.servers --rounds {args.rounds} --seconds {args.seconds}`"
          f" (median req/s of {args.rounds} rounds; one worker each)\n")  # fmt: skip
    print(
        "| server | raw /hello | Falcon /hello | microroute /hello | raw /echo |"
        " Falcon /echo | microroute /echo | p99 at 2,000 req/s | p99 at 1,000 conns |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for server in servers:
        cells = [cell(server, e, a) for e in ("hello", "echo")
                 for a in ("raw", "falcon", "microroute")]  # fmt: skip
        lat = latency.get(server, {})
        fixed = f"{lat['fixed_p99_ms']:.1f} ms" if lat else "-"
        crowd = f"{lat['c1000_p99_ms']:.1f} ms" if lat else "-"
        print(f"| {server} | " + " | ".join(cells) + f" | {fixed} | {crowd} |")
    print()
    missed = 0
    for server, baseline, endpoint, target in TARGETS:
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
    if args.smoke:
        unmeasured = dict(data["errors"])
        unmeasured.update({f"latency on {s}": "not measured" for s in servers if s not in latency})
        for key, problem in unmeasured.items():
            log(f"smoke run failed: {key}: {problem}")
        return 1 if unmeasured else 0  # targets: not from figures this small
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
