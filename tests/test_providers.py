"""Providers: ``app.provide(name)`` / ``router.provide(name)`` fill handler parameters by name."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from microroute import App, Router, StartupError, abort, redirect
from microroute.testing import TestClient


@dataclass
class Post:
    title: str


@dataclass
class User:
    name: str


def bearer_user(request):
    """The provider most apps start with: a token to a user, or a 401."""
    if request.headers.get("Authorization") != "Bearer good":
        abort(401, "Sign in first")
    return User("ann")


AUTH = {"Authorization": "Bearer good"}


# -- filling parameters -----------------------------------------------------------


def test_a_provided_name_fills_every_handler_parameter_of_that_name(router):
    @router.get("/me")
    def me(user):
        return {"name": user.name}

    @router.get("/hello")
    def hello(user):
        return f"hello {user.name}"

    app = App(router)
    app.provide("user")(bearer_user)
    client = TestClient(app)
    assert client.get("/me", headers=AUTH).json() == {"name": "ann"}
    assert client.get("/hello", headers=AUTH).text == "hello ann"
    assert client.get("/me").status_code == 401
    assert client.get("/me").json() == {"error": "Sign in first"}


def test_a_provider_takes_path_parameters_params_and_other_providers(router):
    @router.get("/orgs/[org]/repos/[...path]")
    def repo(where, user):
        return {"where": where, "user": user.name}

    app = App(router)
    app.provide("user")(bearer_user)

    @app.provide("where")
    def where(org, path, params, user):
        assert params == {"org": org, "path": path}
        return f"{user.name}@{org}/{'/'.join(path)}"

    client = TestClient(app)
    assert client.get("/orgs/acme/repos/a/b", headers=AUTH).json() == {
        "where": "ann@acme/a/b",
        "user": "ann",
    }


def test_each_provider_runs_once_per_request_whoever_names_it(router):
    calls: list[str] = []

    @router.get("/x")
    def handler(user, team, request):
        return {"user": user, "team": team}

    app = App(router)

    @app.provide("user")
    def user(request):
        calls.append("user")
        return "ann"

    @app.provide("team")
    def team(user):
        calls.append("team")
        return f"{user}'s team"

    client = TestClient(app)
    assert client.get("/x").json() == {"user": "ann", "team": "ann's team"}
    assert client.get("/x").status_code == 200
    assert calls == ["user", "team", "user", "team"]


def test_an_annotated_provided_parameter_is_not_read_from_the_request(router):
    """``user: User`` is a dataclass, which would otherwise be the request body."""

    @router.post("/posts")
    def create(body: Post, user: User):
        return {"title": body.title, "by": user.name}, 201

    app = App(router)
    app.provide("user")(bearer_user)
    client = TestClient(app)
    response = client.post("/posts", json={"title": "Hi"}, headers=AUTH)
    assert response.status_code == 201
    assert response.json() == {"title": "Hi", "by": "ann"}


def test_the_provider_answers_401_before_the_body_is_validated(router):
    """An unauthenticated POST with a bad body gets the provider's 401, not a 422."""
    ran: list[str] = []

    @router.post("/posts")
    def create(body: Post, user):
        ran.append("handler")
        return {"ok": True}

    app = App(router)
    app.provide("user")(bearer_user)
    client = TestClient(app)
    assert client.post("/posts", json={"nope": 1}).status_code == 401
    assert (
        client.post("/posts", data=b"{", headers={"Content-Type": "application/json"}).status_code
        == 401
    )
    # Signed in, the same bad body is the body's problem.
    assert client.post("/posts", json={"nope": 1}, headers=AUTH).status_code == 422
    assert ran == []


def test_a_provider_may_redirect(router):
    @router.get("/dashboard")
    def dashboard(user):
        return "secret"

    app = App(router)

    @app.provide("user")
    def login_first(request):
        redirect("/login")

    response = TestClient(app).get("/dashboard", allow_redirects=False)
    assert response.status_code == 307
    assert response.headers["Location"] == "http://testserver/login"


# -- caching, the route table, static builds -------------------------------------------------


def test_a_provided_name_makes_the_route_dynamic_with_the_reason(router):
    calls: list[int] = []

    @router.get("/me")
    def me(user):
        calls.append(1)
        return {"name": user.name}

    app = App(router)
    app.provide("user")(bearer_user)
    client = TestClient(app)
    for _ in range(3):
        response = client.get("/me", headers=AUTH)
        assert "X-Microroute-Cache" not in response.headers
    assert len(calls) == 3
    (row,) = app.route_table()
    assert (row["mode"], row["reason"]) == ("dynamic", "takes user")


