"""Signed values are bound to their cookie's name: no swapping one for another.

Every signed cookie used to share one salt, so a value the app signed for a
cookie the user chooses (``nickname``) verified as any other signed cookie
(``uid``). Each name now has a salt of its own, the session's cookie too.
"""

from __future__ import annotations

from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from microroute import App, Router, cookies, session

KEY = b"security-tests"  # security_app's secret_key


def signed_for(client, nickname: str) -> str:
    """The value the app signs for the cookie ``nickname``, as a user receives it."""
    client.post(f"/nickname?value={nickname}")
    return client.cookies["nickname"]


def test_a_value_signed_for_one_cookie_does_not_verify_as_another(client, refused):
    """README: 'a value signed for one cookie name never verifies under another'.

    And README: 'reads as missing, and so does a value signed for another cookie name'.
    """
    swapped = signed_for(client, "0")
    client.cookies.clear()
    resp = client.get("/admin", headers={"Cookie": f"uid={swapped}"})
    assert refused(resp, 403) == {"error": "Admins only"}


def test_a_value_signed_for_its_own_name_verifies(client):
    genuine = TimestampSigner(KEY, salt="microroute.cookie:uid").sign("0").decode()
    assert client.get("/admin", headers={"Cookie": f"uid={genuine}"}).json() == {"admin": True}


def test_a_signed_cookie_does_not_verify_as_the_session(client):
    swapped = signed_for(client, "x")
    client.cookies.clear()
    assert client.get("/session", headers={"Cookie": f"session={swapped}"}).json() == {
        "session": {}
    }


def sessions() -> Router:
    api = Router()

    @api.post("/login")
    def login():
        session()["user"] = "admin"
        cookies().set("other", "1")
        return {"ok": True}

    @api.get("/me")
    def me():
        return {"user": session().get("user")}

    return api


def test_a_session_does_not_verify_under_another_session_cookie_name(client_for):
    one = client_for(App(sessions(), secret_key=KEY, session_cookie="admin_session"))
    other = client_for(App(sessions(), secret_key=KEY, session_cookie="shop_session"))
    one.post("/login")
    stolen = one.cookies["admin_session"]
    assert other.get("/me", headers={"Cookie": f"shop_session={stolen}"}).json() == {"user": None}
    # The session's salt is its cookie's name: a genuine one still reads back.
    genuine = URLSafeTimedSerializer(KEY, salt="microroute.session:shop_session").dumps(
        {"user": "shop"}
    )
    assert other.get("/me", headers={"Cookie": f"shop_session={genuine}"}).json() == {
        "user": "shop"
    }


def test_key_rotation_keeps_verifying_per_name(client_for):
    """README: 'the last key signs, every key verifies' (with a salt per cookie name)."""
    api = Router()

    @api.get("/uid")
    def uid():
        return {"uid": cookies().get("uid", signed=True)}

    client = client_for(App(api, secret_key=[b"old-key", b"new-key"]))
    old = TimestampSigner(b"old-key", salt="microroute.cookie:uid").sign("0").decode()
    assert client.get("/uid", headers={"Cookie": f"uid={old}"}).json() == {"uid": "0"}
    swapped = TimestampSigner(b"old-key", salt="microroute.cookie:nick").sign("0").decode()
    assert client.get("/uid", headers={"Cookie": f"uid={swapped}"}).json() == {"uid": None}
