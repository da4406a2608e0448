"""Every benchmark app answers the three benchmark requests, with the same JSON.

CI does not run the benchmarks (slow, noisy) but runs this, so an app that
drifts from the others is caught before its numbers are compared. The peers
(flask, falcon, bottle) come from ``benchmarks/requirements.txt``; a missing one
fails here rather than skipping, so CI cannot quietly compare fewer apps.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from microroute.testing import TestClient

# `benchmarks` is not installed: import it from the checkout, as
# `python -m benchmarks` does, whichever way pytest was started.
REPO = str(Path(__file__).resolve().parents[1])
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from benchmarks.apps import APPS, ENDPOINTS, AppSpec, Endpoint, load  # noqa: E402


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
