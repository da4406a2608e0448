"""The route cache through the TestClient: which GETs are kept, and how they are served."""

from __future__ import annotations

import logging
import time
from collections import Counter

import pytest
from support import CACHE, row

from microroute import Request, Response, cookies, headers, session
from microroute.testing import TestClient

# -- static by default --------------------------------------------------------


def test_static_get_is_miss_then_hit_and_runs_once(router, make_client, calls):
    @router.get("/hello")
    def hello():
        calls["hello"] += 1
        return {"message": "hi"}

    client = make_client()
    first, second, third = (client.get("/hello") for _ in range(3))
    assert first.headers[CACHE] == "MISS"
    assert second.headers[CACHE] == third.headers[CACHE] == "HIT"
    assert first.content == second.content == third.content == b'{"message":"hi"}'
    assert second.headers["Content-Type"] == first.headers["Content-Type"]
    assert calls["hello"] == 1


def test_path_params_are_separate_entries(router, make_client, calls):
    @router.get("/users/[id]")
    def user(id: str):
        calls[id] += 1
        return {"id": id}

    client = make_client()
    assert client.get("/users/1").json() == {"id": "1"}
    assert client.get("/users/2").json() == {"id": "2"}
    assert client.get("/users/1").headers[CACHE] == "HIT"
    assert calls == {"1": 1, "2": 1}


# -- what makes a GET dynamic --------------------------------------------------


def _assert_dynamic(client: TestClient, path: str, calls: Counter[str], runs: int = 3) -> None:
    before = calls[path]
    for _ in range(runs):
        response = client.get(path)
        assert response.status_code == 200, response.text
        assert CACHE not in response.headers
    assert calls[path] - before == runs


def test_handler_taking_request_is_dynamic(router, make_client, calls):
    @router.get("/echo")
    def echo(request: Request):
        calls["/echo"] += 1
        return {"q": request.args.get("q")}

    client = make_client()
    _assert_dynamic(client, "/echo", calls)
    assert row(client, "/echo")["mode"] == "dynamic"
    assert row(client, "/echo")["reason"] == "takes request"


@pytest.mark.parametrize(
    ("helper", "call"),
    [
        ("cookies()", lambda: cookies().get("theme")),
        ("headers()", lambda: headers().get("Accept")),
        ("session()", lambda: session().get("user")),
    ],
)
def test_calling_a_helper_makes_the_route_dynamic_at_run_time(
    router, make_client, calls, helper, call
):
    @router.get("/me")
    def me():
        calls["/me"] += 1
        return {"value": call()}

    client = make_client(secret_key="k")
    assert row(client, "/me")["mode"] == "static"
    # The build runs the handler up to the helper call and is abandoned; the
    # live request is then served normally, and every later one too.
    first = client.get("/me")
    assert (first.status_code, calls["/me"]) == (200, 2)
    assert CACHE not in first.headers
    _assert_dynamic(client, "/me", calls)
    assert row(client, "/me") | {"source": ""} == {
        "methods": "GET",
        "path": "/me",
        "source": "",
        "mode": "dynamic",
        "reason": f"calls {helper}",
    }


def test_route_marked_dynamic_serves_no_more_hits(router, make_client, calls):
    """Once a run calls headers(), the *whole* route is dynamic, its older entries too."""

    @router.get("/items/[id]")
    def item(id: str):
        calls[id] += 1
        if id == "personal":
            headers().get("Accept")
        return {"id": id, "run": calls[id]}

    client = make_client()
    assert client.get("/items/public").headers[CACHE] == "MISS"
    assert CACHE not in client.get("/items/personal").headers
    assert row(client, "/items/[id]")["reason"] == "calls headers()"
    again = client.get("/items/public")
    assert CACHE not in again.headers
    assert again.json() == {"id": "public", "run": 2}


def test_streaming_response_is_dynamic(router, make_client, calls):
    @router.get("/stream")
    def stream():
        calls["/stream"] += 1
        yield "a"
        yield "b"

    client = make_client()
    _assert_dynamic(client, "/stream", calls)
    assert client.get("/stream").content == b"ab"
    assert row(client, "/stream")["reason"] == "streams its response"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_route_that_also_writes_is_dynamic(router, make_client, calls, method):
    @router.get("/notes")
    def notes():
        calls["/notes"] += 1
        return ["a note"]

    router.add("/notes", lambda: {"ok": True}, methods=[method])
    client = make_client()
    _assert_dynamic(client, "/notes", calls)
    assert row(client, "/notes")["reason"] == f"route also serves {method}"


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"dynamic": "force-dynamic"}, 'dynamic = "force-dynamic"'),
        ({"revalidate": 0}, "revalidate = 0"),
    ],
)
def test_opting_out_by_config(router, make_client, calls, config, reason):
    @router.get("/now", **config)
    def now():
        calls["/now"] += 1
        return {"t": time.time()}

    client = make_client()
    _assert_dynamic(client, "/now", calls)
    assert row(client, "/now")["reason"] == reason


