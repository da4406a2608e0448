"""Routers: decorators, ``.add``, ``.include``, path syntax, injection, start-up errors."""

from __future__ import annotations

import pytest

from microroute import App, Context, Request, Router, StartupError, route
from microroute.testing import TestClient

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

# Decorating with a bad path or config fails at once; a problem found when the
# routes are compiled (conflicts, handler signatures) fails in App().
REGISTRATION_ERRORS = (TypeError, ValueError, StartupError)


def test_module_level_route_is_a_router():
    assert isinstance(route, Router)


# -- declaring routes ------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_decorator_for_each_method(router, make_client, method):
    decorate = getattr(router, method.lower())

    @decorate("/thing")
    def handler():
        return {"method": method}

    response = make_client().request(method, "/thing")
    assert response.status_code == 200
    assert response.json() == {"method": method}


def test_head_decorator(router, make_client):
    @router.head("/thing")
    def head():
        return "", 200, {"X-Handler": "head"}

    response = make_client().head("/thing")
    assert response.status_code == 200
    assert response.headers["X-Handler"] == "head"
    assert response.content == b""


def test_add_registers_several_methods_and_returns_the_handler(router, make_client):
    def items(request):
        return {"method": request.method}

    assert router.add("/items", items, methods=["get", "POST"]) is items
    client = make_client()
    assert client.get("/items").json() == {"method": "GET"}
    assert client.post("/items").json() == {"method": "POST"}
    assert client.put("/items").status_code == 405


def test_add_defaults_to_get_and_takes_one_method_as_a_string(router, make_client):
    router.add("/ping", lambda: "pong")
    router.add("/submit", lambda: "sent", methods="post")
    client = make_client()
    assert client.get("/ping").text == "pong"
    assert client.post("/ping").status_code == 405
    assert client.post("/submit").text == "sent"


def test_add_rejects_a_non_callable(router):
    with pytest.raises(TypeError, match="callable"):
        router.add("/x", "not a function")


def test_include_with_prefix(router, make_client):
    users = Router()
    users.get("/users")(lambda: ["ann"])
    users.get("/")(lambda: "index")
    router.include(users, prefix="/api")
    client = make_client()
    assert client.get("/api/users").json() == ["ann"]
    assert client.get("/api").text == "index"
    assert client.get("/users").status_code == 404


def test_include_is_by_reference_and_nests(router, make_client):
    inner, middle, root_child = Router(), Router(), Router()
    middle.include(inner, prefix="/v2")
    router.include(middle, prefix="/api/")
    router.include(root_child, prefix="/")
    router.include(inner, prefix="/orgs/[org]")
    # Added after every include(): still served, under each prefix.
    inner.get("/items/[id]")(lambda params: params)
    root_child.get("/hello")(lambda: "hi")
    client = make_client()
    assert client.get("/api/v2/items/7").json() == {"id": "7"}
    assert client.get("/orgs/acme/items/3").json() == {"org": "acme", "id": "3"}
    assert client.get("/hello").text == "hi"


def test_router_cannot_include_itself(router):
    with pytest.raises(ValueError):
        router.include(router)


# -- path syntax -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path, url, expected",
    [
        ("/users/[id]", "/users/42", {"id": "42"}),
        ("/users/[id]", "/users", None),
        ("/users/[id]", "/users/42/more", None),
        ("/docs/[...slug]", "/docs/a", {"slug": ["a"]}),
        ("/docs/[...slug]", "/docs/a/b/c", {"slug": ["a", "b", "c"]}),
        ("/docs/[...slug]", "/docs", None),
        ("/shop/[[...path]]", "/shop", {"path": []}),
        ("/shop/[[...path]]", "/shop/x", {"path": ["x"]}),
        ("/shop/[[...path]]", "/shop/x/y", {"path": ["x", "y"]}),
        ("/files/<int:id>", "/files/5", {"id": 5}),
        ("/files/<int:id>", "/files/five", None),
        ("/v1.0/[id]", "/v1x0/1", None),
    ],
)
def test_path_syntax(router, make_client, path, url, expected):
    """``None`` means the URL does not match: a JSON 404."""
    router.get(path)(lambda params: params)
    response = make_client().get(url)
    if expected is None:
        assert response.status_code == 404
        assert response.json() == {"error": "Not Found"}
    else:
        assert response.status_code == 200
        assert response.json() == expected


def test_static_beats_param_beats_catch_all(router, make_client):
    router.get("/users/me")(lambda: "static")
    router.get("/users/[id]")(lambda id: f"param {id}")
    router.get("/users/[...rest]")(lambda rest: f"catch-all {'/'.join(rest)}")
    client = make_client()
    assert client.get("/users/me").text == "static"
    assert client.get("/users/42").text == "param 42"
    assert client.get("/users/a/b").text == "catch-all a/b"


def test_precedence_holds_below_a_dynamic_segment(router, make_client):
    router.get("/orgs/[org]/members")(lambda org: f"members of {org}")
    router.get("/orgs/[org]/[tab]")(lambda org, tab: f"{tab} of {org}")
    router.get("/orgs/[org]/[tab]/[...rest]")(lambda org, tab, rest: f"rest {rest}")
    client = make_client()
    assert client.get("/orgs/acme/members").text == "members of acme"
    assert client.get("/orgs/acme/repos").text == "repos of acme"
    assert client.get("/orgs/acme/repos/a/b").text == "rest ['a', 'b']"


