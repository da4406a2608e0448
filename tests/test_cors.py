"""CORS: preflights, Access-Control-* headers on responses, errors included."""

from __future__ import annotations

import re

import pytest

from microroute import App, cors

SITE = "https://app.example"
EVIL = "https://evil.example"


def preflight(client, path="/api", origin=SITE, method="POST", headers=None):
    """Send the OPTIONS a browser sends before a non-simple request."""
    sent = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        sent["Access-Control-Request-Headers"] = headers
    return client.options(path, headers=sent)


def vary(response) -> set[str]:
    return {v.strip().lower() for v in response.headers.get("Vary", "").split(",") if v.strip()}


@pytest.fixture
def api(router):
    """/api (GET, POST), /boom (a 500), /varied (its own Vary), /headers (custom header)."""

    @router.get("/api")
    def read(request):
        return {"ok": True}

    @router.post("/api")
    def write(request):
        return {"created": True}, 201

    @router.get("/boom")
    def boom(request):
        raise RuntimeError("boom")

    router.get("/varied")(lambda request: ("text", 200, {"Vary": "Accept-Encoding"}))
    router.get("/headers")(lambda request: ("text", 200, {"X-Total": "3", "X-Page": "1"}))
    return router


@pytest.fixture
def cors_client(api, client_for):
    """``cors_client(**cors_options)``: a client on the api behind ``cors(...)``."""

    def make(**options):
        app = App(api)
        app.use(cors(**options))
        return client_for(app)

    return make


# -- preflight -----------------------------------------------------------------------


def test_preflight_from_an_allowed_origin(cors_client):
    client = cors_client(allow_origins=[SITE], max_age=123)
    resp = preflight(client, headers="Content-Type, Authorization")
    assert resp.status_code == 204
    assert resp.content == b""
    assert resp.headers["Access-Control-Allow-Origin"] == SITE
    methods = {m.strip() for m in resp.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"} <= methods
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"content-type", "authorization"}
    assert resp.headers["Access-Control-Max-Age"] == "123"
    assert "origin" in vary(resp)
    assert "Access-Control-Allow-Credentials" not in resp.headers


def test_preflight_default_max_age_is_600(cors_client):
    resp = preflight(cors_client(allow_origins=[SITE]))
    assert resp.headers["Access-Control-Max-Age"] == "600"


def test_preflight_from_a_disallowed_origin_is_rejected(cors_client):
    resp = preflight(cors_client(allow_origins=[SITE]), origin=EVIL)
    assert resp.status_code == 403
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Access-Control-Allow-Methods" not in resp.headers


def test_preflight_for_a_method_not_allowed_is_rejected(cors_client):
    client = cors_client(allow_origins=[SITE], allow_methods=["GET", "POST"])
    resp = preflight(client, method="DELETE")
    assert resp.status_code == 403
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "DELETE" in resp.json()["error"]
    assert preflight(client, method="post").status_code == 204


def test_preflight_for_a_header_not_allowed_is_rejected(cors_client):
    client = cors_client(allow_origins=[SITE])
    resp = preflight(client, headers="Content-Type, X-Secret")
    assert resp.status_code == 403
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "X-Secret" in resp.json()["error"]
    assert preflight(client, headers="content-type").status_code == 204


def test_preflight_with_any_header_allowed(cors_client):
    resp = preflight(cors_client(allow_origins=[SITE], allow_headers="*"), headers="X-Anything")
    assert resp.status_code == 204
    assert "x-anything" in resp.headers["Access-Control-Allow-Headers"].lower()


def test_route_with_its_own_options_handler_wins(api, client_for):
    api.options("/custom")(lambda request: ({"custom": True}, 200, {"X-Own": "yes"}))
    app = App(api)
    app.use(cors(allow_origins=[SITE]))
    client = client_for(app)
    resp = preflight(client, path="/custom")
    assert resp.status_code == 200
    assert resp.json() == {"custom": True}
    assert resp.headers["X-Own"] == "yes"
    assert resp.headers["Access-Control-Allow-Origin"] == SITE
    # ...only for its route: others still get the middleware's preflight.
    assert preflight(client, path="/api").status_code == 204


def test_options_without_preflight_headers_is_not_a_preflight(cors_client):
    resp = cors_client(allow_origins=[SITE]).options("/api", headers={"Origin": SITE})
    assert resp.status_code == 204
    assert "GET" in resp.headers["Allow"]
    assert "Access-Control-Allow-Methods" not in resp.headers


# -- origins -------------------------------------------------------------------------


