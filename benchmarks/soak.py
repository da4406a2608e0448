"""A bounded soak: a real ``microroute run`` under misbehaving clients for a fixed time.

::

    python benchmarks/soak.py                 # 120 s, the figures the issue asks for
    python benchmarks/soak.py --seconds 10    # what CI runs (tests/e2e/test_soak_short.py)

It serves ``benchmarks/soak_app.py`` (the blog example's sqlite CRUD plus
fault routes) on a free 127.0.0.1 port, then runs client threads in roles:

* **normal**: GETs, JSON POSTs, full streams, and ``/soak/flaky``, whose
  handler raises one time in four (those 500s are expected);
* **writers**: create blog posts concurrently, remembering each id acknowledged
  with a 201;
* **disconnect**: open a slow stream, read its first bytes, and hang up
  (half of them with a TCP reset);
* **slowloris**: send a request's headers a few bytes at a time over seconds,
  then either finish it (and expect an answer) or abandon it;
* **garbage**: send random bytes, and expect a 400 or a closed connection.

After a warm-up the server's RSS is taken as the baseline. At the end it
checks that the server still answers, that every streaming generator opened
was closed (its ``finally:`` ran), that RSS is within 10% of the baseline, and
that every acknowledged post is in the database (and nothing else). It prints
the figures and exits non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from processes import free_port, rss_kib

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "benchmarks" / "soak_app.py"
READY_TIMEOUT = 20.0
DRAIN_TIMEOUT = 10.0
RSS_TOLERANCE = 0.10
ROLES = {"normal": 8, "writers": 4, "disconnect": 3, "slowloris": 2, "garbage": 1}


@dataclass
class Tally:
    """What the clients did and saw; shared by all threads under one lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def served(self, status: int) -> None:
        with self.lock:
            self.counts["requests served"] += 1
            self.statuses[status] += 1

    def problem(self, text: str) -> None:
        with self.lock:
            self.counts["unexpected"] += 1
            if len(self.problems) < 20:
                self.problems.append(text)