# -- parameter injection ---------------------------------------------------------


def test_request_is_injected(router, make_client):
    @router.get("/items/[id]")
    def show(request):
        assert isinstance(request, Request)
        return {"method": request.method, "params": request.params, "q": request.args["q"]}

    assert make_client().get("/items/1?q=x").json() == {
        "method": "GET",
        "params": {"id": "1"},
        "q": "x",
    }


def test_params_and_context_are_injected(router, make_client):
    @router.get("/a/[x]/b/[...rest]")
    def show(params, context):
        assert isinstance(context, Context)
        return {"params": params, "context": context.params}

    expected = {"x": "1", "rest": ["2", "3"]}
    assert make_client().get("/a/1/b/2/3").json() == {"params": expected, "context": expected}


def test_path_params_by_name_in_any_order(router, make_client):
    @router.get("/[year]/[month]")
    def archive(month, request, year):
        return {"year": year, "month": month, "path": request.path}

    assert make_client().get("/2024/05").json() == {
        "year": "2024",
        "month": "05",
        "path": "/2024/05",
    }


def test_handler_signature_shapes(router, make_client):
    router.get("/none/[id]")(lambda: "none")
    router.get("/kwargs/[a]/[b]")(lambda **kwargs: kwargs)
    router.get("/kw-only/[id]")(lambda *, id: {"id": id})
    router.get("/defaulted/[id]")(lambda id="unused": {"id": id})
    # A parameter that is neither injected nor a path param keeps its default.
    router.get("/unknown/[id]")(lambda id, limit=10: {"id": id, "limit": limit})
    client = make_client()
    assert client.get("/none/1").text == "none"
    assert client.get("/kwargs/1/2").json() == {"a": "1", "b": "2"}
    assert client.get("/kw-only/1").json() == {"id": "1"}
    assert client.get("/defaulted/2").json() == {"id": "2"}
    assert client.get("/unknown/3?limit=99").json() == {"id": "3", "limit": 10}


# -- start-up errors -------------------------------------------------------------


def test_unknown_handler_parameter_names_function_and_file(router):
    @router.get("/users/[id]")
    def show_user(user_id):
        return user_id

    with pytest.raises(REGISTRATION_ERRORS) as caught:
        TestClient(App(router))  # the app's start: app.provide() may come after App()
    message = str(caught.value)
    assert "show_user" in message
    assert "user_id" in message
    assert "test_routing.py" in message


@pytest.mark.parametrize(
    "path",
    ["/x/[a-b]", "/x/[]", "/x/x[id]", "/x/[...a]/b", "/x/[[...a]]/b", "/x/[request]", "/[class]"],
)
def test_bad_segment_names_the_function(router, path):
    def bad_segment_handler():
        return None

    with pytest.raises(REGISTRATION_ERRORS) as caught:
        router.get(path)(bad_segment_handler)
        App(router)
    assert "bad_segment_handler" in str(caught.value)


def test_same_method_twice_on_one_path(router):
    @router.get("/x")
    def first():
        return 1

    @router.get("/x/")
    def second():
        return 2

    with pytest.raises(StartupError) as caught:
        App(router)
    message = str(caught.value)
    assert "first" in message
    assert "second" in message
    assert "GET" in message


def test_param_names_clash_at_the_same_place(router):
    @router.get("/posts/[id]")
    def by_id(id):
        return id

    @router.post("/posts/[slug]")
    def by_slug(slug):
        return slug

    with pytest.raises(StartupError) as caught:
        App(router)
    message = str(caught.value)
    assert "by_id" in message
    assert "by_slug" in message


def test_optional_catch_all_clashes_with_a_route_on_its_parent(router):
    router.get("/shop")(lambda: "shop")
    router.get("/shop/[[...path]]")(lambda path: path)
    with pytest.raises(StartupError, match="/shop"):
        App(router)


def test_same_path_in_two_routers_is_a_conflict(router):
    child = Router()
    router.get("/api/x")(lambda: 1)
    child.get("/x")(lambda: 2)
    router.include(child, prefix="/api")
    with pytest.raises(StartupError, match="/api/x"):
        App(router)


@pytest.mark.parametrize(
    "config, word",
    [
        ({"dynamic": "sometimes"}, "dynamic"),
        ({"revalidate": -1}, "revalidate"),
        ({"revalidate": "60"}, "revalidate"),
        ({"cache": True}, "cache"),
    ],
)
def test_bad_route_config_names_the_function(router, config, word):
    def configured_handler():
        return None

    with pytest.raises(REGISTRATION_ERRORS) as caught:
        router.get("/x", **config)(configured_handler)
        App(router)
    message = str(caught.value)
    assert "configured_handler" in message
    assert word in message


@pytest.mark.parametrize(
    "config",
    [
        {"dynamic": "force-dynamic"},
        {"dynamic": "force-static"},
        {"revalidate": 60},
        {"revalidate": 0},
        {"revalidate": False},
        {"dynamic": "error", "revalidate": 1.5},
    ],
)
def test_good_route_config_is_accepted(router, make_client, config):
    router.get("/x", **config)(lambda: "ok")
    assert make_client().get("/x").text == "ok"
