"""Every benchmark app answers the three benchmark requests, with the same JSON.

CI does not run the benchmarks (slow, noisy) but runs this, so an app that
drifts from the others is caught before its numbers are compared. The peers
(flask, falcon, bottle) come from ``benchmarks/requirements.txt``, the ASGI ones
(Starlette, FastAPI) from ``benchmarks/requirements-servers.txt``; a missing one
fails here rather than skipping, so CI cannot quietly compare fewer apps.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from microroute.testing import TestClient

# `benchmarks` is not installed: import it from the checkout, as
# `python -m benchmarks` does, whichever way pytest was started.
REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from benchmarks.apps import (  # noqa: E402
    APPS,
    APPS_BY_KEY,
    ASGI_APPS,
    ENDPOINTS,
    IO,
    IO_APPS,
    AppSpec,
    Endpoint,
    load,
)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.key)
@pytest.mark.parametrize("spec", APPS, ids=lambda s: s.key)
def test_app_answers_endpoint(spec: AppSpec, endpoint: Endpoint) -> None:
    with TestClient(load(spec)) as client:
        response = client.request(
            endpoint.method,
            endpoint.path,
            data=endpoint.body or None,
            headers={"Content-Type": "application/json"} if endpoint.body else None,
        )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == endpoint.expected
    # The same bytes from every app (Flask adds a trailing newline to JSON).
    assert response.content.rstrip(b"\n") == endpoint.expected_bytes


@pytest.mark.parametrize("spec", APPS, ids=lambda s: s.key)
def test_app_answers_unknown_path_with_404(spec: AppSpec) -> None:
    with TestClient(load(spec)) as client:
        assert client.get("/nowhere").status_code == 404


def test_users_id_is_the_path_string() -> None:
    """``/users/007`` keeps its zeros: no app converts the id to an int."""
    for spec in APPS:
        with TestClient(load(spec)) as client:
            assert client.get("/users/007").json() == {"id": "007"}, spec.key


@pytest.mark.parametrize("key", IO_APPS)
def test_io_blocks_20_ms_then_answers(key: str) -> None:
    """``benchmarks.servers``'s ``/io``: a sync handler waiting 20 ms, the same bytes."""
    with TestClient(load(APPS_BY_KEY[key])) as client:
        started = time.perf_counter()
        response = client.get(IO.path)
        assert time.perf_counter() - started >= 0.02
    assert response.status_code == 200
    assert response.content == IO.expected_bytes


def _asgi(app: Any, endpoint: Endpoint) -> tuple[int, dict[bytes, bytes], bytes]:
    """One request through an ASGI app, as a server would make it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": endpoint.method,
        "scheme": "http",
        "path": endpoint.path,
        "raw_path": endpoint.path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": endpoint.body, "more_body": False}

    async def send(event: dict[str, Any]) -> None:
        sent.append(event)

    asyncio.run(app(scope, receive, send))
    start = next(e for e in sent if e["type"] == "http.response.start")
    body = b"".join(e.get("body", b"") for e in sent if e["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


@pytest.mark.parametrize("endpoint", [*ENDPOINTS, IO], ids=lambda e: e.key)
@pytest.mark.parametrize("spec", ASGI_APPS, ids=lambda s: s.key)
def test_asgi_peer_answers_endpoint(spec: AppSpec, endpoint: Endpoint) -> None:
    """Starlette and FastAPI (``benchmarks.servers``, on uvicorn) send the same bytes."""
    status, headers, body = _asgi(load(spec), endpoint)
    assert status == 200, body
    assert headers[b"content-type"].startswith(b"application/json")
    assert body == endpoint.expected_bytes
