"""Request-scoped helpers: cookies(), headers() and session() through the TestClient."""

from __future__ import annotations

import logging

import pytest

from microroute import App, HTTPError, Response, abort, cookies, headers, redirect, session


def set_cookies(response) -> list[str]:
    """Every Set-Cookie header of *response*, one string each."""
    return response.raw.headers.getlist("Set-Cookie")


def attributes(header: str) -> set[str]:
    """The attribute names of one Set-Cookie header, lower-cased (``{"path", ...}``)."""
    return {part.split("=")[0].strip().lower() for part in header.split(";")[1:]}


# -- reading ---------------------------------------------------------------------


def test_get_has_and_all_read_the_request_cookies(router, make_client):
    @router.get("/read")
    def read():
        jar = cookies()
        return [
            jar.get("theme"),
            jar.get("nope", "dflt"),
            jar.has("theme"),
            jar.has("nope"),
            jar.all(),
        ]

    resp = make_client().get("/read", headers={"Cookie": "theme=dark; lang=en"})
    assert resp.json() == ["dark", "dflt", True, False, {"theme": "dark", "lang": "en"}]


def test_reads_reflect_sets_and_deletes_made_earlier_in_the_request(router, make_client):
    @router.get("/change")
    def change():
        jar = cookies()
        jar.set("theme", "light")
        jar.delete("lang")
        jar.set("new", "1")
        return [jar.get("theme"), jar.get("lang"), jar.has("lang"), "new" in jar, jar.all()]

    resp = make_client().get("/change", headers={"Cookie": "theme=dark; lang=en"})
    assert resp.json() == ["light", None, False, True, {"new": "1", "theme": "light"}]


# -- writing: defaults and attributes ---------------------------------------------


def test_set_defaults_are_path_httponly_samesite_lax_only(router, make_client):
    router.get("/set")(lambda: cookies().set("theme", "dark"))
    client = make_client()
    resp = client.get("/set")
    [header] = set_cookies(resp)
    assert header.startswith("theme=dark;")
    assert "Path=/" in header
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert attributes(header) == {"path", "httponly", "samesite"}
    assert client.cookies.get("theme") == "dark"


def test_set_takes_explicit_attributes(router, make_client):
    router.get("/set")(
        lambda: cookies().set(
            "t", "v", max_age=60, path="/api", domain="example.com", httponly=False,
            samesite="strict", secure=True,
        )
    )  # fmt: skip
    [header] = set_cookies(make_client().get("/set"))
    assert "Max-Age=60" in header
    assert "Path=/api" in header
    assert "Domain=example.com" in header
    assert "SameSite=Strict" in header
    assert "Secure" in header
    assert "HttpOnly" not in header


def test_secure_is_added_over_https(router, make_client):
    router.get("/set")(lambda: cookies().set("t", "v"))
    client = make_client()
    [header] = set_cookies(client.get("https://testserver/set"))
    assert "secure" in attributes(header)
    [plain] = set_cookies(client.get("http://testserver/set"))
    assert "secure" not in attributes(plain)


@pytest.mark.parametrize(("trust_proxy", "secure"), [(True, True), (False, False)])
def test_forwarded_proto_is_honoured_only_behind_trust_proxy(
    router, make_client, trust_proxy, secure
):
    router.get("/set")(lambda: cookies().set("t", "v"))
    client = make_client(trust_proxy=trust_proxy)
    [header] = set_cookies(client.get("/set", headers={"X-Forwarded-Proto": "https"}))
    assert ("secure" in attributes(header)) is secure


def test_several_cookies_give_several_set_cookie_headers(router, make_client):
    @router.get("/many")
    def many():
        cookies().set("a", "1")
        cookies().set("b", "2")
        cookies().set("c", "3")

    client = make_client()
    resp = client.get("/many")
    assert [h.split(";")[0] for h in set_cookies(resp)] == ["a=1", "b=2", "c=3"]
    assert dict(client.cookies) == {"a": "1", "b": "2", "c": "3"}


def test_delete_expires_the_cookie_in_the_client(router, make_client):
    router.get("/set")(lambda: cookies().set("theme", "dark"))
    router.get("/delete")(lambda: cookies().delete("theme"))
    client = make_client()
    client.get("/set")
    assert client.cookies.get("theme") == "dark"
    [header] = set_cookies(client.get("/delete"))
    assert header.startswith("theme=;")
    assert "Max-Age=0" in header
    assert "theme" not in client.cookies


# -- cookies reach every kind of response ----------------------------------------


def _raise(exc):
    raise exc


def _flagged(answer):
    """A handler that sets the cookie ``flag`` and then does *answer*."""

    def handler():
        cookies().set("flag", "on")
        return answer()

    return handler


def _streamed():
    cookies().set("flag", "on")
    yield "one"
    yield "two"


def _stream_abort():
    cookies().set("flag", "on")
    abort(401)
    yield "never"


