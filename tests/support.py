"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from microroute.testing import TestClient

CACHE = "X-Microroute-Cache"


def wait_for(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Poll *condition* until it is true, or fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met after {timeout}s")
        time.sleep(0.01)


def row(client: TestClient, path: str) -> dict[str, str]:
    """The ``route_table()`` row of *path*."""
    return next(r for r in client.app.route_table() if r["path"] == path)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Stop a process this test session started: terminate, wait, kill if it hangs."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


REDIS_READY_TIMEOUT = 10.0


def start_redis(
    workdir: Path, port: int | None = None, *options: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a real ``redis-server`` on a free (or the given) 127.0.0.1 port.

    *options* go to ``redis-server`` after the defaults (``--cluster-enabled``, ``yes``).

    No fake and no skip: without the Debian package ``redis-server`` the tests
    that need it fail, saying what to install. The caller stops it by PID.
    """
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: apt-get install redis-server")
    if port is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    log = workdir / f"redis-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir), *options],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=1)
    deadline = time.monotonic() + REDIS_READY_TIMEOUT
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"redis-server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if client.ping():
                    return process, url
            except redis.RedisError:
                if time.monotonic() > deadline:
                    stop_process(process)
                    pytest.fail(f"redis-server not answering PING:\n{log.read_text()}")
                time.sleep(0.02)
    finally:
        client.close()
