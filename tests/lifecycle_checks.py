"""What the lifecycle seam must show, checked the same way in-process and on every server.

Each check takes a ``requests.Session``-like client and the base URL of an
app built from ``tests/e2e/apps/lifecycle_app.py``; the in-process test passes
the TestClient, the e2e test a session on a real server.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

TIMEOUT = 10


def tag() -> str:
    return uuid.uuid4().hex[:12]


def records(client: Any, base: str, name: str, count: int = 1) -> list[dict[str, Any]]:
    """The observer's records of the requests tagged *name*, once *count* have ended."""
    deadline = time.monotonic() + 5
    while True:
        found: list[dict[str, Any]] = client.get(f"{base}/records/{name}", timeout=TIMEOUT).json()[
            "records"
        ]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def check_dynamic_request(client: Any, base: str) -> None:
    name = tag()
    response = client.get(f"{base}/items/7", headers={"X-Tag": name}, timeout=TIMEOUT)
    assert response.status_code == 200
    # The context the observer set at the start is current in the handler.
    assert response.json() == {"id": "7", "tag": name}
    assert response.headers["X-Observed"] == name
    (record,) = records(client, base, name)
    assert record["route"] == "/items/[id]"
    assert record["path"] == "/items/7"
    assert record["method"] == "GET"
    assert record["status"] == 200
    assert record["bytes"] == len(response.content)
    assert record["completed"] is True
    assert record["disconnected"] is False
    assert record["moments"] == ["started", "routed /items/[id]", "responding 200", "ended"]
    assert record["duration_ms"] >= 0


def check_stream_ends_at_its_last_chunk(client: Any, base: str) -> None:
    name = tag()
    response = client.get(f"{base}/stream", headers={"X-Tag": name}, timeout=TIMEOUT)
    # Every chunk of the stream runs in the request's context.
    assert response.text == f"first:{name}\nsecond:{name}\n"
    (record,) = records(client, base, name)
    assert record["route"] == "/stream"
    assert record["bytes"] == len(response.content)
    assert record["completed"] is True


def check_static_hits_are_observed(client: Any, base: str) -> None:
    first, second = tag(), tag()
    client.get(f"{base}/static", headers={"X-Tag": first}, timeout=TIMEOUT)
    response = client.get(f"{base}/static", headers={"X-Tag": second}, timeout=TIMEOUT)
    assert response.headers["X-Microroute-Cache"] == "HIT"
    assert response.headers["X-Observed"] == second
    (record,) = records(client, base, second)
    assert record["route"] == "/static"
    assert record["status"] == 200
    assert record["bytes"] == len(response.content)


def check_unmatched_and_early_errors(client: Any, base: str) -> None:
    name = tag()
    missing = client.get(f"{base}/nowhere", headers={"X-Tag": name}, timeout=TIMEOUT)
    assert missing.status_code == 404
    assert missing.headers["X-Observed"] == name
    too_big = client.post(
        f"{base}/upload", data=b"x" * 1000, headers={"X-Tag": name}, timeout=TIMEOUT
    )
    assert too_big.status_code == 413
    assert too_big.headers["X-Observed"] == name
    found = records(client, base, name, count=2)
    assert [(r["route"], r["status"]) for r in found] == [(None, 404), (None, 413)]
    assert found[0]["moments"] == ["started", "responding 404", "ended"]


def check_after_work_sees_the_context(client: Any, base: str) -> None:
    name, key = tag(), tag()
    client.get(f"{base}/after/{key}", headers={"X-Tag": name}, timeout=TIMEOUT)
    deadline = time.monotonic() + 5
    while True:
        seen = client.get(f"{base}/after-seen/{key}", timeout=TIMEOUT).json()["seen"]
        if seen != "nothing yet" or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert seen == name
