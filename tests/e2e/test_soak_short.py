"""The soak (benchmarks/soak.py) for ~10 seconds: misbehaving clients lose nothing.

A real ``microroute run`` serves benchmarks/soak_app.py while clients hang up
mid-stream, send slowly, send garbage and hit a handler that raises. The soak
itself checks everything the issue asks for and exits non-zero if a check fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SECONDS = 10


@pytest.fixture(scope="module")
def figures() -> dict:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "soak.py"), "--seconds", str(SECONDS), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=SECONDS + 90,
    )
    assert done.stdout.strip(), done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["returncode"] = done.returncode
    return result


def test_every_check_passes(figures):
    """README: 'benchmarks/soak.py a two-minute soak under misbehaving clients'.

    Here a short one.
    """
    assert figures["checks"] and all(figures["checks"].values()), figures
    assert figures["returncode"] == 0


def test_the_faults_were_injected(figures):
    assert figures["requests_served"] > 100
    assert figures["disconnects_injected"] > 0
    assert figures["slow_clients"] > 0
    assert figures["garbage_requests"] > 0
    assert figures["handler_faults"] > 0


def test_every_generator_opened_was_closed(figures):
    assert figures["generators_opened"] > 0
    assert figures["generators_closed"] == figures["generators_opened"]


def test_no_acknowledged_row_is_lost(figures):
    assert figures["rows_acknowledged"] > 0
    assert figures["rows_written"] == figures["rows_acknowledged"]


def test_memory_returns_to_its_warm_baseline(figures):
    assert abs(figures["rss_change"]) <= 0.10
