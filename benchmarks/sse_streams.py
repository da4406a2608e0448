"""How many one-event-per-second SSE streams one worker holds, and at what cost.

Opens N concurrent SSE clients (default 10,000) against one server process,
holds them for ``--seconds``, and reports, for each app:

* **held**: streams still receiving events at the end;
* **events/s** received by all clients together (ideal: N);
* the **gap** between consecutive events of a stream, median and p99 (ideal: 1 s);
* **RSS/stream**: (server RSS with every stream open - RSS idle) / N;
* **CPU**: the server's CPU seconds per wall second during the hold.

The apps, served one after the other by the same server in the same run:

* ``raw``: a bare WSGI generator app, the floor;
* ``eventstream``: microroute's ``EventStream`` (a heartbeat every 15 s, so the
  generator runs in its own greenlet);
* ``eventstream-nohb``: ``EventStream(..., heartbeat=None)``, the generator inline.

The server is ``microroute run``'s (``microroute.server.serve``, monkey-patched)
or ``gunicorn -k gevent`` with one worker (``--server gunicorn``), in a
subprocess; the clients are raw sockets on gevent greenlets, in another
subprocess. Both raise their soft fd limit to the hard limit.

    python benchmarks/sse_streams.py                          # 10,000 clients, 20 s each app
    python benchmarks/sse_streams.py --clients 2000 --server gunicorn
    python benchmarks/sse_streams.py --clients 500 --seconds 5 --apps raw,eventstream
    python benchmarks/sse_streams.py --smoke                  # 3 clients, 1 s: CI's (~15 s)

A smoke run proves every app still serves its streams: its figures mean
nothing, but it exits non-zero if a client could not connect.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from processes import free_port, rss_kib

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APPS = ("raw", "eventstream", "eventstream-nohb")
READY_TIMEOUT = 30.0
SMOKE = {"clients": 3, "seconds": 1.0}  # under --smoke; an option given still wins


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit; each stream costs one fd per side."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# The apps (built on first use: the server process monkey-patches first) ---------------


def _ticks() -> Iterator[int]:
    n = 0
    while True:
        yield n
        n += 1
        time.sleep(1)


def raw_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
    """The floor: a WSGI generator app, no framework."""
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/event-stream"),
            ("Cache-Control", "no-cache"),
            ("X-Accel-Buffering", "no"),
        ],
    )
    return (b"data: %d\n\n" % n for n in _ticks())


def _microroute_app(heartbeat: float | None) -> Any:
    from microroute import App, EventStream, Router

    router = Router()

    @router.get("/events")
    def events() -> EventStream:
        return EventStream((str(n) for n in _ticks()), heartbeat=heartbeat)

    return App(router)


def __getattr__(name: str) -> Any:
    # gunicorn imports `sse_streams:eventstream_app`; build it only then.
    if name == "eventstream_app":
        return _microroute_app(15.0)
    if name == "eventstream_nohb_app":
        return _microroute_app(None)
    raise AttributeError(name)


def wsgi_name(app: str) -> str:
    return {"raw": "raw_app", "eventstream": "eventstream_app"}.get(app, "eventstream_nohb_app")


def serve_main(app: str, port: int) -> None:
    """``--serve APP``: this process is the server (``microroute run``'s)."""
    from gevent import monkey

    monkey.patch_all()
    raise_fd_limit()
    sys.path.insert(0, str(REPO))
    from microroute.server import serve

    target = raw_app if app == "raw" else __getattr__(wsgi_name(app))
    serve(target, "127.0.0.1", port, access_log=False)


# The clients ----------------------------------------------------------------------------


def client_main(port: int, clients: int, seconds: float, concurrency: int) -> None:
    """``--client``: open *clients* streams, hold them, print JSON stats."""
    from gevent import monkey

    monkey.patch_all()
    import gevent
    from gevent.lock import Semaphore

    raise_fd_limit()
    request = b"GET /events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
    gate = Semaphore(concurrency)  # connects in flight: stay under the listen backlog
    state: dict[str, Any] = {"connected": 0, "failed": 0, "measuring": False, "stop": False}
    gaps: list[float] = []
    counts = [0] * clients
    last_seen = [0.0] * clients
    errors: dict[str, int] = {}

    def one(i: int) -> None:
        try:
            with gate:
                sock = socket.create_connection(("127.0.0.1", port), timeout=60)
                sock.sendall(request)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed before headers")
                    head += chunk
            if not head.startswith(b"HTTP/1.1 200"):
                raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
            state["connected"] += 1
            last = None
            pending = head.count(b"data:")
            while not state["stop"]:
                now = time.monotonic()
                if pending:
                    if state["measuring"]:
                        counts[i] += pending
                        if last is not None:
                            gaps.append(now - last)
                    last = now
                    last_seen[i] = now
                chunk = sock.recv(65536)
                if not chunk:
                    break
                pending = chunk.count(b"data:")
            sock.close()
        except Exception as exc:  # count and report every kind of failure
            state["failed"] += 1
            key = type(exc).__name__
            errors[key] = errors.get(key, 0) + 1

    started = time.monotonic()
    greenlets = [gevent.spawn(one, i) for i in range(clients)]
    while state["connected"] + state["failed"] < clients and time.monotonic() - started < 120:
        gevent.sleep(0.1)
    connect_time = time.monotonic() - started
    print(json.dumps({"phase": "connected", "connected": state["connected"]}), flush=True)
    gevent.sleep(1.5)  # settle: the parent samples the server's RSS meanwhile
    state["measuring"] = True
    window_start = time.monotonic()
    cpu_start = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    gevent.sleep(seconds)
    window = time.monotonic() - window_start
    client_cpu = (sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu_start) / window
    state["measuring"] = False
    end = time.monotonic()
    held = sum(1 for t in last_seen if end - t < 2.5)
    state["stop"] = True
    print(json.dumps({"phase": "holding-done"}), flush=True)
    gevent.killall(greenlets, block=True, timeout=10)
    gaps.sort()
    print(
        json.dumps(
            {
                "phase": "done",
                "clients": clients,
                "connected": state["connected"],
                "failed": state["failed"],
                "errors": errors,
                "connect_s": connect_time,
                "held": held,
                "events": sum(counts),
                "window_s": window,
                "client_cpu": client_cpu,
                "gap_median": statistics.median(gaps) if gaps else None,
                "gap_p99": gaps[int(len(gaps) * 0.99)] if gaps else None,
                "gap_max": gaps[-1] if gaps else None,
            }
        ),
        flush=True,
    )


# The orchestra --------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            # Say why: a server that cannot start is how this benchmark went unrun.
            output = log.read_text(errors="replace")[-2000:].strip()
            raise SystemExit(f"the server exited with {process.returncode}:\n{output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def worker_pid(master: int) -> int:
    """gunicorn's one worker: the master's child."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise SystemExit("no gunicorn worker")


def start_server(kind: str, app: str, port: int, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE)])}
    if kind == "microroute":
        argv = [sys.executable, __file__, "--serve", app, "--port", str(port)]
    else:
        argv = [
            sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", "1",
            "--worker-connections", "100000", "--backlog", "2048",
            "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
            "--chdir", str(HERE), f"sse_streams:{wsgi_name(app)}",
        ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=raise_fd_limit,  # gunicorn does not raise it itself
        )
    wait_ready(port, process, log)
    pid = worker_pid(process.pid) if kind == "gunicorn" else process.pid
    return process, pid


def measure(
    kind: str, app: str, clients: int, seconds: float, concurrency: int, folder: Path
) -> dict[str, Any]:
    port = free_port()
    server, pid = start_server(kind, app, port, folder / f"{kind}-{app}.log")
    client: subprocess.Popen[str] | None = None
    try:
        # Warm up: one stream opened and closed, so lazy imports and first-use
        # allocations are in the idle figure, not charged to the streams.
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET /events HTTP/1.1\r\nHost: warm\r\n\r\n")
            sock.recv(4096)
        time.sleep(0.5)
        idle = rss_kib(pid)
        argv = [
            sys.executable, __file__, "--client", "--port", str(port),
            "--clients", str(clients), "--seconds", str(seconds),
            "--concurrency", str(concurrency),
        ]  # fmt: skip
        client = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=raise_fd_limit,
        )
        assert client.stdout is not None
        result: dict[str, Any] = {}
        loaded = 0
        cpu_start = cpu_end = 0.0
        for line in client.stdout:
            message = json.loads(line)
            if message["phase"] == "connected":
                time.sleep(1.0)
                loaded = rss_kib(pid)
                cpu_start = cpu_seconds(pid)
            elif message["phase"] == "holding-done":
                cpu_end = cpu_seconds(pid)
                loaded = max(loaded, rss_kib(pid))
            elif message["phase"] == "done":
                result = message
        client.wait()
        result.update(
            server=kind,
            app=app,
            rss_idle_kib=idle,
            rss_loaded_kib=loaded,
            rss_per_stream_kib=(loaded - idle) / max(result.get("connected", 0), 1),
            events_per_s=result["events"] / result["window_s"],
            cpu=(cpu_end - cpu_start) / result["window_s"],
        )
        return result
    finally:
        # Both by PID: the client too, should this run have stopped half-way.
        for process in (client, server):
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}s"  # None: no two events in the window


def print_table(results: list[dict[str, Any]]) -> None:
    base = next((r for r in results if r["app"] == "raw"), results[0])
    header = (
        f"{'server':<11}{'app':<18}{'held':>13}{'events/s':>10}{'gap p50':>9}{'gap p99':>9}"
        f"{'RSS/stream':>12}{'x raw':>7}{'CPU':>6}{'client':>7}{'connect':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = r["rss_per_stream_kib"] / base["rss_per_stream_kib"]
        print(
            f"{r['server']:<11}{r['app']:<18}{r['held']:>6}/{r['clients']:<6}"
            f"{r['events_per_s']:>10.0f}{_seconds(r['gap_median']):>9}{_seconds(r['gap_p99']):>9}"
            f"{r['rss_per_stream_kib']:>8.1f} KiB{ratio:>6.2f}x"
            f"{r['cpu']:>6.2f}{r['client_cpu']:>7.2f}"
            f"{r['connect_s']:>8.1f}s"
        )
        if r["failed"]:
            print(f"{'':<29}failed: {r['failed']} {r['errors']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="hold time per app")
    parser.add_argument("--server", choices=["microroute", "gunicorn"], default="microroute")
    parser.add_argument("--apps", default=",".join(APPS), help="comma-separated: " + " ".join(APPS))
    parser.add_argument("--concurrency", type=int, default=500, help="connects in flight")
    parser.add_argument("--json", action="store_true", help="print the raw results too")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="3 clients, 1 s per app: proves it works; fails if a client could not connect",
    )
    parser.add_argument("--serve", choices=APPS, help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.smoke:  # again, with the smoke defaults
        parser.set_defaults(**SMOKE)
        args = parser.parse_args()
    if args.serve:
        serve_main(args.serve, args.port)
        return 0
    if args.client:
        client_main(args.port, args.clients, args.seconds, args.concurrency)
        return 0
    limit = raise_fd_limit()
    if limit < args.clients + 100:
        raise SystemExit(f"the fd limit is {limit}: raise the hard limit (ulimit -Hn) above N")
    print(
        f"{args.clients} clients x 1 event/s, held {args.seconds:.0f} s per app, one "
        f"{args.server} worker; {os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
        flush=True,
    )
    if args.smoke:
        print("a smoke run: the tiniest size; no figure below means anything", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="microroute-sse-") as tmp:
        for app in args.apps.split(","):
            results.append(
                measure(args.server, app, args.clients, args.seconds, args.concurrency, Path(tmp))
            )
            print(f"  {app}: done", file=sys.stderr, flush=True)
    print_table(results)
    if args.json:
        print(json.dumps(results, indent=1))
    if args.smoke:
        failed = [r["app"] for r in results if r["connected"] < r["clients"]]
        if failed:
            print(f"smoke run failed: not every client connected to {', '.join(failed)}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