def test_star_without_credentials_gives_star(cors_client):
    client = cors_client(allow_origins="*")
    assert preflight(client, origin=EVIL).headers["Access-Control-Allow-Origin"] == "*"
    resp = client.get("/api", headers={"Origin": EVIL})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize("origins", ["*", ["*"], ("https://a.example", "*")])
def test_star_with_credentials_is_refused_at_configuration(origins):
    with pytest.raises(ValueError, match="list the origins"):
        cors(allow_origins=origins, allow_credentials=True)


@pytest.mark.parametrize(
    "rule",
    [re.compile(r"https://[a-z]+\.app\.example"), lambda origin: origin.endswith(".app.example")],
    ids=["regex", "callable"],
)
def test_regex_and_callable_origins(cors_client, rule):
    client = cors_client(allow_origins=rule)
    good = "https://beta.app.example"
    resp = client.get("/api", headers={"Origin": good})
    assert resp.headers["Access-Control-Allow-Origin"] == good
    assert preflight(client, origin=good).status_code == 204
    for bad in (EVIL, "https://beta.app.example.evil.example"):
        assert (
            "Access-Control-Allow-Origin" not in client.get("/api", headers={"Origin": bad}).headers
        )
        assert preflight(client, origin=bad).status_code == 403


def test_single_origin_string(cors_client):
    client = cors_client(allow_origins=SITE)
    assert (
        client.get("/api", headers={"Origin": SITE}).headers["Access-Control-Allow-Origin"] == SITE
    )
    assert "Access-Control-Allow-Origin" not in client.get("/api", headers={"Origin": EVIL}).headers


def test_cached_route_answers_each_origin_with_its_own(api, client_for):
    api.get("/static")(lambda: {"n": 1})
    other = "https://other.example"
    app = App(api)
    app.use(cors(allow_origins=[SITE, other]))
    client = client_for(app)
    first = client.get("/static", headers={"Origin": SITE})
    second = client.get("/static", headers={"Origin": other})
    third = client.get("/static", headers={"Origin": EVIL})
    assert second.headers["X-Microroute-Cache"] == "HIT"
    assert first.headers["Access-Control-Allow-Origin"] == SITE
    assert second.headers["Access-Control-Allow-Origin"] == other
    assert "Access-Control-Allow-Origin" not in third.headers


# -- simple requests ---------------------------------------------------------------


def test_simple_request_from_an_allowed_origin(cors_client):
    resp = cors_client(allow_origins=[SITE]).post("/api", headers={"Origin": SITE})
    assert resp.status_code == 201
    assert resp.json() == {"created": True}
    assert resp.headers["Access-Control-Allow-Origin"] == SITE
    assert "origin" in vary(resp)
    assert "Access-Control-Allow-Credentials" not in resp.headers


def test_simple_request_from_a_disallowed_origin_gets_no_cors_headers(cors_client):
    resp = cors_client(allow_origins=[SITE]).get("/api", headers={"Origin": EVIL})
    assert resp.status_code == 200  # the browser, not the server, hides it
    assert not [h for h in resp.headers if h.lower().startswith("access-control-")]


def test_request_without_origin_gets_no_cors_headers(cors_client):
    resp = cors_client(allow_origins=[SITE]).get("/api")
    assert resp.status_code == 200
    assert not [h for h in resp.headers if h.lower().startswith("access-control-")]


def test_existing_vary_is_kept_and_extended(cors_client):
    resp = cors_client(allow_origins=[SITE]).get("/varied", headers={"Origin": SITE})
    assert vary(resp) == {"accept-encoding", "origin"}
    assert resp.headers["Vary"].lower().count("origin") == 1


def test_expose_headers(cors_client):
    client = cors_client(allow_origins=[SITE], expose_headers=["X-Total", "X-Page"])
    resp = client.get("/headers", headers={"Origin": SITE})
    exposed = {h.strip() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert exposed == {"X-Total", "X-Page"}


def test_allow_credentials(cors_client):
    client = cors_client(allow_origins=[SITE], allow_credentials=True)
    resp = client.get("/api", headers={"Origin": SITE})
    assert resp.headers["Access-Control-Allow-Origin"] == SITE
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert preflight(client).headers["Access-Control-Allow-Credentials"] == "true"


# -- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nowhere", 404), ("GET", "/boom", 500), ("DELETE", "/api", 405)],
)
def test_cors_headers_on_error_responses(cors_client, method, path, status):
    client = cors_client(allow_origins=[SITE], allow_credentials=True)
    resp = client.request(method, path, headers={"Origin": SITE})
    assert resp.status_code == status
    assert "error" in resp.json()
    assert resp.headers["Access-Control-Allow-Origin"] == SITE
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert "origin" in vary(resp)
