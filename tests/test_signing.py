"""Signed cookies and session(): round-trip, tampering, expiry, key rotation, missing key."""

from __future__ import annotations

import logging
import time

import pytest
from itsdangerous import TimestampSigner

from microroute import cookies, redirect, session


def set_cookies(response) -> list[str]:
    return response.raw.headers.getlist("Set-Cookie")


def tamper(value: str) -> str:
    """*value* with one character of its signature changed."""
    return value[:-3] + ("A" if value[-3] != "A" else "B") + value[-2:]


def cookie_header(name: str, value: str) -> dict[str, str]:
    """Send exactly this cookie (an explicit Cookie header replaces the client's jar)."""
    return {"Cookie": f"{name}={value}"}


@pytest.fixture(autouse=True)
def no_env_key(monkeypatch):
    """No test sees a MICROROUTE_SECRET_KEY from the environment unless it sets one."""
    monkeypatch.delenv("MICROROUTE_SECRET_KEY", raising=False)


@pytest.fixture
def signed_routes(router):
    """``/sign?v=...`` sets a signed cookie ``token``; ``/read`` reads it back (or null)."""

    @router.get("/sign")
    def sign(request):
        cookies().set("token", request.args["v"], signed=True)

    @router.get("/read")
    def read(request):
        max_age = request.args.get("max_age", type=int)
        return {"token": cookies().get("token", "missing", signed=True, max_age=max_age)}

    return router


# -- signed cookies ------------------------------------------------------------------


def test_signed_cookie_round_trips(signed_routes, make_client):
    client = make_client(secret_key="s3cret")
    client.get("/sign", params={"v": "ann"})
    raw = client.cookies["token"]
    assert raw != "ann" and raw.startswith("ann.")
    assert client.get("/read").json() == {"token": "ann"}


def test_tampered_signed_cookie_reads_as_missing(signed_routes, make_client):
    client = make_client(secret_key="s3cret")
    client.get("/sign", params={"v": "ann"})
    forged = tamper(client.cookies["token"])
    resp = client.get("/read", headers=cookie_header("token", forged))
    assert resp.status_code == 200
    assert resp.json() == {"token": "missing"}


@pytest.mark.parametrize("value", ["ann", "admin.Zm9v.YmFy", "", "...."])
def test_unsigned_or_garbage_value_reads_as_missing(signed_routes, make_client, value):
    client = make_client(secret_key="s3cret")
    resp = client.get("/read", headers=cookie_header("token", value))
    assert resp.status_code == 200
    assert resp.json() == {"token": "missing"}


def test_signed_cookie_expires_after_max_age(signed_routes, make_client, monkeypatch):
    client = make_client(secret_key="s3cret")
    # Sign as if 100 seconds ago, through the app itself.
    past = int(time.time()) - 100
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda self: past)
        client.get("/sign", params={"v": "ann"})
    assert client.get("/read", params={"max_age": 60}).json() == {"token": "missing"}
    assert client.get("/read", params={"max_age": 3600}).json() == {"token": "ann"}
    assert client.get("/read").json() == {"token": "ann"}


def test_key_rotation_accepts_old_and_signs_with_new(signed_routes, make_client):
    old = make_client(secret_key="old")
    old.get("/sign", params={"v": "from-old"})
    signed_by_old = old.cookies["token"]

    rotated = make_client(secret_key=["old", "new"])
    assert rotated.get("/read", headers=cookie_header("token", signed_by_old)).json() == {
        "token": "from-old"
    }

    rotated.get("/sign", params={"v": "from-rotated"})
    signed_by_rotated = rotated.cookies["token"]
    only_new = make_client(secret_key="new")
    only_old = make_client(secret_key="old")
    jar = cookie_header("token", signed_by_rotated)
    assert only_new.get("/read", headers=jar).json() == {"token": "from-rotated"}
    assert only_old.get("/read", headers=jar).json() == {"token": "missing"}


def test_signing_without_a_key_is_a_500_saying_how_to_set_one(signed_routes, make_client, caplog):
    with caplog.at_level(logging.ERROR, logger="microroute"):
        resp = make_client().get("/sign", params={"v": "ann"})
    assert resp.status_code == 500
    assert resp.json() == {"error": "Internal Server Error"}
    assert "App(secret_key=...)" in caplog.text
    assert "MICROROUTE_SECRET_KEY" in caplog.text
    assert set_cookies(resp) == []


def test_session_without_a_key_is_a_500_saying_how_to_set_one(router, make_client, caplog):
    router.post("/login")(lambda: session().update(user="ann"))
    with caplog.at_level(logging.ERROR, logger="microroute"):
        resp = make_client().post("/login")
    assert resp.status_code == 500
    assert "App(secret_key=...)" in caplog.text
    assert "MICROROUTE_SECRET_KEY" in caplog.text


def test_secret_key_from_the_environment(signed_routes, make_client, monkeypatch):
    monkeypatch.setenv("MICROROUTE_SECRET_KEY", "from-env")
    client = make_client()
    assert client.get("/sign", params={"v": "ann"}).status_code == 204
    assert client.get("/read").json() == {"token": "ann"}
    monkeypatch.delenv("MICROROUTE_SECRET_KEY")
    same_key = make_client(secret_key="from-env")
    other_key = make_client(secret_key="other")
    jar = cookie_header("token", client.cookies["token"])
    assert same_key.get("/read", headers=jar).json() == {"token": "ann"}
    assert other_key.get("/read", headers=jar).json() == {"token": "missing"}


