"""Memory per connection is bounded by the limits, whatever the client's segmentation.

Issue 21: a client pipelining small GETs on one connection, each TCP segment
ending in the middle of the next request's head, made the llhttp server keep
every byte read since that head began: 40 MiB of requests grew the process
by ~45 MiB. Here a client sends 16 MiB that way (and reads the answers); the
serving process's resident memory, read from ``/proc/PID/status``, may grow by
a few MiB at most while the connection is still open.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from servers import DEPLOY

if TYPE_CHECKING:
    from servers import Launcher, Server

pytestmark = pytest.mark.e2e

#: Bytes of requests sent; the long run: ``MICROROUTE_MEMORY_MIB=200 pytest ... -s``.
SENT = int(os.environ.get("MICROROUTE_MEMORY_MIB", "16")) * 1024 * 1024
#: Resident memory the process may gain: far below SENT, far above what one read,
#: one request line and one header section (the limits) can hold.
BOUND = 6 * 1024 * 1024
#: One request, padded to about 2 KiB so that 16 MiB are ~8,000 requests.
REQUEST = b"GET /quick HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 2000 + b"\r\n\r\n"
STATUS = b"HTTP/1.1 200"


def rss(pid: int) -> int:
    """Resident set size of *pid*, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def serving_pid(server: Server) -> int:
    """The process that serves the connections: ``microroute run`` itself, or gunicorn's worker."""
    if server.kind == "microroute":
        return server.process.pid
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == server.process.pid:
                return int(entry)
    raise AssertionError(f"no worker under gunicorn {server.process.pid}")


def segments() -> list[bytes]:
    """The stream cut so that every segment ends half-way through a request's head."""
    stream = REQUEST * (SENT // len(REQUEST))
    step = 8 * len(REQUEST)
    half = len(REQUEST) // 2
    cuts = list(range(half, len(stream), step))
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


def test_a_pipeline_cut_mid_head_keeps_memory_bounded(
    launch: Launcher, capsys: pytest.CaptureFixture[str]
) -> None:
    server = launch.start(DEPLOY, fresh=True)
    pid = serving_pid(server)
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(REQUEST * 200)  # warm up: every allocation a request needs is made
        answers = 0
        received = bytearray()
        while answers < 200:
            received += sock.recv(1 << 20)
            answers = received.count(b"HTTP/1.1 200")
        before = rss(pid)
        expected = SENT // len(REQUEST)

        def read_all() -> None:
            nonlocal answers
            count, tail = 0, b""
            while count < expected:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    return
                data = tail + chunk
                count += data.count(STATUS)
                # Too short to hold a whole status line again: none is counted twice.
                tail = data[-(len(STATUS) - 1) :]
            answers = count

        reader = threading.Thread(target=read_all)
        reader.start()
        peak = before
        for segment in segments():
            sock.sendall(segment)
            peak = max(peak, rss(pid))
        reader.join(timeout=60 + SENT / 2**20)
        time.sleep(0.2)
        peak = max(peak, rss(pid))
        assert answers == expected, f"{answers} of {expected} answered"
    grown = peak - before
    with capsys.disabled():
        print(f"\n{server.kind}: {SENT / 2**20:.0f} MiB sent, RSS grew {grown / 2**20:.2f} MiB")
    assert grown < BOUND, f"{server.kind} grew {grown / 2**20:.1f} MiB"
