"""The build model: a static response is made from no request, so it never depends on who asked.

Each test reproduces one way the old cache let one client's request shape the
entry every later client got (issue 11), through the public API.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from contextvars import ContextVar

from support import CACHE, row, wait_for

from microroute import App, Request, Response, Router, cookies, headers, session
from microroute.cache import Entry, MemoryStore
from microroute.testing import TestClient

# -- HEAD ----------------------------------------------------------------------------


def test_head_first_does_not_store_an_empty_body(router, make_client, calls):
    """HEAD is answered from the GET entry ...; a reply made for a HEAD is never stored."""

    @router.get("/page")
    def page():
        calls["/page"] += 1
        return Response("twenty bytes of body")  # werkzeug sends no body for a HEAD

    client = make_client()
    head = client.head("/page")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Length"] == "20"
    get = client.get("/page")
    assert (get.headers[CACHE], get.content) == ("HIT", b"twenty bytes of body")
    assert calls["/page"] == 1  # the HEAD's build was a GET, and it was stored


def test_head_on_a_stale_entry_rebuilds_the_whole_body(router, make_client, calls):
    @router.get("/news", revalidate=0.2)
    def news():
        calls["/news"] += 1
        return Response(f"edition {calls['/news']}")

    client = make_client()
    assert client.get("/news").content == b"edition 1"
    time.sleep(0.3)
    stale = client.head("/news")
    assert (stale.headers[CACHE], stale.content) == ("STALE", b"")
    wait_for(lambda: client.get("/news").content == b"edition 2")
    assert client.get("/news").headers["Content-Length"] == "9"


# -- nothing from the live request reaches a build ----------------------------------

_user: ContextVar[str | None] = ContextVar("user", default=None)


def _auth(request: Request, call_next):
    _user.set(request.headers.get("Authorization"))
    return call_next(request)


def test_a_value_middleware_put_in_a_contextvar_never_reaches_the_entry(router, make_client):
    """"A static response can never depend on who asked": Alice's profile never reaches Bob."""

    @router.get("/api/me")
    def me():
        return {"user": _user.get()}

    client = make_client()
    client.app.use(_auth)
    alice = client.get("/api/me", headers={"Authorization": "alice"})
    bob = client.get("/api/me", headers={"Authorization": "bob"})
    assert alice.json() == bob.json() == {"user": None}
    assert bob.headers[CACHE] == "HIT"


_db: ContextVar[str] = ContextVar("db")  # no default: set by middleware per request


