"""The docs pages in a real browser: Swagger UI works under its strict policy, offline.

Headless Chromium (Debian's package, driven by Playwright) opens ``/docs`` of
``examples/typed_api.py`` served by ``microroute run``: the page renders the
operations grouped by tag, shows a parameter's type, default and limits, and
"Try it out" executes a GET and shows its response. Every request the page
makes is recorded: each must be to the app's own origin, and the browser must
report no error (a Content-Security-Policy violation would be one). If the
browser cannot start, the test fails: it never skips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from servers import Server, free_port
from test_browser_cors import CHROMIUM_ARGS, chromium_path

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TIMEOUT = 15_000  # ms, for each wait on the page


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


@pytest.fixture(scope="module")
def typed_api(spawn: Callable[..., Server]) -> Server:
    return spawn("examples/typed_api.py", free_port())


class Visit:
    """A page, with every request it made and every error the browser reported."""

    def __init__(self, browser: Browser, origin: str) -> None:
        self.origin = origin
        self.context = browser.new_context(viewport={"width": 1200, "height": 1600})
        self.page: Page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on(
            "console",
            lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None,
        )

    def check_same_origin(self) -> None:
        assert self.requests, "the page made no request at all"
        elsewhere = [url for url in self.requests if not url.startswith(self.origin + "/")]
        assert elsewhere == [], f"fetched from outside the app: {elsewhere}"
        assert self.errors == []

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Browser) -> Iterator[Callable[[str], Visit]]:
    visits: list[Visit] = []

    def open_page(origin: str) -> Visit:
        visits.append(Visit(browser, origin))
        return visits[-1]

    yield open_page
    for one in visits:
        one.close()


def operations(page: Page) -> list[list[str]]:
    rows: list[Any] = page.evaluate(
        """() => [...document.querySelectorAll(".opblock-tag-section")].flatMap(section =>
            [...section.querySelectorAll(".opblock")].map(op => [
                section.querySelector(".opblock-tag").dataset.tag,
                op.querySelector(".opblock-summary-method").innerText,
                op.querySelector(".opblock-summary-path").innerText.replace(/\u200b/g, ""),
            ]))"""
    )
    return [list(row) for row in rows]


def test_swagger_ui_renders_the_operations_grouped_by_tag(
    visit: Callable[[str], Visit], typed_api: Server
) -> None:
    """README: 'so the page fetches nothing from another origin and works offline'; and
    Swagger UI at `/docs` with 'the operations grouped by tag'."""
    seen = visit(typed_api.url)
    seen.page.goto(f"{typed_api.url}/docs", timeout=TIMEOUT)
    seen.page.wait_for_selector(".opblock", timeout=TIMEOUT)
    assert seen.page.title() == "Bookshelf"
    assert operations(seen.page) == [
        ["books", "GET", "/books"],
        ["books", "POST", "/books"],
        ["books", "GET", "/books/{book_id}"],
        ["books", "DELETE", "/books/{book_id}"],
    ]
    assert "Books on shelves" in seen.page.inner_text(".info")
    seen.check_same_origin()


def test_try_it_out_executes_a_get_and_shows_the_response(
    visit: Callable[[str], Visit], typed_api: Server
) -> None:
    """README: 'the type, default and limits of each parameter, "Try it out"'."""
    seen = visit(typed_api.url)
    page = seen.page
    page.goto(f"{typed_api.url}/docs#/books/get_books", timeout=TIMEOUT)
    operation = page.locator("#operations-books-get_books")
    operation.locator(".opblock-summary").first.wait_for(timeout=TIMEOUT)
    if not operation.locator(".opblock-body").count():  # the deep link may open it already
        operation.locator(".opblock-summary").first.click()
    limit = operation.locator("tr[data-param-name='limit']")
    limit.wait_for(timeout=TIMEOUT)
    shown = limit.inner_text()
    assert "integer" in shown and "(query)" in shown
    assert "Default value : 10" in shown
    assert "minimum: 1" in shown and "maximum: 100" in shown

    operation.locator(".try-out__btn").click()
    operation.locator("tr[data-param-name='limit'] input").fill("2")
    operation.locator(".execute").click()
    live = operation.locator(".live-responses-table")
    live.wait_for(timeout=TIMEOUT)
    response = live.inner_text()
    assert "200" in response
    assert '"items": []' in response and '"total": 0' in response
    assert f"{typed_api.url}/books?limit=2" in operation.locator(".request-url").inner_text()
    seen.check_same_origin()
    assert any(url.startswith(f"{typed_api.url}/books?limit=2") for url in seen.requests)


def test_declared_security_schemes_authorize_try_it_out(
    visit: Callable[[str], Visit], spawn: Callable[..., Server]
) -> None:
    """README: 'and an *Authorize* button for the security schemes the document
    declares': Authorize, then try it out sends the credentials."""
    server = spawn("tests/e2e/apps/docs_app.py", free_port())
    seen = visit(server.url)
    page = seen.page
    page.goto(f"{server.url}/docs", timeout=TIMEOUT)
    page.locator(".auth-wrapper .authorize").click(timeout=TIMEOUT)
    dialog = page.locator(".dialog-ux")
    assert "token (http, Bearer)" in " ".join(dialog.inner_text().split())
    dialog.locator("input").fill("s3cret")
    dialog.locator(".modal-btn.auth").first.click()
    dialog.locator(".btn-done").click()

    operation = page.locator("#operations-whoami-get_whoami")
    operation.locator(".opblock-summary").first.click()
    operation.locator(".try-out__btn").click()
    operation.locator(".execute").click()
    live = operation.locator(".live-responses-table")
    live.wait_for(timeout=TIMEOUT)
    assert '"authorization": "Bearer s3cret"' in live.inner_text()
    seen.check_same_origin()


def test_the_plain_page_needs_no_script_and_fetches_nothing_else(
    visit: Callable[[str], Visit], spawn: Callable[..., Server], tmp_path: Any
) -> None:
    """`docs_ui="plain"`: the page without script, in a browser: rows, and no request
    beyond the page itself."""
    app = tmp_path / "plain_docs_app.py"
    app.write_text(
        "from microroute import App, Router\n"
        "r = Router()\n"
        "@r.get('/api/items')\n"
        "def items(limit: int = 10):\n"
        "    '''List items.'''\n"
        "    return []\n"
        "app = App(r, docs='/docs', docs_ui='plain', title='Plain')\n"
    )
    server = spawn(str(app), free_port())
    seen = visit(server.url)
    seen.page.goto(f"{server.url}/docs", timeout=TIMEOUT)
    rows: list[Any] = seen.page.evaluate(
        """() => [...document.querySelectorAll("tr.operation")].map(
            row => [row.cells[0].innerText, row.cells[1].innerText, row.cells[2].innerText])"""
    )
    assert rows == [["GET", "/api/items", "List items."]]
    assert seen.page.title() == "Plain"
    assert [url for url in seen.requests if not url.endswith("/favicon.ico")] == [
        f"{server.url}/docs"
    ]
