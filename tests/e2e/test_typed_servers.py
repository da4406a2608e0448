"""Typed handlers on real servers: examples/typed_api.py over HTTP, and its docs in Chromium.

The example is served by each server kind in turn (the ``launch`` fixture), and
Schemathesis checks it against its own OpenAPI document.
The docs page is opened in headless Chromium (Debian's package, driven by
Playwright); the test reads the operations from the rendered page. If the
browser cannot start, the test fails: it never skips.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from playwright.sync_api import Browser, sync_playwright
from servers import EXAMPLES, Target
from test_browser_cors import CHROMIUM_ARGS, chromium_path

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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=chromium_path(), args=CHROMIUM_ARGS, timeout=30_000
            )
        except Exception as exc:  # the browser must start: fail, never skip
            pytest.fail(f"headless Chromium did not start: {exc}")
        yield launched
        launched.close()


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
    assert bad.json()["detail"][0]["loc"][0] == "body"
    assert requests.get(f"{typed_server.url}/books/abc", timeout=10).status_code == 404


@pytest.mark.browser
def test_the_docs_page_lists_the_operations_in_chromium(
    browser: Browser, typed_server: Server
) -> None:
    context = browser.new_context()
    blocked: list[str] = []
    try:
        page = context.new_page()
        # Any request the page makes beyond itself would show here.
        page.on("request", lambda r: None if r.url.endswith("/docs") else blocked.append(r.url))
        page.goto(f"{typed_server.url}/docs", timeout=15_000)
        rows: list[Any] = page.evaluate(
            """() => [...document.querySelectorAll("tr.operation")].map(
                row => [row.cells[0].innerText, row.cells[1].innerText, row.cells[2].innerText])"""
        )
        title = page.title()
    finally:
        context.close()
    assert title == "microroute app"
    assert [row[:2] for row in rows] == [
        ["GET", "/books"],
        ["POST", "/books"],
        ["GET", "/books/{book_id}"],
        ["DELETE", "/books/{book_id}"],
    ]
    assert rows[1][2] == "Add a book to a shelf."
    assert [url for url in blocked if not url.endswith("/favicon.ico")] == []


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
