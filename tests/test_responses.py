"""Response: werkzeug's, plus the Response.json and Response.redirect constructors."""

from __future__ import annotations

import pytest
from werkzeug.wrappers import Response as WerkzeugResponse

from microroute import Response


def serve(router, make_client, path, make_response):
    """Serve ``make_response()`` from GET ``path``; return the client's response."""
    router.get(path)(make_response)
    return make_client().get(path, allow_redirects=False)


# -- Response.json ------------------------------------------------------------------


def test_json_defaults_to_200(router, make_client):
    resp = serve(router, make_client, "/x", lambda: Response.json({"ok": True, "n": [1, 2]}))
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"ok": True, "n": [1, 2]}


def test_json_with_status_and_headers(router, make_client):
    resp = serve(
        router,
        make_client,
        "/x",
        lambda: Response.json(["a"], status=201, headers={"Location": "/things/1", "X-Id": "1"}),
    )
    assert resp.status_code == 201
    assert resp.headers["X-Id"] == "1"
    assert resp.headers["Location"].endswith("/things/1")
    assert resp.json() == ["a"]


def test_json_positional_arguments(router, make_client):
    resp = serve(router, make_client, "/x", lambda: Response.json({"e": "gone"}, 410, {"X-A": "b"}))
    assert resp.status_code == 410
    assert resp.headers["X-A"] == "b"
    assert resp.json() == {"e": "gone"}


def test_json_keeps_non_ascii(router, make_client):
    resp = serve(router, make_client, "/x", lambda: Response.json({"name": "Zoë ✓"}))
    assert resp.json() == {"name": "Zoë ✓"}


def test_json_on_an_instance_parses_the_body():
    response = Response.json({"a": [1, 2]}, status=201)
    assert isinstance(response, Response)
    assert response.status_code == 201
    assert response.json == {"a": [1, 2]}


def test_json_on_a_plain_instance_parses_too():
    response = Response('{"x": 1}', mimetype="application/json")
    assert response.json == {"x": 1}


def test_response_is_a_werkzeug_response():
    assert issubclass(Response, WerkzeugResponse)


# -- Response.redirect ----------------------------------------------------------------


def test_redirect_defaults_to_307(router, make_client):
    resp = serve(
        router,
        make_client,
        "/old",
        lambda: Response.redirect("http://example.com/new", allow_external=True),
    )
    assert resp.status_code == 307
    assert resp.headers["Location"] == "http://example.com/new"


def test_redirect_308(router, make_client):
    resp = serve(router, make_client, "/old", lambda: Response.redirect("/new", status=308))
    assert resp.status_code == 308
    assert resp.headers["Location"] == "http://testserver/new"


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/login", "http://testserver/login"),
        ("login?next=%2Fa", "http://testserver/account/login?next=%2Fa"),
        ("../home", "http://testserver/home"),
    ],
)
def test_relative_redirect_resolves_against_the_request(router, make_client, target, location):
    resp = serve(router, make_client, "/account/settings", lambda: Response.redirect(target))
    assert resp.status_code == 307
    assert resp.headers["Location"] == location


def test_redirect_resolves_against_the_request_host(router, make_client):
    router.get("/go")(lambda: Response.redirect("/there"))
    resp = make_client().get("https://api.example.org/go", allow_redirects=False)
    assert resp.headers["Location"] == "https://api.example.org/there"


def test_redirect_is_followed_by_the_client(router, make_client):
    router.get("/old")(lambda: Response.redirect("/new"))
    router.get("/new")(lambda: {"here": True})
    resp = make_client().get("/old")
    assert resp.status_code == 200
    assert resp.json() == {"here": True}
    assert resp.url == "http://testserver/new"