KINDS = {
    "dict": (_flagged(lambda: {"ok": True}), 200),
    "tuple": (_flagged(lambda: ({"ok": True}, 201, {"X-Extra": "1"})), 201),
    "Response": (_flagged(lambda: Response("raw", status=202)), 202),
    "stream": (_streamed, 200),
    "stream-abort": (_stream_abort, 401),
    "redirect": (_flagged(lambda: redirect("/elsewhere")), 307),
    "abort": (_flagged(lambda: abort(403, "no")), 403),
    "HTTPError": (_flagged(lambda: _raise(HTTPError(409, "conflict"))), 409),
    "500": (_flagged(lambda: _raise(ValueError("boom"))), 500),
}


@pytest.mark.parametrize("kind", KINDS)
def test_cookie_set_by_handler_reaches_every_kind_of_response(router, make_client, kind):
    handler, status = KINDS[kind]
    router.get("/x")(handler)
    resp = make_client().get("/x", allow_redirects=False, stream=True)
    assert resp.status_code == status
    assert [h.split(";")[0] for h in set_cookies(resp)] == ["flag=on"]
    resp.close()


def test_response_keeps_its_own_set_cookie_beside_the_helpers(router, make_client):
    @router.get("/both")
    def both():
        cookies().set("helper", "1")
        response = Response("x")
        response.set_cookie("own", "2")
        return response

    client = make_client()
    assert sorted(h.split(";")[0] for h in set_cookies(client.get("/both"))) == [
        "helper=1",
        "own=2",
    ]


def test_head_carries_the_cookie(router, make_client):
    router.get("/x")(KINDS["dict"][0])
    resp = make_client().head("/x")
    assert (resp.status_code, resp.content) == (200, b"")
    assert [h.split(";")[0] for h in set_cookies(resp)] == ["flag=on"]


@pytest.mark.parametrize("value", ["a b", "x;y", "a,b", "a=b", "café", ""])
def test_values_needing_quoting_round_trip(router, make_client, value):
    @router.get("/set")
    def set_it(request):
        cookies().set("v", request.args["v"])
        return {"same_request": cookies().get("v")}

    router.get("/get")(lambda: {"v": cookies().get("v")})
    client = make_client()
    assert client.get("/set", params={"v": value}).json() == {"same_request": value}
    assert client.get("/get").json() == {"v": value}


def test_streamed_body_still_arrives_with_the_cookie(router, make_client):
    router.get("/stream")(_streamed)
    client = make_client()
    with client.get("/stream", stream=True) as resp:
        assert client.cookies.get("flag") == "on"
        assert b"".join(resp.iter_content(None)) == b"onetwo"


def test_cookie_set_after_the_first_chunk_cuts_the_stream_and_is_logged(
    router, make_client, caplog
):
    def late():
        yield "first"
        cookies().set("late", "1")
        yield "never"

    router.get("/late")(late)
    client = make_client()
    with caplog.at_level(logging.ERROR, logger="microroute"):
        resp = client.get("/late", stream=True)
        assert "late" not in client.cookies
        chunks = resp.iter_content(None)
        assert next(chunks) == b"first"
        with pytest.raises(RuntimeError, match="before the first chunk"):
            list(chunks)
    records = [r for r in caplog.records if r.name == "microroute"]
    assert records, "the stream error was not logged"
    assert "Error while streaming" in caplog.text
    assert "'late'" in caplog.text


# -- headers() --------------------------------------------------------------------


def test_headers_are_case_insensitive_and_read_only(router, make_client):
    @router.get("/h")
    def read():
        h = headers()
        try:
            h["X-Token"] = "forged"
            writable = True
        except TypeError:
            writable = False
        return [h.get("x-token"), h["X-TOKEN"], "X-Token" in h, writable]

    resp = make_client().get("/h", headers={"X-Token": "abc"})
    assert resp.json() == ["abc", "abc", True, False]


# -- outside a request, no bleed ----------------------------------------------------


@pytest.mark.parametrize(
    ("helper", "name"), [(cookies, "cookies()"), (headers, "headers()"), (session, "session()")]
)
def test_helpers_raise_outside_a_request(helper, name):
    with pytest.raises(RuntimeError, match="outside a request") as caught:
        helper()
    assert name in str(caught.value)


def test_sequential_requests_do_not_share_cookies(router, client_for):
    @router.get("/whoami")
    def whoami():
        seen = {"cookies": cookies().all(), "session": dict(session())}
        if name := headers().get("X-User"):
            cookies().set("user", name)
            session()["user"] = name
        return seen

    app = App(router, secret_key="k")
    ann, bob = client_for(app), client_for(app)
    ann.get("/whoami", headers={"X-User": "ann"})
    second = bob.get("/whoami")
    assert second.json() == {"cookies": {}, "session": {}}
    assert set_cookies(second) == []
    bob.get("/whoami", headers={"X-User": "bob"})
    assert ann.get("/whoami").json()["session"] == {"user": "ann"}
    assert bob.get("/whoami").json()["session"] == {"user": "bob"}
