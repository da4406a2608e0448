"""Scoped middleware: ``router.use(mw)`` and a ``middleware.py`` in a folder of ``app/``."""

from __future__ import annotations

import pytest

from microroute import App, Request, Router, StartupError, abort, cors
from microroute.testing import TestClient


def recorder(calls: list[str], name: str):
    """A middleware that records its way in and out, and tags the response."""

    def mw(request, call_next):
        calls.append(f"{name} in")
        response = call_next(request)
        calls.append(f"{name} out")
        response.headers[f"X-{name}"] = "1"
        return response

    mw.__qualname__ = name
    return mw


# -- router.use ------------------------------------------------------------------------------


def test_a_routers_middleware_wraps_only_its_routes_inside_the_apps():
    calls: list[str] = []
    api, site = Router(), Router()
    api.use(recorder(calls, "api"))

    @api.get("/api/x")
    def x(request):
        calls.append("handler")
        return "x"

    @site.get("/page")
    def page(request):
        calls.append("page")
        return "page"

    app = App(api, site)
    app.use(recorder(calls, "app"))
    client = TestClient(app)
    response = client.get("/api/x")
    assert calls == ["app in", "api in", "handler", "api out", "app out"]
    assert response.headers["X-api"] == response.headers["X-app"] == "1"
    calls.clear()
    response = client.get("/page")
    assert calls == ["app in", "page", "app out"]
    assert "X-api" not in response.headers


def test_included_routers_keep_theirs_inside_their_parents():
    calls: list[str] = []
    api, admin = Router(), Router()
    api.use(recorder(calls, "api"))
    admin.use(recorder(calls, "admin"))
    admin.use(recorder(calls, "audit"))

    @admin.get("/users")
    def users(request):
        calls.append("handler")
        return []

    api.include(admin, prefix="/admin")
    client = TestClient(App(api))
    assert client.get("/admin/users").status_code == 200
    assert calls == [
        "api in",
        "admin in",
        "audit in",
        "handler",
        "audit out",
        "admin out",
        "api out",
    ]


def test_a_routers_middleware_follows_it_into_another_apps_prefix():
    calls: list[str] = []
    admin, root = Router(), Router()
    admin.use(recorder(calls, "admin"))
    admin.get("/stats")(lambda request: {"n": 1})
    root.include(admin, prefix="/v2/admin")
    root.get("/")(lambda request: "home")
    client = TestClient(App(root))
    assert client.get("/v2/admin/stats").headers["X-admin"] == "1"
    assert "X-admin" not in client.get("/").headers


def test_scoped_middleware_runs_on_every_cache_hit_of_its_routes():
    """A static GET's HIT skips routing on the fast path; not one with its own middleware."""
    calls: list[str] = []
    api, site = Router(), Router()
    api.use(recorder(calls, "api"))
    built: list[int] = []

    @api.get("/api/catalog")
    def catalog():
        built.append(1)
        return {"items": [1, 2]}

    @site.get("/about")
    def about():
        return "about"

    client = TestClient(App(api, site))
    seen = [client.get("/api/catalog").headers["X-Microroute-Cache"] for _ in range(3)]
    assert seen == ["MISS", "HIT", "HIT"]
    assert built == [1]
    assert calls == ["api in", "api out"] * 3
    assert client.get("/about").headers["X-Microroute-Cache"] == "MISS"
    assert client.get("/about").headers["X-Microroute-Cache"] == "HIT"
    assert calls == ["api in", "api out"] * 3  # the other route's HITs never reach it


def test_scoped_middleware_may_refuse_a_cached_route():
    api = Router()

    @api.use
    def staff_only(request, call_next):
        if request.headers.get("X-Staff") != "yes":
            abort(403)
        return call_next(request)

    api.get("/admin/report")(lambda: {"total": 3})
    client = TestClient(App(api))
    assert client.get("/admin/report", headers={"X-Staff": "yes"}).json() == {"total": 3}
    assert (
        client.get("/admin/report", headers={"X-Staff": "yes"}).headers["X-Microroute-Cache"]
        == "HIT"
    )
    refused = client.get("/admin/report")
    assert refused.status_code == 403
    assert refused.json() == {"error": "Forbidden"}


def test_head_options_and_405_of_its_routes_pass_through_it():
    calls: list[str] = []
    api = Router()
    api.use(recorder(calls, "api"))
    api.get("/x")(lambda request: "x")
    client = TestClient(App(api))
    for method, status in (("HEAD", 200), ("OPTIONS", 204), ("DELETE", 405)):
        calls.clear()
        response = client.request(method, "/x")
        assert response.status_code == status
        assert calls == ["api in", "api out"], method
        assert response.headers["X-api"] == "1"


