"""The route cache through the TestClient: which GETs are kept, and how they are served."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import pytest

from microroute import App, Request, Response, cookies, headers, session
from microroute.cli import main
from microroute.testing import TestClient

CACHE = "X-Microroute-Cache"


def wait_for(condition, timeout: float = 5.0) -> None:
    """Poll *condition* until it is true, or fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met after {timeout}s")
        time.sleep(0.01)


def row(client: TestClient, path: str) -> dict[str, str]:
    return next(r for r in client.app.route_table() if r["path"] == path)


@pytest.fixture
def calls() -> Counter[str]:
    """How many times each handler ran, counted by the handlers themselves."""
    return Counter()


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
    for _ in range(runs):
        response = client.get(path)
        assert response.status_code == 200, response.text
        assert CACHE not in response.headers
    assert calls[path] == runs


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
    assert client.get("/flaky").status_code == 500
    assert client.get("/flaky").headers[CACHE] == "MISS"
    assert client.get("/flaky").headers[CACHE] == "HIT"


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


def test_keyed_by_query_string(router, make_client, calls):
    @router.get("/list")
    def listing():
        calls["/list"] += 1
        return {"run": calls["/list"]}

    client = make_client()
    assert client.get("/list?page=1").json() == {"run": 1}
    assert client.get("/list?page=2").json() == {"run": 2}
    hit = client.get("/list?page=1")
    assert (hit.headers[CACHE], hit.json()) == ("HIT", {"run": 1})
    assert client.get("/list").json() == {"run": 3}


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


# -- headers ---------------------------------------------------------------------------


def test_cache_control_for_static_and_revalidated_routes(router, make_client):
    router.add("/forever", lambda: "x")
    router.add("/minute", lambda: "x", revalidate=60)
    client = make_client()
    for _ in range(2):  # the MISS and the HIT say the same
        assert client.get("/forever").headers["Cache-Control"] == "s-maxage=31536000"
        assert client.get("/minute").headers["Cache-Control"] == (
            "s-maxage=60, stale-while-revalidate=31535940"
        )


def test_handler_cache_control_is_kept(router, make_client):
    router.add("/own", lambda: Response("x", headers={"Cache-Control": "no-store"}))
    client = make_client()
    client.get("/own")
    hit = client.get("/own")
    assert hit.headers[CACHE] == "HIT"
    assert hit.headers["Cache-Control"] == "no-store"


