"""Over HTTP: every app behind real servers, loaded by ``wrk`` on 127.0.0.1.

Each app runs under each server — gevent's pywsgi tuned as ``microroute run``
used to be (``benchmarks/pywsgi_server.py``), ``microroute run`` (llhttp),
``gunicorn -k gevent -w 1`` and ``gunicorn -k microroute.gunicorn.Worker -w 1`` —
each its own process on a free port, all started up front. Then, for a few rounds, each
(server, app) pair in turn gets a bounded ``wrk`` run (after a warm-up run in the
first round), in a rotated order, so the apps share whatever else the machine is doing. The
figure kept is the median requests/s over the rounds, compared with raw WSGI
on the same server. Every process started here is stopped by its PID.
"""

from __future__ import annotations

import http.client
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .apps import APPS_BY_KEY, AppSpec, Endpoint
from .calls import check
from .stats import ratio, render

__all__ = ["SERVERS", "SERVER_KEYS", "WrkMissing", "run", "table"]

REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def _gunicorn(target: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", "1",
        "-b", f"127.0.0.1:{port}", "--log-level", "warning", target,
    ]  # fmt: skip


def _microroute(target: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "microroute", "run", target,
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
    ]  # fmt: skip


def _pywsgi(target: str, port: int) -> list[str]:
    return [sys.executable, "-m", "benchmarks.pywsgi_server", target, "--port", str(port)]


def _gunicorn_microroute(target: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "-k", "microroute.gunicorn.Worker", "-w", "1",
        "-b", f"127.0.0.1:{port}", "--log-level", "warning", target,
    ]  # fmt: skip


#: Short names for ``--servers``.
SERVER_KEYS = {
    "pywsgi": "pywsgi (tuned)",
    "microroute": "microroute run",
    "gunicorn": "gunicorn -k gevent -w 1",
    "worker": "gunicorn -k microroute.gunicorn.Worker -w 1",
}

SERVERS: dict[str, Callable[[str, int], list[str]]] = {
    "pywsgi (tuned)": _pywsgi,
    "microroute run": _microroute,
    "gunicorn -k gevent -w 1": _gunicorn,
    "gunicorn -k microroute.gunicorn.Worker -w 1": _gunicorn_microroute,
}


class WrkMissing(RuntimeError):
    """``wrk`` is not on PATH."""

    def __init__(self) -> None:
        super().__init__(
            "wrk is not installed, and `python -m benchmarks http` needs it to load the"
            " servers. On Debian or Ubuntu: sudo apt-get install wrk"
            " (elsewhere: https://github.com/wg/wrk). The in-process and scaling"
            " benchmarks do not need it."
        )


@dataclass
class Server:
    kind: str
    spec: AppSpec
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def name(self) -> str:
        return f"{self.spec.label} on {self.kind}"

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM to its PID); :meth:`stop` waits for it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        self.terminate()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def stop_all(servers: Sequence[Server]) -> None:
    """Stop every server by its PID, all at once: a gunicorn takes ~1 s to stop."""
    for server in servers:
        server.terminate()
    for server in servers:
        server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _request(port: int, endpoint: Endpoint) -> tuple[str, list[tuple[str, str]], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {"Content-Type": "application/json"} if endpoint.body else {}
        connection.request(endpoint.method, endpoint.path, endpoint.body or None, headers)
        response = connection.getresponse()
        body = response.read()
        return f"{response.status} {response.reason}", response.getheaders(), body
    finally:
        connection.close()


def _wait_ready(server: Server, endpoint: Endpoint, deadline: float) -> str | None:
    """``None`` once *server* answers *endpoint* correctly; else what went wrong."""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-800:]
            return f"exited with {server.process.returncode}: {tail}"
        try:
            reply = _request(server.port, endpoint)
        except OSError:
            time.sleep(0.1)
            continue
        return check(reply, endpoint)
    return f"not answering after {READY_TIMEOUT:.0f} s"


