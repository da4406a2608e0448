"""Methods and slashes: 404, 405 + Allow, HEAD from GET, OPTIONS, trailing-slash 308."""

from __future__ import annotations

import pytest

from microroute import abort


@pytest.fixture
def crud(router):
    """``/items`` with GET, POST and DELETE handlers."""
    router.get("/items")(lambda: {"method": "GET"})
    router.post("/items")(lambda: ({"method": "POST"}, 201))
    router.delete("/items")(lambda: None)
    return router


# -- 404 and 405 -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/items/1", "/", "/items.json"])
def test_unmatched_path_is_json_404(crud, make_client, path):
    response = make_client().get(path)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"error": "Not Found"}


def test_unmatched_path_is_404_for_every_method(crud, make_client):
    assert make_client().post("/nope").status_code == 404


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_unimplemented_method_is_405_with_allow(crud, make_client, method):
    response = make_client().request(method, "/items")
    assert response.status_code == 405
    assert response.json() == {"error": "Method Not Allowed"}
    assert response.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS, POST"


def test_allow_has_no_head_without_get(router, make_client):
    router.post("/submit")(lambda: None)
    client = make_client()
    response = client.head("/submit")
    assert response.status_code == 405
    assert response.headers["Allow"] == "OPTIONS, POST"
    assert client.get("/submit").headers["Allow"] == "OPTIONS, POST"


# -- HEAD ------------------------------------------------------------------------


def test_head_is_served_from_get(router, make_client):
    calls = []

    @router.get("/report")
    def report():
        calls.append("GET")
        return {"rows": [1, 2, 3]}, 201, {"X-Rows": "3"}

    client = make_client()
    get = client.get("/report")
    head = client.head("/report")
    assert calls == ["GET", "GET"]
    assert head.status_code == 201
    assert head.content == b""
    assert head.headers["X-Rows"] == "3"
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    assert head.headers["Content-Length"] == get.headers["Content-Length"]


def test_head_of_an_endless_streamed_get_returns_and_closes_it(router, make_client):
    events = []

    @router.get("/events")
    def events_stream():
        try:
            while True:  # an SSE-like stream: HEAD must not try to drain it
                yield "data: tick\n\n"
        finally:
            events.append("closed")

    response = make_client().head("/events")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Content-Type"].startswith("text/plain")
    assert events == ["closed"]


def test_head_of_a_failing_get_is_an_error_without_body(router, make_client):
    @router.get("/broken")
    def broken():
        raise RuntimeError("boom")

    @router.get("/forbidden")
    def forbidden():
        abort(403, "Admins only")

    client = make_client()
    broken_head = client.head("/broken")
    assert broken_head.status_code == 500
    assert broken_head.content == b""
    assert broken_head.headers["Content-Type"].startswith("application/json")
    forbidden_head = client.head("/forbidden")
    assert forbidden_head.status_code == 403
    assert forbidden_head.content == b""


def test_explicit_head_handler_wins(router, make_client):
    router.get("/doc")(lambda: ("body", 200, {"X-From": "get"}))
    router.head("/doc")(lambda: ("", 200, {"X-From": "head"}))
    client = make_client()
    assert client.head("/doc").headers["X-From"] == "head"
    assert client.get("/doc").headers["X-From"] == "get"


# -- OPTIONS ---------------------------------------------------------------------


def test_automatic_options_is_204_with_sorted_allow(crud, make_client):
    response = make_client().options("/items")
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS, POST"


def test_automatic_options_on_a_dynamic_route(router, make_client):
    router.patch("/users/[id]")(lambda id: None)
    router.get("/users/[id]")(lambda id: {"id": id})
    response = make_client().options("/users/9")
    assert response.status_code == 204
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS, PATCH"


def test_explicit_options_handler_wins(router, make_client):
    router.get("/items")(lambda: [])
    router.options("/items")(lambda: ({"custom": True}, 200, {"Allow": "GET"}))
    response = make_client().options("/items")
    assert response.status_code == 200
    assert response.json() == {"custom": True}
    assert response.headers["Allow"] == "GET"


def test_explicit_options_is_listed_in_allow(router, make_client):
    router.options("/items")(lambda: None)
    router.post("/items")(lambda: None)
    assert make_client().get("/items").headers["Allow"] == "OPTIONS, POST"


# -- trailing slash --------------------------------------------------------------


def test_trailing_slash_redirects_308_keeping_the_query(crud, make_client):
    response = make_client().get("/items/?a=1&b=x%20y", allow_redirects=False)
    assert response.status_code == 308
    assert response.headers["Location"] == "/items?a=1&b=x%20y"


def test_trailing_slash_redirect_without_query(crud, make_client):
    response = make_client().post("/items/", allow_redirects=False)
    assert response.status_code == 308
    assert response.headers["Location"] == "/items"


def test_trailing_slash_redirect_is_followed_keeping_the_method(crud, make_client):
    response = make_client().post("/items/")
    assert response.status_code == 201
    assert response.json() == {"method": "POST"}
    assert response.history[0].status_code == 308


def test_root_is_not_redirected(router, make_client):
    router.get("/")(lambda: "home")
    response = make_client().get("/", allow_redirects=False)
    assert response.status_code == 200
    assert response.text == "home"


@pytest.mark.parametrize(
    "path", ["//evil.example/", "///evil.example//", "//evil.example/x/", "/%2F%2Fevil.example/"]
)
def test_double_slash_never_redirects_off_site(router, make_client, path):
    # An absolute URL: a bare "//evil.example/" would be a protocol-relative
    # URL to the *client* too, and never reach the app. An empty segment is a
    # 400 before the trailing-slash redirect is considered.
    response = make_client().get(f"http://testserver{path}", allow_redirects=False)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.json()["error"].startswith("Invalid path: an empty segment")


def test_backslash_path_does_not_redirect_off_site(router, make_client):
    response = make_client().get("/%5Cevil.example/", allow_redirects=False)
    assert response.status_code == 308
    assert response.headers["Location"] == "/%5Cevil.example"


# -- non-ASCII paths -------------------------------------------------------------


def test_non_ascii_static_path(router, make_client):
    router.get("/café")(lambda: "coffee")
    client = make_client()
    assert client.get("/café").text == "coffee"
    assert client.get("/caf%C3%A9").text == "coffee"


def test_non_ascii_path_params(router, make_client):
    router.get("/tags/[name]")(lambda name: {"name": name})
    router.get("/wiki/[...slug]")(lambda slug: {"slug": slug})
    client = make_client()
    assert client.get("/tags/日本").json() == {"name": "日本"}
    assert client.get("/wiki/Zürich/straße").json() == {"slug": ["Zürich", "straße"]}


def test_non_ascii_trailing_slash_redirect_is_percent_encoded(router, make_client):
    router.get("/café")(lambda: "coffee")
    client = make_client()
    response = client.get("/café/?x=1", allow_redirects=False)
    assert response.status_code == 308
    assert response.headers["Location"] == "/caf%C3%A9?x=1"
    assert client.get("/café/").text == "coffee"
