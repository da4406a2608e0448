"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import subprocess
import time

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
