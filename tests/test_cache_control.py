"""The route cache, continued: headers, revalidation, control, bounds and visibility."""

from __future__ import annotations

import logging
import threading
import time

from support import CACHE, wait_for

from microroute import App, Response
from microroute.cli import main
from microroute.testing import TestClient

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
    router.add("/own", lambda: Response("x", headers={"Cache-Control": "public, max-age=60"}))
    client = make_client()
    client.get("/own")
    hit = client.get("/own")
    assert hit.headers[CACHE] == "HIT"
    assert hit.headers["Cache-Control"] == "public, max-age=60"


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


def test_revalidate_path_drops_the_entry_of_a_path(router, make_client, calls):
    @router.get("/posts")
    def posts():
        calls["/posts"] += 1
        return {"run": calls["/posts"]}

    app = App(router)
    client = TestClient(app)
    client.get("/posts")
    client.get("/posts?page=2")  # the same entry: keyed by path alone
    assert app.revalidate_path("/posts", expire=True) == 1
    again = client.get("/posts?page=2")
    assert (again.headers[CACHE], again.json()) == ("MISS", {"run": 2})
    assert app.revalidate_path("/nothing-here", expire=True) == 0


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
    assert app.revalidate_path("/blog", subtree=True, expire=True) == 3
    assert client.get("/blog").headers[CACHE] == "MISS"
    assert client.get("/blog/a").headers[CACHE] == "MISS"
    assert client.get("/blogger").headers[CACHE] == "HIT"
    assert calls == {"a": 2, "b": 1}


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