class Soak:
    """The server process, the client threads, and the figures."""

    def __init__(self, seconds: float, workdir: Path) -> None:
        self.seconds = seconds
        self.workdir = workdir
        self.db = workdir / "soak-blog.sqlite3"
        self.log = workdir / "server.log"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tally = Tally()
        self.stop = threading.Event()
        self.process: subprocess.Popen[bytes] | None = None

    # -- the server ------------------------------------------------------------

    def start_server(self) -> None:
        env = {**os.environ, "BLOG_DB": str(self.db), "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        argv = [sys.executable, "-m", "microroute", "run", str(APP),
                "--port", str(self.port), "--no-access-log"]  # fmt: skip
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited early:\n{self.server_output()}")
            try:
                requests.get(self.base + "/soak/stats", timeout=1)
                return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the server is not ready:\n{self.server_output()}"
                    ) from None
                time.sleep(0.05)

    def stop_server(self) -> int | None:
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def server_output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stats(self) -> dict[str, Any]:
        return dict(requests.get(self.base + "/soak/stats", timeout=5).json())

    def rss(self) -> int:
        assert self.process is not None
        return rss_kib(self.process.pid)

    # -- client roles -----------------------------------------------------------

    def normal(self, rng: random.Random) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            action = rng.random()
            try:
                if action < 0.35:
                    resp = session.get(self.base + "/soak/hello", timeout=10)
                    self.expect(resp.status_code, (200,), "GET /soak/hello")
                elif action < 0.55:
                    value = {"n": rng.randrange(10**6), "s": "é" * rng.randrange(50)}
                    resp = session.post(self.base + "/soak/echo", json=value, timeout=10)
                    self.expect(resp.status_code, (200,), "POST /soak/echo")
                    if resp.status_code == 200 and resp.json() != {"got": value}:
                        self.tally.problem("POST /soak/echo answered another body")
                elif action < 0.75:
                    resp = session.get(self.base + "/soak/flaky", timeout=10)
                    self.expect(resp.status_code, (200, 500), "GET /soak/flaky")
                    if resp.status_code == 500:
                        self.tally.add("handler faults answered 500")
                elif action < 0.9:
                    resp = session.get(self.base + "/soak/stream?n=10&delay=0.002", timeout=10)
                    self.expect(resp.status_code, (200,), "GET /soak/stream")
                    if resp.content.count(b"\n") != 10:
                        self.tally.problem("a full stream came back short")
                    self.tally.add("streams read whole")
                else:
                    resp = session.get(self.base + "/api/posts?published=maybe", timeout=10)
                    self.expect(resp.status_code, (400,), "GET /api/posts?published=maybe")
            except requests.RequestException as exc:
                self.tally.problem(f"normal request failed: {exc!r}")
                session = requests.Session()

    def writer(self, rng: random.Random) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            title = f"soak {rng.randrange(10**9)}"
            try:
                resp = session.post(
                    self.base + "/api/posts", json={"title": title, "body": "x" * 100}, timeout=30
                )
            except requests.RequestException as exc:
                self.tally.problem(f"POST /api/posts failed: {exc!r}")
                session = requests.Session()
                continue
            self.tally.served(resp.status_code)
            if resp.status_code == 201:
                with self.tally.lock:
                    self.tally.acknowledged.add(int(resp.json()["id"]))
            else:
                self.tally.problem(f"POST /api/posts answered {resp.status_code}")

    def disconnect(self, rng: random.Random) -> None:
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                    sock.sendall(
                        b"GET /soak/stream?n=200&delay=0.01 HTTP/1.1\r\nHost: soak\r\n\r\n"
                    )
                    sock.recv(rng.choice((100, 1000, 4000)))  # the first bytes only
                    time.sleep(rng.random() * 0.05)
                    if rng.random() < 0.5:  # a reset rather than a clean close
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                self.tally.add("disconnects injected")
            except OSError as exc:
                self.tally.problem(f"disconnect client failed: {exc!r}")

    def slowloris(self, rng: random.Random) -> None:
        while not self.stop.is_set():
            request = b"GET /soak/hello HTTP/1.1\r\nHost: soak\r\nX-Slow: " + b"s" * 40 + b"\r\n"
            finish = rng.random() < 0.5
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                    started = time.monotonic()
                    for start in range(0, len(request), 6):
                        if self.stop.is_set():
                            break
                        sock.sendall(request[start : start + 6])
                        time.sleep(0.25)  # ~3 s for the whole header section
                    if finish and not self.stop.is_set():
                        sock.sendall(b"Connection: close\r\n\r\n")
                        answer = read_all(sock)
                        status = parse_status(answer)
                        self.tally.served(status)
                        if status != 200:
                            self.tally.problem(f"slow client answered {status}")
                        self.tally.add("slow clients finished")
                    else:
                        self.tally.add("slow clients abandoned")
                    self.tally.add("slow client seconds", int(time.monotonic() - started))
            except OSError as exc:
                self.tally.problem(f"slow client failed: {exc!r}")

    def garbage(self, rng: random.Random) -> None:
        while not self.stop.is_set():
            junk = rng.randbytes(rng.randrange(1, 2000))
            if rng.random() < 0.5:
                junk += b"\r\n\r\n"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                    with contextlib.suppress(OSError):
                        sock.sendall(junk)
                        sock.shutdown(socket.SHUT_WR)
                    answer = read_all(sock)
                status = parse_status(answer) if answer else 0
                if status:
                    self.tally.served(status)
                if status and not 400 <= status < 500:
                    self.tally.problem(f"garbage answered {status}: {answer[:80]!r}")
                self.tally.add("garbage requests sent")
            except OSError as exc:
                self.tally.problem(f"garbage client failed: {exc!r}")
            time.sleep(0.01)

    def expect(self, status: int, wanted: tuple[int, ...], what: str) -> None:
        self.tally.served(status)
        if status not in wanted:
            self.tally.problem(f"{what} answered {status}")

    # -- the run ------------------------------------------------------------------

    def run_clients(self, seconds: float) -> None:
        self.stop.clear()
        roles: dict[str, Callable[[random.Random], None]] = {
            "normal": self.normal,
            "writers": self.writer,
            "disconnect": self.disconnect,
            "slowloris": self.slowloris,
            "garbage": self.garbage,
        }
        threads = []
        seed = 0
        for role, count in ROLES.items():
            for _ in range(count):
                seed += 1
                rng = random.Random(seed)
                thread = threading.Thread(target=roles[role], args=(rng,), daemon=True)
                thread.start()
                threads.append(thread)
        self.stop.wait(seconds)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=30)

    def drained_stats(self) -> dict[str, Any]:
        """Stats once every stream the clients left has been closed (or the timeout)."""
        deadline = time.monotonic() + DRAIN_TIMEOUT
        stats = self.stats()
        while stats["opened"] != stats["closed"] and time.monotonic() < deadline:
            time.sleep(0.1)
            stats = self.stats()
        return stats

    def rows_written(self) -> set[int]:
        with contextlib.closing(sqlite3.connect(self.db, timeout=30)) as conn:
            return {row[0] for row in conn.execute("SELECT id FROM posts")}


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def parse_status(answer: bytes) -> int:
    parts = answer.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return 0
    return int(parts[1])


