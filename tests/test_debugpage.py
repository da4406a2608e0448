"""The debug page: App(debug=True)'s 500 as a browser and as an API client see it."""

from __future__ import annotations

from microroute import App
from microroute.testing import TestClient

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def lookup(table, key):
    return table[key]


def debug_client(router) -> TestClient:
    @router.get("/boom")
    def boom():
        return lookup({}, "missing")

    @router.get("/live")
    def live(request):
        return lookup({}, request.path)

    return TestClient(App(router, debug=True))


def test_an_api_client_gets_json_whose_traceback_starts_at_the_handler(router):
    response = debug_client(router).get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "Internal Server Error"
    lines = body["traceback"].splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert "test_debugpage.py" in lines[1] and "in boom" in lines[1]
    assert "microroute" not in body["traceback"]
    # A static build that failed and was run live: the build is not shown as the cause.
    assert "BuildFailed" not in body["traceback"]
    assert lines[-1] == "KeyError: 'missing'"


def test_a_browser_gets_the_page_with_no_script(router):
    client = debug_client(router)
    for path, handler in (("/boom", "boom"), ("/live", "live")):
        response = client.get(path, headers=BROWSER)
        assert response.status_code == 500
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert response.headers["Cache-Control"] == "no-store"
        page = response.text
        assert "<h1>KeyError</h1>" in page
        assert "<script" not in page and "__debugger__" not in page
        assert "test_debugpage.py" in page and "lookup" in page
        functions = [
            part.split("</code>", 1)[0] for part in page.split('<code class="function">')[1:]
        ]
        assert functions == [handler, "lookup"]  # the handler's frame first, none of ours


def test_without_debug_nothing_of_it_shows(router):
    router.get("/boom")(lambda: lookup({}, "x"))
    response = TestClient(App(router)).get("/boom", headers=BROWSER)
    assert response.json() == {"error": "Internal Server Error"}