def test_a_404_passes_only_the_apps_middleware():
    calls: list[str] = []
    api = Router()
    api.use(recorder(calls, "api"))
    api.get("/api/x")(lambda: "x")
    assert TestClient(App(api)).get("/api/nope").status_code == 404
    assert calls == []


def test_scoped_cors_answers_its_routes_preflights():
    api, site = Router(), Router()
    api.use(cors(allow_origins=["https://app.example"]))
    api.post("/api/items")(lambda request: ({"ok": True}, 201))
    site.post("/form")(lambda request: "ok")
    client = TestClient(App(api, site))
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
    }
    answered = client.options("/api/items", headers=preflight)
    assert answered.status_code == 204
    assert answered.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Access-Control-Allow-Origin" not in client.options("/form", headers=preflight).headers


def test_a_scoped_middleware_may_pass_on_a_request_of_its_own():
    api = Router()

    @api.use
    def tag(request, call_next):
        environ = dict(request.environ, HTTP_X_TAGGED="by middleware")
        return call_next(Request(environ))

    @api.get("/x")
    def x(request):
        return request.headers.get("X-Tagged", "")

    assert TestClient(App(api)).get("/x").text == "by middleware"


def test_a_failing_scoped_middleware_is_a_500_naming_it(caplog):
    api = Router()

    @api.use
    def broken(request, call_next):
        raise RuntimeError("boom")

    api.get("/x")(lambda request: "x")
    response = TestClient(App(api)).get("/x")
    assert response.status_code == 500
    assert any("broken" in record.getMessage() for record in caplog.records)


def test_a_bad_scoped_middleware_stops_the_app():
    api = Router()
    api.use(lambda request: None)
    api.get("/x")(lambda: "x")
    with pytest.raises(TypeError, match="two arguments"):
        App(api)
    with pytest.raises(TypeError, match="middleware function"):
        Router().use("not callable")  # type: ignore[arg-type]


# -- middleware.py in a folder of app/ ------------------------------------------------------

RECORDING = """
CALLS = []

def middleware(request, call_next):
    CALLS.append("{name} in")
    response = call_next(request)
    response.headers["X-{name}"] = "1"
    return response
"""


def test_a_folders_middleware_wraps_its_subtree_outer_folders_first(tmp_path, make_tree):
    files = {
        "app/middleware.py": RECORDING.format(name="root"),
        "app/api/middleware.py": RECORDING.format(name="api"),
        "app/api/admin/middleware.py": RECORDING.format(name="admin"),
        "app/api/admin/users/route.py": "def GET(request): return []",
        "app/api/admin/route.py": "def GET(request): return 'admin'",
        "app/api/public/route.py": "def GET(request): return 'public'",
        "app/about/route.py": "def GET(request): return 'about'",
    }
    client = TestClient(App(app_dir=make_tree(tmp_path, files)))
    layers = lambda response: [n for n in ("root", "api", "admin") if f"X-{n}" in response.headers]  # noqa: E731
    assert layers(client.get("/api/admin/users")) == ["root", "api", "admin"]
    assert layers(client.get("/api/admin")) == ["root", "api", "admin"]
    assert layers(client.get("/api/public")) == ["root", "api"]
    assert layers(client.get("/about")) == ["root"]
    assert layers(client.get("/api/nowhere")) == ["root"]  # a 404: the app's only
    import sys

    order = [
        *sys.modules["app.middleware"].CALLS,
        *sys.modules["app.api.middleware"].CALLS,
        *sys.modules["app.api.admin.middleware"].CALLS,
    ]
    assert order.count("admin in") == 2


def test_a_route_groups_middleware_wraps_the_group_only(tmp_path, make_tree):
    files = {
        "app/(admin)/middleware.py": RECORDING.format(name="staff"),
        "app/(admin)/stats/route.py": "def GET(): return {'n': 1}",
        "app/shop/route.py": "def GET(): return {'n': 2}",
    }
    client = TestClient(App(app_dir=make_tree(tmp_path, files)))
    stats = [client.get("/stats") for _ in range(2)]
    assert [r.headers.get("X-staff") for r in stats] == ["1", "1"]
    assert stats[1].headers["X-Microroute-Cache"] == "HIT"  # cached, and still wrapped
    assert "X-staff" not in client.get("/shop").headers


def test_a_folders_middleware_file_must_export_middleware(tmp_path, make_tree):
    files = {
        "app/api/middleware.py": "def mw(request, call_next): return call_next(request)",
        "app/api/x/route.py": "def GET(): return 1",
    }
    with pytest.raises(StartupError) as caught:
        App(app_dir=make_tree(tmp_path, files))
    assert "app/api/middleware.py" in str(caught.value)
    assert "middleware(request, call_next)" in str(caught.value)