def soak(seconds: float) -> dict[str, Any]:
    """Run the soak for *seconds*; return the figures and the checks."""
    with tempfile.TemporaryDirectory(prefix="microroute-soak-") as tmp:
        run = Soak(seconds, Path(tmp))
        run.start_server()
        try:
            warmup = min(10.0, max(2.0, seconds * 0.1))
            run.run_clients(warmup)
            run.drained_stats()
            rss_start = run.rss()
            run.run_clients(seconds)
            stats = run.drained_stats()
            rss_end = run.rss()
            alive = requests.get(run.base + "/soak/hello", timeout=5).status_code == 200
            written = run.rows_written()
        finally:
            exit_code = run.stop_server()
            output = run.server_output()
        tally = run.tally
        acknowledged = tally.acknowledged
        tracebacks = output.count("Traceback (most recent call last)")
        planned = output.count("Unhandled SoakFault")
        figures = {
            "seconds": seconds,
            "warmup_seconds": warmup,
            "requests_served": tally.counts["requests served"],
            "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
            "disconnects_injected": tally.counts["disconnects injected"],
            "slow_clients": tally.counts["slow clients finished"]
            + tally.counts["slow clients abandoned"],
            "garbage_requests": tally.counts["garbage requests sent"],
            "handler_faults": stats["raised"],
            "streams_read_whole": tally.counts["streams read whole"],
            "generators_opened": stats["opened"],
            "generators_closed": stats["closed"],
            "rss_warm_kib": rss_start,
            "rss_end_kib": rss_end,
            "rss_change": round((rss_end - rss_start) / rss_start, 4),
            "rows_acknowledged": len(acknowledged),
            "rows_written": len(written),
            "unexpected": tally.counts["unexpected"],
            "problems": tally.problems,
            "server_exit_code": exit_code,
            "server_tracebacks": tracebacks,
            "server_tracebacks_planned": planned,
        }
        checks = {
            "server still answering": alive,
            "generators closed == opened": stats["opened"] == stats["closed"],
            f"RSS within {RSS_TOLERANCE:.0%} of warm": abs(rss_end - rss_start)
            <= RSS_TOLERANCE * rss_start,
            "rows written == acknowledged": written == acknowledged,
            "no unexpected answers": tally.counts["unexpected"] == 0,
            "server stopped cleanly": exit_code == 0,
            "no traceback but the planned faults": tracebacks == planned,
        }
        figures["checks"] = checks
        figures["ok"] = all(checks.values())
        return figures


def report(figures: dict[str, Any]) -> str:
    lines = [
        f"soak: {figures['seconds']:g} s (after {figures['warmup_seconds']:g} s warm-up)",
        f"  requests served        {figures['requests_served']}  {figures['statuses']}",
        f"  disconnects injected   {figures['disconnects_injected']}",
        f"  slow clients           {figures['slow_clients']}",
        f"  garbage requests       {figures['garbage_requests']}",
        f"  handler faults raised  {figures['handler_faults']}",
        f"  generators             opened {figures['generators_opened']}"
        f" / closed {figures['generators_closed']}",
        f"  server RSS             warm {figures['rss_warm_kib']} KiB"
        f" / end {figures['rss_end_kib']} KiB ({figures['rss_change']:+.1%})",
        f"  blog rows              acknowledged {figures['rows_acknowledged']}"
        f" / written {figures['rows_written']}",
    ]
    for problem in figures["problems"]:
        lines.append(f"  unexpected: {problem}")
    for name, passed in figures["checks"].items():
        lines.append(f"  [{'ok' if passed else 'FAIL'}] {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="soak time (default 120)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = soak(args.seconds)
    print(json.dumps(figures) if args.json else report(figures), flush=True)
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