# -- what is stored --------------------------------------------------------------


@pytest.mark.parametrize(("status", "body"), [(201, {"made": True}), (404, {"error": "gone"})])
def test_only_200_is_stored(router, make_client, calls, status, body):
    @router.get("/thing")
    def thing():
        calls["/thing"] += 1
        return body, status

    client = make_client()
    for _ in range(2):
        response = client.get("/thing")
        assert response.status_code == status
        assert CACHE not in response.headers
    assert calls["/thing"] == 2


def test_failing_handler_is_not_stored(router, make_client, calls):
    @router.get("/flaky")
    def flaky():
        calls["/flaky"] += 1
        if calls["/flaky"] == 1:
            raise RuntimeError("first time")
        return {"ok": True}

    client = make_client()
    # The build raised: nothing is stored, the request is answered live (the
    # handler's second call), and the route is dynamic from then on (issue 20).
    first = client.get("/flaky")
    assert (first.status_code, first.json()) == (200, {"ok": True})
    assert CACHE not in first.headers
    assert CACHE not in client.get("/flaky").headers
    assert calls["/flaky"] == 3


def test_response_setting_a_cookie_is_never_stored(router, make_client, calls):
    @router.get("/welcome")
    def welcome():
        calls["/welcome"] += 1
        response = Response("hello")
        response.set_cookie("seen", "1")
        return response

    client = make_client()
    for _ in range(3):
        response = client.get("/welcome")
        assert response.cookies["seen"] == "1"
        assert CACHE not in response.headers
    assert calls["/welcome"] == 3


# -- keys ----------------------------------------------------------------------------


def test_keyed_by_path_alone(router, make_client, calls):
    """A static entry is keyed by path only: a build cannot read the query."""

    @router.get("/list")
    def listing():
        calls["/list"] += 1
        return {"run": calls["/list"]}

    client = make_client()
    assert client.get("/list?page=1").headers[CACHE] == "MISS"
    for query in ("?page=2", "?cb=3", ""):
        hit = client.get("/list" + query)
        assert (hit.headers[CACHE], hit.json()) == ("HIT", {"run": 1})
    assert calls["/list"] == 1


def test_force_static_ignores_the_query_string(router, make_client, calls):
    @router.get("/list", dynamic="force-static")
    def listing():
        calls["/list"] += 1
        return {"run": calls["/list"]}

    client = make_client()
    assert client.get("/list?page=1").headers[CACHE] == "MISS"
    hit = client.get("/list?page=2")
    assert (hit.headers[CACHE], hit.json()) == ("HIT", {"run": 1})
    assert client.get("/list").headers[CACHE] == "HIT"


def test_force_static_hands_the_handler_empty_query_headers_and_cookies(router, make_client):
    @router.get("/seen", dynamic="force-static")
    def seen(request: Request):
        return {
            "args": dict(request.args),
            "header": request.headers.get("X-Who"),
            "cookies": dict(request.cookies),
            "helper_header": headers().get("X-Who"),
            "helper_cookies": cookies().all(),
        }

    client = make_client()
    response = client.get("/seen?q=1", headers={"X-Who": "me"}, cookies={"who": "me"})
    assert response.headers[CACHE] == "MISS"
    assert response.json() == {
        "args": {},
        "header": None,
        "cookies": {},
        "helper_header": None,
        "helper_cookies": {},
    }
    assert row(client, "/seen")["mode"] == "static"
    assert client.get("/seen?other=2").headers[CACHE] == "HIT"


def test_dynamic_error_makes_a_helper_call_a_500_naming_the_route(router, make_client, caplog):
    @router.get("/strict", dynamic="error")
    def strict_handler():
        return {"theme": cookies().get("theme")}

    client = make_client()
    with caplog.at_level(logging.ERROR, logger="microroute"):
        response = client.get("/strict")
    assert response.status_code == 500
    assert CACHE not in response.headers
    assert "strict_handler()" in caplog.text
    assert 'dynamic = "error"' in caplog.text
    assert "cookies()" in caplog.text


# -- turning it off ----------------------------------------------------------------


def test_cache_false_turns_the_cache_off(router, make_client, calls):
    @router.get("/hello")
    def hello():
        calls["/hello"] += 1
        return "hi"

    client = make_client(cache=False)
    _assert_dynamic(client, "/hello", calls)
    assert row(client, "/hello")["reason"] == "cache off"


def test_microroute_cache_0_turns_the_cache_off(router, make_client, calls, monkeypatch):
    monkeypatch.setenv("MICROROUTE_CACHE", "0")

    @router.get("/hello")
    def hello():
        calls["/hello"] += 1
        return "hi"

    client = make_client()
    _assert_dynamic(client, "/hello", calls)
    assert row(client, "/hello")["mode"] == "dynamic"
