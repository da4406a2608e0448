"""CORS and cookies in a real browser: headless Chromium calls the API cross-origin.

Three real server processes: the API (examples/auth/api.py), served by each
server kind in turn (``microroute run``, ``gunicorn -k gevent``, ``gunicorn -k
microroute.gunicorn.Worker``), the page on an allowed origin, and the same page on
an origin the API does not allow (both ``microroute run``).
Chromium (Debian's package, driven by Playwright) enforces CORS as browsers do,
so a pass means the headers are right, not just present. If the browser cannot
start, the test fails: it never skips.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Browser, sync_playwright
from servers import free_port

if TYPE_CHECKING:
    from servers import Launcher, Server

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no calls to the outside world
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "Debian's chromium is not installed (apt-get install chromium); .ci/run does it"
        )
    return path


@pytest.fixture(scope="module")
def servers(spawn: Callable[..., Server], launch: Launcher) -> dict[str, Server]:
    from servers import EXAMPLES, Target

    allowed_port = free_port()
    api = launch.start(
        Target("auth-api", run="examples/auth/api.py", wsgi="api:app", chdir=EXAMPLES / "auth"),
        fresh=True,
        env={
            "AUTH_ALLOWED_ORIGINS": f"http://127.0.0.1:{allowed_port}",
            "MICROROUTE_SECRET_KEY": "browser-test",
        },
    )
    api_url = api.url
    return {
        "api": api,
        "allowed": spawn("examples/auth/page.py", allowed_port, {"API_URL": api_url}),
        "blocked": spawn("examples/auth/page.py", free_port(), {"API_URL": api_url}),
    }


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


def run_in_page(browser: Browser, page_url: str, script: str) -> Any:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(page_url, timeout=15_000)
        return page.evaluate(script)
    finally:
        context.close()


def test_allowed_origin_logs_in_and_the_cookie_round_trips(
    browser: Browser, servers: dict[str, Server]
) -> None:
    result = run_in_page(
        browser,
        servers["allowed"].url,
        """async () => ({
            before: await demo.me(),
            login: await demo.login("ann"),
            me: await demo.me(),
            logout: await demo.logout(),
            after: await demo.me(),
        })""",
    )
    assert result["before"] == {"status": 401, "body": {"error": "Not logged in"}}
    assert result["login"] == {"status": 200, "body": {"user": "ann"}}
    # The browser stored the API's signed session cookie and sent it back.
    assert result["me"] == {"status": 200, "body": {"user": "ann"}}
    assert result["logout"]["status"] == 204
    assert result["after"]["status"] == 401


def test_disallowed_origin_is_blocked_by_the_browser(
    browser: Browser, servers: dict[str, Server]
) -> None:
    result = run_in_page(
        browser,
        servers["blocked"].url,
        """async () => ({login: await demo.login("eve"), me: await demo.me()})""",
    )
    # The preflight is refused, and the simple GET's response is unreadable.
    assert "Failed to fetch" in result["login"].get("error", "")
    assert "Failed to fetch" in result["me"].get("error", "")


def test_the_page_itself_loads(browser: Browser, servers: dict[str, Server]) -> None:
    title = run_in_page(browser, servers["allowed"].url, "() => document.title")
    assert title == "microroute auth demo"
