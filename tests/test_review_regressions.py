"""Regressions from a review of the whole request path: each test is one bug fixed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from support import CACHE

from microroute import App, Router, abort, cookies, cors, redirect
from microroute.testing import TestClient


def test_discovered_middleware_runs_around_cache_hits(make_tree: Any, tmp_path: Path) -> None:
    app_dir = make_tree(
        tmp_path,
        {
            "app/api/hello/route.py": "def GET():\n    return {'secret': 'data'}\n",
            "app/middleware.py": (
                "from microroute import abort\n"
                "def middleware(request, call_next):\n"
                "    if request.headers.get('Authorization') != 'Bearer ok':\n"
                "        abort(401, 'Unauthorized')\n"
                "    return call_next(request)\n"
            ),
        },
    )
    client = TestClient(App(app_dir=app_dir))
    assert client.get("/api/hello", headers={"Authorization": "Bearer ok"}).status_code == 200
    second = client.get("/api/hello")
    assert second.status_code == 401
    assert second.json() == {"error": "Unauthorized"}


def test_abort_and_redirect_inside_error_handlers(router: Router) -> None:
    @router.get("/boom")
    def boom() -> None:
        raise KeyError("x")

    app = App(router)

    @app.errorhandler(KeyError)
    def missing(exc: BaseException) -> None:
        abort(404, "no such thing")

    @app.errorhandler(404)
    def elsewhere(exc: BaseException) -> None:
        if "no such thing" not in str(exc):
            redirect("/home")

    client = TestClient(app)
    assert client.get("/boom").json() == {"error": "no such thing"}
    moved = client.get("/nothing", allow_redirects=False)
    assert moved.status_code == 307
    assert moved.headers["Location"] == "http://testserver/home"


def test_an_error_handlers_fallback_is_not_cached(router: Router) -> None:
    up = {"db": False}

    @router.get("/posts")
    def posts() -> dict[str, Any]:
        if not up["db"]:
            raise ConnectionError("db down")
        return {"posts": [1, 2, 3]}

    app = App(router)

    @app.errorhandler(ConnectionError)
    def degraded(exc: BaseException) -> dict[str, Any]:
        return {"posts": [], "degraded": True}

    client = TestClient(app)
    assert client.get("/posts").json()["degraded"] is True
    up["db"] = True
    fresh = client.get("/posts")
    assert fresh.json() == {"posts": [1, 2, 3]}
    assert fresh.headers[CACHE] == "MISS"


def test_middleware_using_cookies_does_not_change_the_handlers_caching(router: Router) -> None:
    runs = {"plain": 0, "static": 0}

    @router.get("/plain")
    def plain() -> dict[str, int]:
        runs["plain"] += 1
        return {"n": runs["plain"]}

    @router.get("/fs", dynamic="force-static")
    def fs() -> dict[str, Any]:
        runs["static"] += 1
        return {"cookies": cookies().all()}

    @router.get("/err", dynamic="error")
    def err() -> dict[str, bool]:
        return {"ok": True}

    app = App(router)

    def visits(request: Any, call_next: Any) -> Any:
        cookies().set("visited", "1")
        response = call_next(request)
        response.headers["X-User"] = cookies().get("user", "anon")
        return response

    app.use(visits)
    client = TestClient(app)
    client.cookies.set("user", "alice")
    for _ in range(2):
        assert client.get("/plain").json() == {"n": 1}
    assert next(r for r in app.route_table() if r["path"] == "/plain")["mode"] == "static"
    static = client.get("/fs")
    assert static.json() == {"cookies": {}}  # the handler sees none of the request's cookies
    assert static.headers["X-User"] == "alice"  # the middleware, after it, sees them
    assert "visited=1" in static.headers["Set-Cookie"]
    client.get("/fs")
    assert runs["static"] == 1
    assert client.get("/err").status_code == 200


def test_revalidate_path_with_a_non_ascii_path(router: Router) -> None:
    runs = {"n": 0}

    @router.get("/blog/[slug]")
    def post(slug: str) -> dict[str, Any]:
        runs["n"] += 1
        return {"slug": slug, "run": runs["n"]}

    app = App(router)
    client = TestClient(app)
    client.get("/blog/café")
    assert app.revalidate_path("/blog/café", expire=True) == 1
    assert client.get("/blog/café").json() == {"slug": "café", "run": 2}


def test_a_cache_hit_still_checks_content_length(router: Router) -> None:
    @router.get("/posts")
    def posts() -> list[int]:
        return [1]

    client = TestClient(App(router, max_body_size=10))
    assert client.get("/posts").status_code == 200
    too_big = client.get("/posts", data=b"x" * 11)
    assert too_big.status_code == 413


def test_cors_varies_on_origin_even_without_one(router: Router) -> None:
    @router.get("/data")
    def data() -> dict[str, int]:
        return {"a": 1}

    app = App(router)
    app.use(cors(["https://a.example"]))
    client = TestClient(app)
    assert client.get("/data").headers["Vary"] == "Origin"
    assert client.get("/data", headers={"Origin": "https://b.example"}).headers["Vary"] == "Origin"