def test_strong_etag_and_304(router, make_client, calls):
    @router.get("/doc")
    def doc():
        calls["/doc"] += 1
        return "the document"

    client = make_client()
    etag = client.get("/doc").headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')  # strong: no W/
    assert client.get("/doc").headers["ETag"] == etag

    not_modified = client.get("/doc", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["ETag"] == etag
    assert client.get("/doc", headers={"If-None-Match": f'"other", {etag}'}).status_code == 304

    changed = client.get("/doc", headers={"If-None-Match": '"other"'})
    assert (changed.status_code, changed.text) == (200, "the document")
    assert calls["/doc"] == 1


def test_head_is_served_from_the_cached_get(router, make_client, calls):
    @router.get("/page")
    def page():
        calls["/page"] += 1
        return "a page"

    client = make_client()
    get = client.get("/page")
    head = client.head("/page")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers[CACHE] == "HIT"
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Content-Length"] == get.headers["Content-Length"] == "6"
    assert calls["/page"] == 1


# -- revalidate = N ------------------------------------------------------------------------


def test_stale_is_served_at_once_while_one_regeneration_runs(router, make_client, calls):
    release = threading.Event()

    @router.get("/news", revalidate=0.2)
    def news():
        calls["/news"] += 1
        if calls["/news"] > 1:
            release.wait(5)  # the regeneration holds until every stale request is in
        return {"edition": calls["/news"]}

    client = make_client()
    assert client.get("/news").json() == {"edition": 1}
    assert client.get("/news").headers[CACHE] == "HIT"
    time.sleep(0.25)
    for _ in range(5):
        started = time.monotonic()
        stale = client.get("/news")
        assert time.monotonic() - started < 1  # not waiting for the regeneration
        assert (stale.headers[CACHE], stale.json()) == ("STALE", {"edition": 1})
    assert calls["/news"] == 2  # exactly one regeneration for five stale requests
    release.set()
    wait_for(lambda: client.get("/news").headers[CACHE] == "HIT")
    fresh = client.get("/news")
    assert (fresh.headers[CACHE], fresh.json()) == ("HIT", {"edition": 2})
    assert calls["/news"] == 2


def test_failing_regeneration_keeps_the_stale_copy(router, make_client, calls, caplog):
    @router.get("/feed", revalidate=0.1)
    def feed():
        calls["/feed"] += 1
        if calls["/feed"] > 1:
            raise ConnectionError("database down")
        return {"items": [1]}

    client = make_client()
    client.get("/feed")
    time.sleep(0.15)
    with caplog.at_level(logging.WARNING, logger="microroute"):
        stale = client.get("/feed")
        wait_for(lambda: "Revalidating /feed" in caplog.text)
    assert (stale.headers[CACHE], stale.json()) == ("STALE", {"items": [1]})
    assert "database down" in caplog.text
    after = client.get("/feed")
    assert (after.status_code, after.json()) == (200, {"items": [1]})
    assert after.headers[CACHE] == "STALE"


# -- control ----------------------------------------------------------------------------------


def test_revalidate_path_drops_every_query_of_a_path(router, make_client, calls):
    @router.get("/posts")
    def posts():
        calls["/posts"] += 1
        return {"run": calls["/posts"]}

    app = App(router)
    client = TestClient(app)
    client.get("/posts")
    client.get("/posts?page=2")
    assert app.revalidate_path("/posts") == 2
    again = client.get("/posts")
    assert (again.headers[CACHE], again.json()) == ("MISS", {"run": 3})
    assert app.revalidate_path("/nothing-here") == 0


def test_revalidate_path_subtree(router, client_for, calls):
    @router.get("/blog/[slug]")
    def post(slug: str):
        calls[slug] += 1
        return slug

    router.add("/blog", lambda: "index")
    router.add("/blogger", lambda: "someone else")
    app = App(router)
    client = client_for(app)
    for path in ("/blog", "/blog/a", "/blog/b", "/blogger"):
        client.get(path)
    assert app.revalidate_path("/blog", subtree=True) == 3
    assert client.get("/blog").headers[CACHE] == "MISS"
    assert client.get("/blog/a").headers[CACHE] == "MISS"
    assert client.get("/blogger").headers[CACHE] == "HIT"
    assert calls == {"a": 2, "b": 1}


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


def test_lru_bound_by_bytes_evicts_the_oldest(router, make_client, calls):
    @router.get("/blob/[name]")
    def blob(name: str):
        calls[name] += 1
        return Response(b"x" * 1000)

    client = make_client(cache_max_bytes=2 * 1500)  # room for two ~1.4 KB entries
    for name in ("a", "b", "c"):
        assert client.get(f"/blob/{name}").headers[CACHE] == "MISS"
    assert client.get("/blob/c").headers[CACHE] == "HIT"
    assert client.get("/blob/b").headers[CACHE] == "HIT"
    assert client.get("/blob/a").headers[CACHE] == "MISS"  # evicted: the oldest
    assert calls == {"a": 2, "b": 1, "c": 1}


def test_lru_keeps_a_recently_read_entry(router, make_client, calls):
    @router.get("/blob/[name]")
    def blob(name: str):
        calls[name] += 1
        return Response(b"x" * 1000)

    client = make_client(cache_max_bytes=2 * 1500)
    client.get("/blob/a")
    client.get("/blob/b")
    assert client.get("/blob/a").headers[CACHE] == "HIT"  # a is now the most recent
    client.get("/blob/c")  # evicts the least recently used: b
    assert client.get("/blob/a").headers[CACHE] == "HIT"
    assert client.get("/blob/b").headers[CACHE] == "MISS"


def test_entry_larger_than_the_cache_is_served_but_not_kept(router, make_client, calls):
    @router.get("/big")
    def big():
        calls["/big"] += 1
        return Response(b"x" * 5000)

    client = make_client(cache_max_bytes=1000)
    assert len(client.get("/big").content) == 5000
    assert len(client.get("/big").content) == 5000
    assert calls["/big"] == 2


def test_route_table_marks_static_and_dynamic_with_reasons(router, make_client):
    router.add("/static", lambda: "s")
    router.add("/fresh", lambda: "s", revalidate=30)
    router.add("/pinned", lambda request: "s", dynamic="force-static")
    router.add("/form", lambda request: "f")
    router.add("/submit", lambda: "ok", methods=["POST"])
    client = make_client()
    table = {r["path"]: (r["mode"], r["reason"]) for r in client.app.route_table()}
    assert table == {
        "/static": ("static", ""),
        "/fresh": ("static", "revalidate 30s"),
        "/pinned": ("static", 'dynamic = "force-static"'),
        "/form": ("dynamic", "takes request"),
        "/submit": ("dynamic", "no GET handler"),
    }


def test_microroute_routes_prints_static_or_dynamic_with_the_reason(tmp_path, capsys):
    target = tmp_path / "cache_routes_app.py"
    target.write_text(
        "from microroute import App, Router\n"
        "r = Router()\n"
        "r.add('/static', lambda: 's')\n"
        "r.add('/live', lambda: 's', dynamic='force-dynamic')\n"
        "app = App(r)\n"
    )
    assert main(["routes", str(target)]) == 0
    lines = capsys.readouterr().out.splitlines()
    live = next(line for line in lines if " /live " in line)
    static = next(line for line in lines if " /static " in line)
    assert "dynamic" in live and "force-dynamic" in live
    assert "static" in static.replace("/static", "")


def test_middleware_runs_around_a_cache_hit(router, client_for, calls):
    @router.get("/hello")
    def hello():
        calls["/hello"] += 1
        return "hi"

    seen: list[str] = []
    app = App(router)

    @app.use
    def tag(request, call_next):
        seen.append(request.path)
        response = call_next(request)
        response.headers["X-Tagged"] = "yes"
        return response

    client = client_for(app)
    client.get("/hello")
    hit = client.get("/hello")
    assert (hit.headers[CACHE], hit.headers["X-Tagged"], hit.text) == ("HIT", "yes", "hi")
    assert seen == ["/hello", "/hello"]
    assert calls["/hello"] == 1


def test_concurrent_first_requests_run_the_handler_once(router, make_client, calls):
    @router.get("/slow")
    def slow():
        calls["/slow"] += 1
        time.sleep(0.2)
        return {"run": calls["/slow"]}

    app = make_client().app
    barrier = threading.Barrier(20)
    bodies: list[bytes] = []

    def one() -> None:
        with TestClient(app) as client:
            barrier.wait()
            bodies.append(client.get("/slow").content)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert bodies == [b'{"run":1}'] * 20
    assert calls["/slow"] == 1