def test_a_build_that_raises_is_answered_as_dynamic_through_middleware(
    router, make_client, caplog
):
    """README: "a build that raises is not a 500 for its request; the request is answered
    as dynamic, through middleware, and when that works the route is dynamic from then on
    (the route table says `build failed: LookupError: ...`) and the log says so once,
    naming the route"."""

    @router.get("/api/rows")
    def rows():
        return {"db": _db.get()}

    client = make_client()

    def open_db(request, call_next):
        _db.set("connection")
        return call_next(request)

    client.app.use(open_db)
    with caplog.at_level(logging.WARNING, logger="microroute"):
        first = client.get("/api/rows")
        second = client.get("/api/rows")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() == {"db": "connection"}
    assert CACHE not in first.headers and CACHE not in second.headers
    builds = [r for r in caplog.records if "The static build of" in r.getMessage()]
    assert len(builds) == 1 and "rows()" in builds[0].getMessage()
    assert 'dynamic = "force-dynamic"' in builds[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    (row,) = [r for r in client.app.route_table() if r["path"] == "/api/rows"]
    assert row["mode"] == "dynamic"
    assert row["reason"].startswith("build failed: LookupError")


def test_a_handler_broken_live_too_still_gets_its_500(router, make_client, caplog):
    """README: "A handler that fails live too still gets its 500 (and is built again next
    time)"."""

    @router.get("/api/broken")
    def broken():
        raise KeyError("always")

    client = make_client()
    with caplog.at_level(logging.ERROR, logger="microroute"):
        response = client.get("/api/broken")
    assert response.status_code == 500
    assert response.json() == {"error": "Internal Server Error"}
    assert caplog.text.count("Unhandled KeyError") == 1  # the live run's, logged once
    (row,) = [r for r in client.app.route_table() if r["path"] == "/api/broken"]
    assert row["mode"] == "static"


def test_force_static_never_sees_the_session_middleware_loaded(router, make_client):
    """A force-static handler reads the build's empty session, not Alice's."""

    @router.get("/greet", dynamic="force-static")
    def greet():
        return {"hello": session().get("user")}

    @router.post("/login")
    def login(request: Request):
        session()["user"] = request.json["user"]
        return {"ok": True}

    client = make_client(secret_key="k")

    def load_session(request, call_next):
        session().get("user")
        return call_next(request)

    client.app.use(load_session)
    client.post("/login", json={"user": "alice"})
    assert client.get("/greet").json() == {"hello": None}
    bob = TestClient(client.app)
    assert bob.get("/greet").json() == {"hello": None}


def test_force_static_builds_with_the_static_host_not_the_clients(router, make_client):
    @router.get("/where", dynamic="force-static")
    def where(request: Request):
        return {"url": request.url, "host": headers().get("Host"), "args": dict(request.args)}

    client = make_client()
    evil = client.get("/where?x=1", headers={"Host": "evil.example"})
    assert evil.json() == {"url": "http://localhost/where", "host": "localhost", "args": {}}
    assert client.get("/where").json() == evil.json()


def test_static_host_is_configurable(router, make_client):
    router.add("/where", lambda request: request.host, dynamic="force-static")
    assert make_client(static_host="api.example.com").get("/where").text == "api.example.com"


def test_the_query_cannot_bust_the_cache(router, make_client, calls):
    @router.get("/list")
    def listing():
        calls["/list"] += 1
        return ["a", "b"]

    client = make_client()
    for n in range(200):
        assert client.get(f"/list?cb={n}").status_code == 200
    assert calls["/list"] == 1
    assert len(client.app._cache.store) == 1


def test_middleware_wraps_hits_and_never_runs_inside_a_build(router, make_client, calls):
    """Middleware "runs on every request, HIT or MISS, ... and never runs inside a build"."""

    @router.get("/doc")
    def doc():
        return "doc"

    client = make_client()

    def count(request, call_next):
        calls["middleware"] += 1
        response = call_next(request)
        response.headers["X-Seen"] = "1"
        return response

    client.app.use(count)
    miss, hit = client.get("/doc"), client.get("/doc")
    assert (miss.headers[CACHE], hit.headers[CACHE]) == ("MISS", "HIT")
    assert miss.headers["X-Seen"] == hit.headers["X-Seen"] == "1"
    assert calls["middleware"] == 2


def test_middleware_may_refuse_before_a_hit(router, make_client):
    router.add("/secret", lambda: "the plans")
    client = make_client()

    def guard(request, call_next):
        if request.headers.get("Authorization") != "yes":
            return {"error": "Unauthorized"}, 401
        return call_next(request)

    client.app.use(guard)
    assert client.get("/secret", headers={"Authorization": "yes"}).text == "the plans"
    refused = client.get("/secret")
    assert (refused.status_code, refused.json()) == (401, {"error": "Unauthorized"})


def test_revalidation_runs_the_same_build_as_a_miss(router, make_client, calls):
    """SWR regenerates with the synthetic request: where a MISS worked, it works."""

    @router.get("/edition", revalidate=0.2)
    def edition():
        calls["/edition"] += 1
        return {"edition": calls["/edition"], "host": headers().get("Host", "")}

    # headers() abandons a build: a route reading it is dynamic, never stale-forever.
    client = make_client()
    client.get("/edition")
    assert row(client, "/edition")["reason"] == "calls headers()"

    @router.get("/feed", revalidate=0.2)
    def feed():
        calls["/feed"] += 1
        return {"edition": calls["/feed"], "user": _user.get()}

    client = make_client()
    client.app.use(_auth)
    miss = client.get("/feed", headers={"Authorization": "alice"})
    assert miss.json() == {"edition": 1, "user": None}
    time.sleep(0.3)
    assert client.get("/feed", headers={"Authorization": "bob"}).headers[CACHE] == "STALE"
    wait_for(lambda: client.get("/feed").headers[CACHE] == "HIT")
    assert client.get("/feed").json() == {"edition": 2, "user": None}


# -- the dynamic-abort rule ------------------------------------------------------


def test_a_helper_call_abandons_the_build_and_serves_the_live_request(router, make_client):
    @router.get("/theme")
    def theme():
        return {"theme": cookies().get("theme", "light")}

    client = make_client()
    assert row(client, "/theme")["mode"] == "static"
    response = client.get("/theme", cookies={"theme": "dark"})
    assert response.json() == {"theme": "dark"}  # served live, with its own cookie
    assert CACHE not in response.headers
    assert row(client, "/theme") | {"source": ""} == {
        "methods": "GET",
        "path": "/theme",
        "source": "",
        "mode": "dynamic",
        "reason": "calls cookies()",
    }


def test_a_handler_swallowing_the_signal_still_abandons_the_build(router, make_client):
    @router.get("/sneaky")
    def sneaky():
        try:
            return {"h": headers().get("X-Who")}
        except BaseException:
            return {"h": "swallowed"}

    client = make_client()
    assert client.get("/sneaky", headers={"X-Who": "me"}).json() == {"h": "me"}
    assert row(client, "/sneaky")["reason"] == "calls headers()"


# -- what is never stored ---------------------------------------------------------------


def test_no_store_private_vary_and_set_cookie_make_the_route_dynamic(router, make_client, calls):
    cases = {
        "/no-store": ({"Cache-Control": "no-store"}, "Cache-Control: no-store"),
        "/private": ({"Cache-Control": "private, max-age=60"}, "Cache-Control: private"),
        "/vary": ({"Vary": "Accept-Language"}, "sends Vary"),
        "/cookie": ({"Set-Cookie": "a=1; Path=/"}, "sets a cookie"),
    }
    for path, (extra, _) in cases.items():

        # Unannotated: an annotated `path: str = path` would read ?path= (typed handlers).
        def handler(path=path, extra=extra):  # type: ignore[no-untyped-def]
            calls[path] += 1
            return "body", 200, extra

        router.add(path, handler)
    client = make_client()
    for path, (_, reason) in cases.items():
        for _ in range(2):
            assert CACHE not in client.get(path).headers
        assert calls[path] == 2
        assert row(client, path)["reason"] == reason


def test_generator_function_is_dynamic_at_registration(router, make_client):
    @router.get("/ticks")
    def ticks():
        yield "tick"

    client = make_client()
    assert (row(client, "/ticks")["mode"], row(client, "/ticks")["reason"]) == (
        "dynamic",
        "streams its response",
    )


# -- static_by_default=False (Next.js 15) ---------------------------------------------


def test_static_by_default_false_gives_next_15s_default(router, make_client, calls):
    @router.get("/plain")
    def plain():
        calls["/plain"] += 1
        return "plain"

    router.add("/forced", lambda: "forced", dynamic="force-static")
    router.add("/timed", lambda: "timed", revalidate=60)
    client = make_client(static_by_default=False)
    assert row(client, "/plain")["reason"] == "static_by_default=False"
    assert [row(client, p)["mode"] for p in ("/forced", "/timed")] == ["static", "static"]
    client.get("/plain")
    assert CACHE not in client.get("/plain").headers
    assert client.get("/forced").headers[CACHE] == "MISS"
    assert client.get("/timed").headers[CACHE] == "MISS"


# -- tags -------------------------------------------------------------------------------


def test_revalidate_tag_drops_every_route_with_the_tag(router, make_client, calls):
    @router.get("/posts", tags=["posts"])
    def posts():
        calls["/posts"] += 1
        return ["p"]

    @router.get("/posts/[id]", tags=["posts", "post"])
    def post(id: str):
        calls[id] += 1
        return {"id": id}

    @router.get("/about")
    def about():
        calls["/about"] += 1
        return "about"

    client = make_client()
    for path in ("/posts", "/posts/1", "/posts/2", "/about"):
        client.get(path)
    assert client.app.revalidate_tag("posts", expire=True) == 3
    assert client.app.revalidate_tag("posts", expire=True) == 0
    assert [client.get(p).headers[CACHE] for p in ("/posts", "/posts/1", "/about")] == [
        "MISS",
        "MISS",
        "HIT",
    ]


def test_tags_are_validated_naming_the_handler():
    import pytest

    api = Router()
    with pytest.raises(ValueError, match="tags must be a list"):
        api.add("/x", lambda: "x", tags="posts")


def test_tags_in_a_route_file(tmp_path, make_tree):
    app_dir = make_tree(
        tmp_path, {"app/posts/route.py": "tags = ['posts']\ndef GET(): return ['p']"}
    )
    client = TestClient(App(app_dir=app_dir))
    assert client.get("/posts").headers[CACHE] == "MISS"
    assert client.app.revalidate_tag("posts", expire=True) == 1


# -- the memory store ----------------------------------------------------------------------


def test_revalidate_path_while_other_threads_read(router, client_for):
    """revalidate_path never fails with 'OrderedDict mutated during iteration'."""
    router.add("/items/[id]", lambda id: {"id": id})
    app = App(router)
    client = client_for(app)
    for n in range(200):
        client.get(f"/items/{n}")
    stop = threading.Event()
    errors: list[BaseException] = []

    def read() -> None:
        reader = TestClient(app)
        while not stop.is_set():
            for n in range(200):
                try:
                    reader.get(f"/items/{n}")
                except BaseException as exc:  # pragma: no cover - the failure itself
                    errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(3)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show at once
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            app.revalidate_path("/items", subtree=True, expire=True)
            for n in range(0, 200, 7):
                client.get(f"/items/{n}")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        sys.setswitchinterval(interval)
    assert errors == []


def test_an_entry_too_large_for_the_store_replaces_the_old_copy():
    store = MemoryStore(max_bytes=2000)
    store.set("/doc", Entry("200 OK", [], b"small", 0.0, None))
    store.set("/doc", Entry("200 OK", [], b"x" * 5000, 0.0, None))
    assert store.get("/doc") is None
    assert store.used == 0


def test_a_rebuilt_entry_too_large_is_not_served_stale_forever(router, make_client, calls):
    @router.get("/grows", revalidate=0.2)
    def grows():
        calls["/grows"] += 1
        return "x" * (10 if calls["/grows"] == 1 else 5000)

    client = make_client(cache_max_bytes=2000)
    assert client.get("/grows").headers[CACHE] == "MISS"
    time.sleep(0.3)
    assert client.get("/grows").headers[CACHE] == "STALE"
    wait_for(lambda: calls["/grows"] == 2)
    wait_for(lambda: client.get("/grows").headers[CACHE] in ("MISS", None))
    assert len(client.get("/grows").content) == 5000


def test_response_redirect_from_a_build_resolves_against_the_live_request(router, make_client):
    router.add("/old", lambda: Response.redirect("/new"))
    response = make_client().get("/old", allow_redirects=False)
    assert response.headers["Location"] == "http://testserver/new"


def test_concurrent_first_requests_share_one_build_even_unstored(router, make_client, calls):
    """Requests waiting on this process's build get what it made, stored or not."""

    @router.get("/gone")
    def gone():
        calls["/gone"] += 1
        time.sleep(0.3)
        return {"error": "gone"}, 404

    client = make_client()
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(client.get("/gone").status_code))
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [404] * 5
    assert calls["/gone"] == 1