# -- session() ----------------------------------------------------------------------------


@pytest.fixture
def session_routes(router):
    """login / me / logout, plus routes that change the session in other ways."""

    @router.post("/login")
    def login(request):
        session()["user"] = request.json["user"]

    router.get("/me")(lambda: {"user": session().get("user"), "data": dict(session())})
    router.post("/logout")(lambda: session().clear())

    @router.post("/cart")
    def add_to_cart(request):
        cart = session().setdefault("cart", [])
        cart.append(request.json["item"])
        if request.json.get("mark"):
            session().modified = True

    @router.get("/login-and-go")
    def login_and_go():
        session()["user"] = "redirected"
        redirect("/me")

    return router


def test_session_round_trips_in_a_signed_cookie(session_routes, make_client):
    client = make_client(secret_key="k")
    resp = client.post("/login", json={"user": "ann"})
    [header] = set_cookies(resp)
    assert header.startswith("session=")
    assert "HttpOnly" in header and "Path=/" in header
    assert f"Max-Age={14 * 24 * 3600}" in header
    assert client.get("/me").json() == {"user": "ann", "data": {"user": "ann"}}


def test_session_cookie_name_and_max_age_are_configurable(session_routes, make_client):
    client = make_client(secret_key="k", session_cookie="sid", session_max_age=60)
    [header] = set_cookies(client.post("/login", json={"user": "ann"}))
    assert header.startswith("sid=") and "Max-Age=60" in header
    assert client.get("/me").json()["user"] == "ann"


def test_reading_the_session_sends_no_set_cookie(session_routes, make_client):
    client = make_client(secret_key="k")
    client.post("/login", json={"user": "ann"})
    resp = client.get("/me")
    assert resp.json()["user"] == "ann"
    assert set_cookies(resp) == []


def test_emptying_the_session_deletes_the_cookie(session_routes, make_client):
    client = make_client(secret_key="k")
    client.post("/login", json={"user": "ann"})
    [header] = set_cookies(client.post("/logout"))
    assert header.startswith("session=;") and "Max-Age=0" in header
    assert "session" not in client.cookies
    assert client.get("/me").json() == {"user": None, "data": {}}


def test_clearing_an_absent_session_sends_nothing(session_routes, make_client):
    resp = make_client(secret_key="k").post("/logout")
    assert resp.status_code == 204
    assert set_cookies(resp) == []


def test_tampered_session_cookie_gives_an_empty_session(session_routes, make_client):
    client = make_client(secret_key="k")
    client.post("/login", json={"user": "ann"})
    forged = tamper(client.cookies["session"])
    resp = client.get("/me", headers=cookie_header("session", forged))
    assert resp.status_code == 200
    assert resp.json() == {"user": None, "data": {}}


def test_session_signed_with_another_key_is_empty(session_routes, make_client):
    client = make_client(secret_key="k")
    client.post("/login", json={"user": "ann"})
    other = make_client(secret_key="other")
    assert (
        other.get("/me", headers=cookie_header("session", client.cookies["session"])).json()["user"]
        is None
    )


def test_nested_mutation_needs_modified_true(session_routes, make_client):
    client = make_client(secret_key="k")
    client.post("/cart", json={"item": "apple"})  # setdefault: a change
    assert client.get("/me").json()["data"] == {"cart": ["apple"]}
    resp = client.post("/cart", json={"item": "pear"})  # in place: unseen
    assert set_cookies(resp) == []
    assert client.get("/me").json()["data"] == {"cart": ["apple"]}
    client.post("/cart", json={"item": "plum", "mark": True})
    assert client.get("/me").json()["data"] == {"cart": ["apple", "plum"]}


def test_session_survives_a_redirect(session_routes, make_client):
    client = make_client(secret_key="k")
    resp = client.get("/login-and-go")
    assert resp.history[0].status_code == 307
    assert set_cookies(resp.history[0])[0].startswith("session=")
    assert resp.json()["user"] == "redirected"


def test_session_rotation_keeps_old_sessions(session_routes, make_client):
    old = make_client(secret_key="old")
    old.post("/login", json={"user": "ann"})
    rotated = make_client(secret_key=["old", "new"])
    assert (
        rotated.get("/me", headers=cookie_header("session", old.cookies["session"])).json()["user"]
        == "ann"
    )


def test_session_change_after_the_first_chunk_is_not_silently_lost(router, make_client, caplog):
    def late():
        yield "first"
        session()["late"] = True
        yield "second"

    router.get("/late")(late)
    router.get("/me")(lambda: dict(session()))
    client = make_client(secret_key="k")
    with caplog.at_level(logging.ERROR, logger="microroute"):
        chunks = client.get("/late", stream=True).iter_content(None)
        assert next(chunks) == b"first"
        # As with cookies().set() there: an error that cuts the stream and is logged.
        with pytest.raises(RuntimeError):
            list(chunks)
    assert "Error while streaming" in caplog.text
    assert client.get("/me").json() == {}
