"""One interleaved run over HTTP: the server on one core, ``wrk`` on the other, CPU per request.

``benchmarks.servers`` measures its contenders here. A contender is a server
command serving one app on some endpoints. All of them start up front, each on
a free 127.0.0.1 port, and must answer each of their endpoints with the right
bytes; then each process of each server (its workers, every thread) is pinned
with ``taskset -a -p`` to the first usable core, and every ``wrk -t1`` run is
started under ``taskset -c`` on the second, so the load generator never takes
the server's core. (They start unpinned: a dozen interpreters importing on one
core would take longer than the run.) Then, for a few rounds, every (contender,
endpoint) pair gets one bounded ``wrk`` run (after a warm-up run in the first
round), in an order rotated each round, so whatever else the machine does falls
on all of them alike.

Around each ``wrk`` run the server's CPU time is read from ``/proc/PID/stat``
(user + system, of the server process and its descendants: gunicorn's and
granian's workers): divided by the requests ``wrk`` counted, it is the server's
CPU per request, a figure that noise from other processes moves less than the
requests per second. The same CPU time over the run's length is how much of its
core the server used: well below one core, it was waiting, for requests (the
load generator) or for its core (other processes), and that, not the server, set
the requests per second. Kept: the median of the rounds, of each. A caller may
measure more on the same pinned servers before they stop (*then*). Every process
started here is stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .apps import AppSpec, Endpoint
from .over_http import (
    READY_TIMEOUT,
    REPO,
    Server,
    WrkMissing,
    _free_port,
    _wait_ready,
    _wrk,
    _wrk_script,
    stop_all,
)

__all__ = ["Contender", "Pinning", "cpu_seconds", "pinning", "run"]

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Contender:
    """A server command serving one app, and the endpoints it is loaded on."""

    server: str  # its label, e.g. "granian"
    spec: AppSpec
    argv: Callable[[str, int], list[str]]  # (target, port) -> the command
    endpoints: tuple[Endpoint, ...]
    #: Where the command runs (the folder ``python -m`` and gunicorn put first on
    #: ``sys.path``), and what it adds to the environment: another checkout's
    #: microroute for ``benchmarks.servers --baseline``. ``None``: this repository.
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.spec.label} on {self.server}"


@dataclass(frozen=True)
class Pinning:
    """The cores the servers and the load generator run on (``None``: not pinned)."""

    server: int | None
    load: int | None

    def wrk_prefix(self) -> list[str]:
        return [] if self.load is None else ["taskset", "-c", str(self.load)]

    def describe(self) -> str:
        if self.server is None:
            return "not pinned (fewer than two usable cores, or no taskset)"
        return f"server on core {self.server}, wrk on core {self.load}"


def pinning(enabled: bool = True) -> Pinning:
    """The first two usable cores, when there are two and ``taskset`` is installed."""
    cores = sorted(os.sched_getaffinity(0))
    if not enabled or len(cores) < 2 or shutil.which("taskset") is None:
        return Pinning(None, None)
    return Pinning(cores[0], cores[1])


def _processes() -> dict[int, tuple[int, int]]:
    """Every process: pid -> (parent pid, CPU ticks used, user + system)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # The name (field 2) may hold spaces and parentheses: split after its last ")".
        fields = text[text.rindex(")") + 2 :].split()
        found[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return found


def _tree(pid: int, processes: dict[int, tuple[int, int]]) -> list[int]:
    """*pid* and its descendants."""
    tree, frontier = [pid], [pid]
    while frontier:
        parents = set(frontier)
        frontier = [p for p, (ppid, _) in processes.items() if ppid in parents]
        tree += frontier
    return [p for p in tree if p in processes]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by process *pid* and its descendants."""
    processes = _processes()
    return sum(processes[p][1] for p in _tree(pid, processes)) / _TICKS


def _pin(pid: int, core: int) -> None:
    """Pin every thread of *pid* and of its descendants to *core* (``taskset -a -p``).

    Threads and processes they start later inherit the affinity.
    """
    for process in _tree(pid, _processes()):
        subprocess.run(
            ["taskset", "-a", "-p", "-c", str(core), str(process)],
            capture_output=True,
            check=False,
            timeout=10,
        )


def run(
    contenders: Sequence[Contender],
    rounds: int,
    seconds: int,
    warmup: int,
    connections: Callable[[Endpoint], int],
    pinned: Pinning,
    log: Callable[[str], None] = print,
    then: Callable[[dict[tuple[str, str], Server]], None] | None = None,
) -> dict[str, Any]:
    """Start every contender, load them in turns (pinned), stop them all.

    Returns ``results[server][endpoint][app]`` with the median requests/s and
    server CPU µs per request over the rounds, and ``errors`` (what could not be
    measured, and why). *then* is called after the rounds with every server
    that answered, by (server, app key), before they are stopped.
    """
    if shutil.which("wrk") is None:
        raise WrkMissing()
    errors: dict[str, str] = {}
    samples: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="microroute-interleaved-") as tmp:
        folder = Path(tmp)
        started: list[tuple[Contender, Server]] = []
        try:
            for number, contender in enumerate(contenders):
                port = _free_port()
                # Numbered: two servers' first words ("gunicorn") may be the same.
                name = f"{number:02d}-{contender.server.split()[0]}-{contender.spec.key}.log"
                log_path = folder / name
                with log_path.open("wb") as out:
                    process = subprocess.Popen(
                        contender.argv(contender.spec.target, port),
                        cwd=contender.cwd or REPO,
                        env={**os.environ, **contender.env} if contender.env else None,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                server = Server(contender.server, contender.spec, port, process, log_path)
                started.append((contender, server))
            log(f"  started {len(started)} servers; waiting until each answers correctly")
            deadline = time.monotonic() + READY_TIMEOUT
            ready: list[tuple[Contender, Server]] = []
            for contender, server in started:
                problems = [_wait_ready(server, e, deadline) for e in contender.endpoints]
                problem = next((p for p in problems if p is not None), None)
                if problem is None:
                    ready.append((contender, server))
                else:
                    errors[f"{server.kind} {server.spec.key}"] = problem
                    log(f"  skipped {server.name}: {problem}")
                    server.stop()
            if pinned.server is not None:
                for _, server in ready:
                    _pin(server.process.pid, pinned.server)
            log(f"  {pinned.describe()}")
            endpoints = {e.key: e for c, _ in ready for e in c.endpoints}
            scripts = {key: _wrk_script(e, folder) for key, e in endpoints.items()}
            pairs = [(s, e) for c, s in ready for e in c.endpoints]
            log(
                f"  {len(pairs)} (server, app, endpoint) runs: {warmup} s warm-up, then"
                f" {rounds} rounds of {seconds} s wrk"
            )
            prefix = pinned.wrk_prefix()
            for round_ in range(rounds):
                log(f"  round {round_ + 1} of {rounds}")
                shift = round_ * max(1, len(pairs) // rounds)
                for server, endpoint in pairs[shift:] + pairs[:shift]:
                    key = (server.kind, endpoint.key, server.spec.key)
                    script, conns = scripts[endpoint.key], connections(endpoint)
                    try:
                        if warmup and round_ == 0:
                            _wrk(server.port, endpoint, warmup, conns, script, prefix)
                        before, started_at = cpu_seconds(server.process.pid), time.monotonic()
                        result = _wrk(server.port, endpoint, seconds, conns, script, prefix)
                        used = cpu_seconds(server.process.pid) - before
                        wall = time.monotonic() - started_at
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        errors[" ".join(key)] = str(exc)
                        log(f"  {server.name} {endpoint.label}: {exc}")
                        continue
                    served = result["requests"]
                    result["cpu_us"] = used / served * 1e6 if served else float("nan")
                    result["busy"] = used / wall  # of one core: near 1, the server was the limit
                    samples.setdefault(key, []).append(result)
            if then is not None:
                then({(c.server, c.spec.key): s for c, s in ready})
        finally:
            stop_all([server for _, server in started])

    results: dict[str, dict[str, dict[str, Any]]] = {}
    for (kind, endpoint_key, app_key), runs in samples.items():
        results.setdefault(kind, {}).setdefault(endpoint_key, {})[app_key] = {
            "rps": statistics.median(r["rps"] for r in runs),
            "rps_runs": [r["rps"] for r in runs],
            "cpu_us": statistics.median(r["cpu_us"] for r in runs),
            "cpu_us_runs": [round(r["cpu_us"], 2) for r in runs],
            "busy": statistics.median(r["busy"] for r in runs),
            "p50_ms": statistics.median(r.get("p50_ms", 0.0) for r in runs),
            "p99_ms": statistics.median(r.get("p99_ms", 0.0) for r in runs),
            "non_2xx": sum(r["non_2xx"] for r in runs),
            "socket_errors": sum(r["socket_errors"] for r in runs),
        }
    return {
        "settings": {
            "rounds": rounds,
            "seconds": seconds,
            "warmup": warmup,
            "wrk_threads": 1,
            "pinning": pinned.describe(),
        },
        "results": results,
        "errors": errors,
    }