def _wrk_script(endpoint: Endpoint, folder: Path) -> list[str]:
    if not endpoint.body:
        return []
    body = endpoint.body.decode()
    script = folder / f"{endpoint.key}.lua"
    script.write_text(
        f'wrk.method = "{endpoint.method}"\n'
        f"wrk.body = [==[{body}]==]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return ["-s", str(script)]


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_REQUESTS = re.compile(r"(\d+) requests in ")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_PERCENTILE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _wrk(
    port: int,
    endpoint: Endpoint,
    seconds: int,
    connections: int,
    script: list[str],
    prefix: Sequence[str] = (),
) -> dict[str, Any]:
    """One wrk run (whole seconds: wrk takes no fractions); *prefix* runs it (``taskset``)."""
    command = [
        *prefix, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *script,
        f"http://127.0.0.1:{port}{endpoint.path}",
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    out = done.stdout
    found = _RPS.search(out)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or out}")
    result: dict[str, Any] = {"rps": float(found.group(1))}
    requests = _REQUESTS.search(out)
    result["requests"] = int(requests.group(1)) if requests else 0
    non_2xx = _NON_2XX.search(out)
    result["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    errors = _ERRORS.search(out)
    result["socket_errors"] = sum(map(int, errors.groups())) if errors else 0
    for pct, value, unit in _PERCENTILE.findall(out):
        result[f"p{pct}_ms"] = float(value) * _UNIT[unit]
    return result


def run(
    apps: Sequence[AppSpec],
    endpoints: Sequence[Endpoint],
    servers: Sequence[str] = tuple(SERVERS),
    rounds: int = 7,
    seconds: int = 1,
    warmup: int = 1,
    connections: int = 32,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Start every (server, app) pair, load them in turns, stop them all."""
    if shutil.which("wrk") is None:
        raise WrkMissing()
    errors: dict[str, str] = {}
    samples: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="microroute-bench-") as tmp:
        folder = Path(tmp)
        started: list[Server] = []
        try:
            for kind in servers:
                for spec in apps:
                    port = _free_port()
                    log_path = folder / f"{kind.split()[0]}-{spec.key}.log"
                    with log_path.open("wb") as out:
                        process = subprocess.Popen(
                            SERVERS[kind](spec.target, port),
                            cwd=REPO,
                            stdout=out,
                            stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                        )
                    started.append(Server(kind, spec, port, process, log_path))
            log(f"  started {len(started)} servers; waiting until each answers correctly")
            deadline = time.monotonic() + READY_TIMEOUT
            ready: list[Server] = []
            for server in started:
                problems = [_wait_ready(server, e, deadline) for e in endpoints]
                problem = next((p for p in problems if p is not None), None)
                if problem is None:
                    ready.append(server)
                else:
                    errors[f"{server.kind} {server.spec.key}"] = problem
                    log(f"  skipped {server.name}: {problem}")
                    server.stop()
            scripts = {e.key: _wrk_script(e, folder) for e in endpoints}
            pairs = [(s, e) for s in ready for e in endpoints]
            log(
                f"  {len(pairs)} (server, app, endpoint) runs: {warmup} s warm-up, then"
                f" {rounds} rounds of {seconds} s wrk, {connections} connections"
            )
            for round_ in range(rounds):
                shift = round_ * max(1, len(pairs) // rounds)
                for server, endpoint in pairs[shift:] + pairs[:shift]:
                    script = scripts[endpoint.key]
                    key = (server.kind, endpoint.key, server.spec.key)
                    try:
                        if warmup and round_ == 0:
                            _wrk(server.port, endpoint, warmup, connections, script)
                        result = _wrk(server.port, endpoint, seconds, connections, script)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        errors[" ".join(key)] = str(exc)
                        log(f"  {server.name} {endpoint.label}: {exc}")
                        continue
                    samples.setdefault(key, []).append(result)
        finally:
            stop_all(started)

    results: dict[str, dict[str, dict[str, Any]]] = {}
    for (kind, endpoint_key, app_key), runs in samples.items():
        rps = [r["rps"] for r in runs]
        entry = {
            "rps": statistics.median(rps),
            "rps_runs": rps,
            "p50_ms": statistics.median(r.get("p50_ms", 0.0) for r in runs),
            "p99_ms": statistics.median(r.get("p99_ms", 0.0) for r in runs),
            "non_2xx": sum(r["non_2xx"] for r in runs),
            "socket_errors": sum(r["socket_errors"] for r in runs),
        }
        results.setdefault(kind, {}).setdefault(endpoint_key, {})[app_key] = entry
    for by_endpoint in results.values():
        for by_app in by_endpoint.values():
            raw = by_app.get("raw")
            for entry in by_app.values():
                entry["vs_raw"] = entry["rps"] / raw["rps"] if raw else None
    return {
        "settings": {
            "rounds": rounds,
            "seconds": seconds,
            "warmup": warmup,
            "connections": connections,
            "wrk_threads": 1,
        },
        "endpoints": {e.key: e.label for e in endpoints},
        "apps": {s.key: s.label for s in apps},
        "results": results,
        "errors": errors,
    }


def table(data: dict[str, Any], server: str, endpoint: str, markdown: bool = False) -> str:
    """Requests/s, latency and the ratio to raw WSGI, for one server and endpoint."""
    by_app: dict[str, Any] = data["results"].get(server, {}).get(endpoint, {})
    labels = {**{k: s.label for k, s in APPS_BY_KEY.items()}, **data.get("apps", {})}
    header = ["app", "req/s (median)", "p50 ms", "p99 ms", "vs raw", "errors"]
    rows = [
        [
            labels.get(key, key),
            f"{entry['rps']:,.0f}",
            f"{entry['p50_ms']:.2f}",
            f"{entry['p99_ms']:.2f}",
            ratio(entry["vs_raw"]),
            str(entry["non_2xx"] + entry["socket_errors"]),
        ]
        for key, entry in by_app.items()
    ]
    return render(header, rows, markdown)
