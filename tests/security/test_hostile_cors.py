"""CORS with credentials: no configuration lets every site read a signed-in user's data.

``cors(allow_origins="*", allow_credentials=True)`` used to echo any origin
with ``Access-Control-Allow-Credentials: true``; it is now refused when the
middleware is made, and an origin that is not listed gets no CORS headers.
"""

from __future__ import annotations

import pytest

from microroute import App, Router, cookies, cors

EVIL = "https://evil.example"
SITE = "https://app.example"


@pytest.mark.parametrize("origins", ["*", ["*"], [SITE, "*"]], ids=["str", "list", "mixed"])
def test_wildcard_with_credentials_is_refused_at_configuration(origins):
    """README: 'allow_origins="*" with allow_credentials=True is refused when configured'."""
    with pytest.raises(ValueError) as raised:
        cors(allow_origins=origins, allow_credentials=True)
    message = str(raised.value)
    assert "allow_credentials=True" in message
    assert "list the origins" in message


@pytest.fixture
def api_client(client_for):
    api = Router()

    @api.get("/me")
    def me():
        return {"uid": cookies().get("uid")}

    app = App(api, cache=False)
    app.use(cors(allow_origins=[SITE], allow_credentials=True))
    return client_for(app)


@pytest.mark.parametrize(
    "origin",
    [EVIL, "null", SITE + ".evil.example", "https://app.example:444", "http://app.example"],
)
def test_an_unlisted_origin_gets_no_cors_headers_with_credentials(api_client, origin):
    """README: 'an origin that is not listed gets no Access-Control-Allow-Origin'."""
    resp = api_client.get("/me", headers={"Origin": origin, "Cookie": "uid=42"})
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Access-Control-Allow-Credentials" not in resp.headers
    preflight = api_client.options(
        "/me", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_a_listed_origin_is_echoed_with_credentials(api_client):
    resp = api_client.get("/me", headers={"Origin": SITE})
    assert resp.headers["Access-Control-Allow-Origin"] == SITE
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
