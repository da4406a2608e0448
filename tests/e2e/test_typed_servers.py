"""Typed handlers on real servers: examples/typed_api.py over HTTP.

The example is served by each server kind in turn (the ``launch`` fixture), and
Schemathesis checks it against its own OpenAPI document. Its docs page is
opened in headless Chromium by ``test_docs_browser.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
from servers import EXAMPLES, Target

if TYPE_CHECKING:
    from servers import Launcher, Server

pytestmark = [pytest.mark.e2e]

TYPED = Target("typed-api", run="examples/typed_api.py", wsgi="typed_api:app", chdir=EXAMPLES)

BOOK = {
    "title": "Dune",
    "author": "Frank Herbert",
    "year": 1965,
    "isbn": "9780441013593",
    "tags": ["sf", "classic"],
    "rating": 4.5,
}


@pytest.fixture
def typed_server(launch: Launcher) -> Server:
    return launch.start(TYPED)


def test_a_typed_body_is_validated_over_http(typed_server: Server) -> None:
    created = requests.post(f"{typed_server.url}/books?shelf=science", json=BOOK, timeout=10)
    assert created.status_code == 201, created.text
    book = created.json()
    assert book["shelf"] == "science" and book["year"] == 1965
    fetched = requests.get(f"{typed_server.url}/books/{book['id']}", timeout=10)
    assert fetched.json() == book
    bad = requests.post(
        f"{typed_server.url}/books", json={**BOOK, "year": "soon", "isbn": "x"}, timeout=10
    )
    assert bad.status_code == 422
    assert bad.json()["error"] == "Invalid request"
    assert [(p["loc"], p["type"]) for p in bad.json()["detail"]] == [
        (["body", "year"], "int_parsing"),
        (["body", "isbn"], "string_pattern_mismatch"),
    ]
    form = requests.post(f"{typed_server.url}/books", data={"title": "Dune"}, timeout=10)
    assert form.status_code == 415
    assert requests.get(f"{typed_server.url}/books/abc", timeout=10).status_code == 404


def test_schemathesis_finds_no_failure_from_the_document(
    typed_server: Server, tmp_path: Path
) -> None:
    """Schemathesis, run against the example on a real server from its own document, finds
    no failure: no 5xx, every response matches the documented schema."""
    st = Path(sys.executable).with_name("st")
    result = subprocess.run(
        [
            str(st),
            "run",
            f"{typed_server.url}/openapi.json",
            "--checks=all",
            "--max-examples=25",
            "--seed=16",
            "--request-timeout=10",
            "--generation-database=none",
        ],
        cwd=tmp_path,  # whatever it writes stays out of the repository
        capture_output=True,
        text=True,
        timeout=240,  # bounded: 25 examples a phase, four operations
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
