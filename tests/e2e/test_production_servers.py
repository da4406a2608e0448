"""Request ids and access records on every server kind (issue 22)."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from servers import APPS, REPO, Launcher, Server, Target

ID = "X-Request-ID"
TIMEOUT = 10
PRODUCTION_APP = Target(
    "production",
    run=str((APPS / "production_app.py").relative_to(REPO)),
    wsgi="production_app:app",
    chdir=APPS,
)


@pytest.fixture
def server(launch: Launcher, tmp_path_factory: pytest.TempPathFactory) -> tuple[Server, Path]:
    log = tmp_path_factory.mktemp("production") / "records.jsonl"
    return launch.start(PRODUCTION_APP, fresh=True, env={"PRODUCTION_LOG": str(log)}), log


def records(log: Path, request: str, count: int) -> list[dict[str, Any]]:
    """The JSON records whose request id is *request*, once *count* are there."""
    deadline = time.monotonic() + 5
    while True:
        lines = log.read_text().splitlines() if log.exists() else []
        found = [r for r in map(json.loads, lines) if r.get("request_id") == request]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_every_response_carries_a_request_id(server: tuple[Server, Path]) -> None:
    """README: "Every response carries it: a cache HIT, an early 413, a 404, a 500"."""
    url = server[0].url
    requests.get(f"{url}/static", timeout=TIMEOUT)
    answers = [
        requests.get(f"{url}/static", timeout=TIMEOUT),
        requests.get(f"{url}/nowhere", timeout=TIMEOUT),
        requests.post(f"{url}/upload", data=b"x" * 100, timeout=TIMEOUT),
        requests.get(f"{url}/boom", timeout=TIMEOUT),
    ]
    assert [a.status_code for a in answers] == [200, 404, 413, 500]
    assert answers[0].headers["X-Microroute-Cache"] == "HIT"
    ids = [a.headers[ID] for a in answers]
    assert all(re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]+", i) for i in ids), ids
    assert len(set(ids)) == 4
    given = "client-" + uuid.uuid4().hex
    for path in ("/static", "/nowhere", "/boom"):
        assert requests.get(f"{url}{path}", headers={ID: given}, timeout=TIMEOUT).headers[ID] == (
            given
        )
    bad = requests.get(f"{url}/static", headers={ID: "no good"}, timeout=TIMEOUT)
    assert bad.headers[ID] != "no good"


def test_records_of_a_request_carry_its_id(server: tuple[Server, Path]) -> None:
    """README: every log record made while the request is served "(in its handler, its
    stream, its `after()` work ...) has a `request_id` attribute"; the access record
    carries its fields."""
    url, log = server[0].url, server[1]
    first, second, third = (f"r-{uuid.uuid4().hex[:10]}" for _ in range(3))
    got = requests.get(f"{url}/items/7", headers={ID: first}, timeout=TIMEOUT)
    assert got.json() == {"id": "7", "request_id": first}
    assert requests.get(f"{url}/stream", headers={ID: second}, timeout=TIMEOUT).text == "a\nb\n"
    assert requests.get(f"{url}/boom", headers={ID: third}, timeout=TIMEOUT).status_code == 500

    mine = records(log, first, 3)
    messages = {r["message"] for r in mine if r["name"] == "myapp"}
    assert messages == {"in the handler", "in after() work"}
    (access,) = [r for r in mine if r["name"] == "microroute.access"]
    assert (access["method"], access["path"], access["route"]) == ("GET", "/items/7", "/items/[id]")
    assert (access["status"], access["bytes"], access["cache"]) == (200, len(got.content), None)
    assert access["client"] == "127.0.0.1" and access["disconnected"] is False
    assert access["duration_ms"] >= 0

    streamed = records(log, second, 3)
    assert {r["message"] for r in streamed if r["name"] == "myapp"} == {
        "before the first chunk",
        "in the stream",
    }
    (access,) = [r for r in streamed if r["name"] == "microroute.access"]
    assert (access["route"], access["bytes"]) == ("/stream", 4)

    failed = records(log, third, 2)
    assert any(
        r["name"] == "microroute" and r["levelname"] == "ERROR" and "RuntimeError" in r["message"]
        for r in failed
    ), failed
