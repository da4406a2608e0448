"""``App(docs="/docs")``: Swagger UI served by the app, or the page without script.

Through the TestClient: what the pages and their files are, and the headers
that keep them same-origin. ``tests/e2e/test_docs_browser.py`` opens them in
headless Chromium.
"""

from __future__ import annotations

import importlib.util
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pytest

from microroute import App, Router, StartupError
from microroute.docs import swagger_ui_assets
from microroute.targets import load_app
from microroute.testing import TestClient

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "typed_api.py"
GOLDEN = REPO / "tests" / "golden" / "typed_api.openapi.json"


class _Page(HTMLParser):
    """The cells of a page's tables, and everything it would load."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.loads: list[str] = []
        self.inline_script = ""
        self._cell: str | None = None
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self.scripts.append(found)
            self._in_script = True
        for name in ("src", "href"):
            if found.get(name) and tag != "a":
                self.loads.append(str(found[name]))
        if tag == "td":
            self._cell = ""

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell += data
        if self._in_script:
            self.inline_script += data.strip()

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append(self._cell)
            self._cell = None
        if tag == "script":
            self._in_script = False


def parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def example_client() -> TestClient:
    # The example's module is imported once per process by load_app.
    app = load_app(str(EXAMPLE))
    assert isinstance(app, App)
    return TestClient(app)


def items_router() -> Router:
    router = Router()

    @router.get("/api/items")
    def items(  # type: ignore[no-untyped-def]
        limit: Annotated[int, msgspec.Meta(ge=1, le=50)] = 10, tag: list[str] = []  # noqa: B006
    ):
        """List items."""
        return []

    @router.get("/api/users/[user_id]")
    def user(user_id: int):  # type: ignore[no-untyped-def]
        """One user."""
        return {}

    return router


# -- Swagger UI (the default) -----------------------------------------------------


def test_the_docs_page_is_swagger_ui_with_no_inline_script() -> None:
    """README: 'Its start-up script is a file too (`/docs/init.js`): the page has no inline
    script and runs under `Content-Security-Policy: default-src ... script-src ... connect-src'
    -- each of them self."""
    client = example_client()
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    parsed = parse(page.text)
    assert parsed.inline_script == ""  # every script is a file
    assert [s["src"] for s in parsed.scripts] == ["/docs/swagger-ui-bundle.js", "/docs/init.js"]
    assert all(url.startswith("/docs/") for url in parsed.loads), parsed.loads
    assert "<title>Bookshelf</title>" in page.text
    policy = dict(
        part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert "unsafe" not in page.headers["Content-Security-Policy"]


def test_swagger_uis_files_are_the_packages_served_same_origin() -> None:
    """README: 'The app serves those files itself, below `/docs`'."""
    client = example_client()
    folder = swagger_ui_assets()
    for name, content_type in [
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("swagger-ui.css", "text/css; charset=utf-8"),
        ("index.css", "text/css; charset=utf-8"),
        ("favicon-32x32.png", "image/png"),
    ]:
        response = client.get(f"/docs/{name}")
        assert response.status_code == 200, name
        assert response.headers["Content-Type"] == content_type
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.content == (folder / name).read_bytes()
        # Static GETs: cached, with an ETag, so a browser revalidates cheaply.
        etag = response.headers["ETag"]
        assert client.get(f"/docs/{name}", headers={"If-None-Match": etag}).status_code == 304


def test_the_init_script_points_swagger_ui_at_this_apps_document() -> None:
    script = example_client().get("/docs/init.js")
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    config = json.loads(re.search(r"Object\.assign\((\{.*?\}), \{", script.text, re.S)[1])  # type: ignore[index]
    assert config["url"] == "/openapi.json"
    assert config["validatorUrl"] is None  # never asks validator.swagger.io
    assert config["dom_id"] == "#swagger-ui"


def test_a_docs_path_below_the_root_serves_its_files_below_it() -> None:
    client = TestClient(App(items_router(), docs="/api/docs/"))
    parsed = parse(client.get("/api/docs").text)
    assert [s["src"] for s in parsed.scripts] == [
        "/api/docs/swagger-ui-bundle.js",
        "/api/docs/init.js",
    ]
    assert client.get("/api/docs/init.js").status_code == 200
    assert list(client.get("/openapi.json").json()["paths"]) == [
        "/api/items",
        "/api/users/{user_id}",
    ]


def test_without_the_swagger_ui_package_start_up_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README: 'Without the package, `App(docs=...)` stops start-up with an error naming the
    extra'."""
    find_spec = importlib.util.find_spec

    def without_swagger_ui(name: str, *args: Any) -> Any:
        return None if name == "swagger_ui" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_swagger_ui)
    with pytest.raises(StartupError) as raised:
        App(items_router(), docs="/docs")
    assert 'pip install "microroute[docs]"' in str(raised.value)
    assert 'docs_ui="plain"' in str(raised.value)
    App(items_router(), docs="/docs", docs_ui="plain")  # needs nothing


def test_an_unknown_docs_ui_is_a_start_up_error() -> None:
    with pytest.raises(StartupError, match="docs_ui must be one of 'swagger', 'plain'"):
        App(items_router(), docs="/docs", docs_ui="redoc")  # type: ignore[arg-type]


# -- the page without script ------------------------------------------------------


def test_the_plain_page_loads_nothing_and_lists_every_operation() -> None:
    """README: 'serves instead the page without script: written server-side, it loads
    nothing at all (no script, no stylesheet, no CDN)'."""
    router = Router()
    for path in ("/books", "/books/[book_id]"):
        router.add(path, lambda: {}, methods=["GET"])
    client = TestClient(App(router, docs="/docs", docs_ui="plain"))
    page = client.get("/docs")
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none';")
    parsed = parse(page.text)
    assert parsed.scripts == [] and parsed.loads == []
    listed = set(zip(parsed.cells[0::6], parsed.cells[1::6], strict=True))
    assert listed == {("GET", "/books"), ("GET", "/books/{book_id}")}
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs/init.js").status_code == 404


def test_the_plain_page_groups_by_tag_and_shows_types_defaults_and_limits() -> None:
    """README: 'lists every operation grouped by tag with the type, default and limits of
    each parameter, and needs no extra'."""
    app = App(
        items_router(), docs="/docs", docs_ui="plain", title="Shop", description="Buy things."
    )
    page = TestClient(app).get("/docs").text
    assert re.findall(r"<h2>([^<]*)</h2>", page) == ["items", "users", "Schemas"]
    assert "<title>Shop</title>" in page
    assert '<p class="description">Buy things.</p>' in page
    assert (
        '<code class="name">limit</code> <span class="details">'
        "(query, integer, default 10, &gt;= 1, &lt;= 50)</span>"
    ) in page
    assert (
        '<code class="name">tag</code> <span class="details">'
        "(query, array of string, default [])</span>"
    ) in page
    assert (
        '<code class="name">user_id</code> <span class="details">(path, integer, required)</span>'
    ) in page


def test_the_plain_page_escapes_what_it_shows() -> None:
    router = Router()

    def evil() -> dict[str, Any]:
        """<script>alert(1)</script>"""
        return {}

    router.add("/evil", evil, methods=["GET"])
    pages = {
        ui: TestClient(App(router, docs="/docs", docs_ui=ui, title="<img src=x>")).get("/docs")
        for ui in ("plain", "swagger")
    }
    for page in pages.values():
        assert "<script>alert" not in page.text
        assert "<img src=x>" not in page.text
        assert "<title>&lt;img src=x&gt;</title>" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["plain"].text


def test_the_docs_routes_are_not_in_the_document() -> None:
    router = Router()
    router.add("/a", lambda: {}, methods=["GET"])
    for ui in ("plain", "swagger"):
        client = TestClient(App(router, docs="/api-docs", docs_ui=ui))  # type: ignore[arg-type]
        assert list(client.get("/openapi.json").json()["paths"]) == ["/a"]


def test_the_example_serves_its_golden_document() -> None:
    spec = example_client().get("/openapi.json")
    assert spec.headers["Content-Type"] == "application/json"
    assert spec.json() == json.loads(GOLDEN.read_text())