def test_force_static_builds_with_the_provider_and_tears_it_down(router):
    events: list[str] = []

    @router.get("/catalog", dynamic="force-static")
    def catalog(db):
        return {"items": db}

    app = App(router)

    @app.provide("db")
    def database():
        events.append("open")
        yield ["a", "b"]
        events.append("close")

    client = TestClient(app)
    first, second = client.get("/catalog"), client.get("/catalog")
    assert first.json() == second.json() == {"items": ["a", "b"]}
    assert (first.headers["X-Microroute-Cache"], second.headers["X-Microroute-Cache"]) == (
        "MISS",
        "HIT",
    )
    assert events == ["open", "close"]


# -- OpenAPI ----------------------------------------------------------------------------------


def test_a_security_scheme_is_documented_on_the_routes_that_rely_on_it(router):
    @router.get("/me")
    def me(user):
        return {}

    @router.get("/team")
    def team(members):  # through another provider
        return {}

    @router.get("/public")
    def public():
        return {}

    app = App(router)
    bearer = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    app.provide("user", security=bearer)(bearer_user)

    @app.provide("members")
    def members(user):
        return [user]

    doc = app.openapi()
    assert doc["components"]["securitySchemes"] == {"user": bearer}
    assert doc["paths"]["/me"]["get"]["security"] == [{"user": []}]
    assert doc["paths"]["/team"]["get"]["security"] == [{"user": []}]
    assert "security" not in doc["paths"]["/public"]["get"]
    # A provided parameter is not a query parameter of the operation.
    assert "parameters" not in doc["paths"]["/me"]["get"]


def test_a_security_scheme_must_be_one(router):
    app = App(router)
    with pytest.raises(ValueError, match="security"):
        app.provide("user", security={"scheme": "bearer"})(bearer_user)


# -- scope: routers, included routers, the app ----------------------------------------------


def test_a_routers_provider_serves_its_routes_and_those_it_includes():
    api, admin, other = Router(), Router(), Router()

    @api.provide("user")
    def api_user():
        return "api user"

    @admin.provide("user")
    def admin_user():
        return "admin user"

    @api.get("/who")
    def who(user):
        return user

    @admin.get("/who")
    def admin_who(user):
        return user

    @admin.get("/role")
    def role(user, level):
        return f"{user}, level {level}"

    @api.provide("level")
    def level():
        return 3

    @other.get("/who")
    def other_who(user):
        return user

    api.include(admin, prefix="/admin")
    app = App(api)
    client = TestClient(app)
    assert client.get("/who").text == "api user"
    assert client.get("/admin/who").text == "admin user"  # the nearest provider wins
    assert client.get("/admin/role").text == "admin user, level 3"  # the parent's reaches it
    with pytest.raises(StartupError, match="other_who"):
        TestClient(App(other))


def test_the_routers_provider_wins_over_the_apps(router):
    @router.provide("user")
    def router_user():
        return "router"

    @router.get("/x")
    def handler(user):
        return user

    app = App(router)
    app.provide("user")(lambda: "app")
    assert TestClient(app).get("/x").text == "router"


def test_discovered_routes_use_the_apps_providers(tmp_path, make_tree):
    app = App(app_dir=make_tree(tmp_path, {"app/api/me/route.py": "def GET(user): return user"}))
    app.provide("user")(lambda: "ann")
    assert TestClient(app).get("/api/me").text == "ann"


def test_the_readme_example_runs_as_written():
    """README "Providers", verbatim, with a user table and a session of its own."""
    from pathlib import Path
    from types import SimpleNamespace

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Providers", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    events: list[str] = []

    class Session:
        def __init__(self, owner):
            self.owner = owner

        def add(self, **row):
            events.append(f"add {row}")

        def commit(self):
            events.append("commit")

        def rollback(self):
            events.append("rollback")

        def close(self):
            events.append("close")

    users = SimpleNamespace(
        by_token=lambda token: SimpleNamespace(id=7) if token == "Bearer t" else None
    )
    import sys
    import types

    module = types.ModuleType("readme_providers")  # a dataclass looks its module up
    module.__dict__.update(Session=Session, users=users)
    sys.modules[module.__name__] = module
    try:
        exec(code, module.__dict__)
    finally:
        del sys.modules[module.__name__]
    namespace = module.__dict__
    client = TestClient(namespace["app"])
    assert client.post("/posts", json={"bad": 1}).status_code == 401  # before the 422
    created = client.post("/posts", json={"title": "Hi"}, headers={"Authorization": "Bearer t"})
    assert created.status_code == 201
    assert events == ["add {'title': 'Hi', 'author': 7}", "commit", "close"]
    doc = namespace["app"].openapi()
    assert doc["paths"]["/posts"]["post"]["security"] == [{"user": []}]
