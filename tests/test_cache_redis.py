"""RedisStore against a real redis-server: entries and revalidation shared by apps."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import pytest
import redis
from support import start_redis, stop_process

from microroute import App, Router
from microroute.cache import CacheStore, Entry, RedisStore
from microroute.testing import TestClient

CACHE = "X-Microroute-Cache"


def worker(calls: Counter[str], name: str, url: str) -> App:
    """One 'worker': its own router, handler and Redis connection, the same server."""
    api = Router()

    @api.get("/report")
    def report():
        calls[name] += 1
        return {"made_by": name}

    @api.get("/blog/[slug]")
    def post(slug: str):
        calls[f"{name}:{slug}"] += 1
        return {"slug": slug, "made_by": name}

    return App(api, cache=RedisStore(url))



def test_redis_store_is_a_cache_store(redis_url):
    assert isinstance(RedisStore(redis_url), CacheStore)


def test_entry_round_trips_through_redis(redis_url):
    store = RedisStore(redis_url)
    body = b"line one\nline two\n\x00\xff binary"
    entry = Entry(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("X-Name", "caf\u00e9")],
        body,
        created=1234.5,
        revalidate=60.0,
    )
    store.set("/doc?v=1", entry)
    back = RedisStore(redis_url).get("/doc?v=1")
    assert back is not None
    assert (back.status, back.headers, back.body) == (entry.status, entry.headers, body)
    assert (back.created, back.revalidate, back.etag) == (1234.5, 60.0, entry.etag)
    assert back.hit == entry.hit
    assert RedisStore(redis_url).get("/doc") is None


def test_unreadable_entry_is_rebuilt_not_a_500(redis_url, client_for, calls, caplog):
    """Bad data in the store is a miss: the request is served by a build."""
    app = worker(calls, "a", redis_url)
    with redis.Redis.from_url(redis_url) as client:
        client.set("{microroute:" + app.build_id + "}:p:/report", b"not json\nbody")
    with caplog.at_level(logging.ERROR, logger="microroute"):
        response = client_for(app).get("/report")
    assert (response.status_code, response.json()) == (200, {"made_by": "a"})
    assert "unreadable cache entry" in caplog.text


def test_two_apps_share_entries(redis_url, client_for, calls):
    a = client_for(worker(calls, "a", redis_url))
    b = client_for(worker(calls, "b", redis_url))
    first = a.get("/report")
    assert (first.headers[CACHE], first.json()) == ("MISS", {"made_by": "a"})
    shared = b.get("/report")
    assert (shared.headers[CACHE], shared.json()) == ("HIT", {"made_by": "a"})
    assert shared.headers["ETag"] == first.headers["ETag"]
    assert calls == {"a": 1}


def test_revalidate_path_reaches_every_app(redis_url, client_for, calls):
    app_a = worker(calls, "a", redis_url)
    a = client_for(app_a)
    b = client_for(worker(calls, "b", redis_url))
    a.get("/report")
    assert b.get("/report?format=short").headers[CACHE] == "HIT"

    assert app_a.revalidate_path("/report", expire=True) == 1
    again = b.get("/report")
    assert (again.headers[CACHE], again.json()) == ("MISS", {"made_by": "b"})
    assert a.get("/report").json() == {"made_by": "b"}
    assert calls == {"a": 1, "b": 1}


def test_revalidate_subtree_reaches_every_app(redis_url, client_for, calls):
    a = client_for(worker(calls, "a", redis_url))
    app_b = worker(calls, "b", redis_url)
    b = client_for(app_b)
    for slug in ("one", "two"):
        a.get(f"/blog/{slug}")
    a.get("/report")
    # One generation bump reaches them without listing them: no count to give.
    assert app_b.revalidate_path("/blog", subtree=True, expire=True) == 0
    assert a.get("/blog/one").headers[CACHE] == "MISS"
    assert b.get("/blog/two").json() == {"slug": "two", "made_by": "b"}
    assert b.get("/report").headers[CACHE] == "HIT"


def test_clear_empties_only_the_stores_prefix(redis_url):
    mine = RedisStore(redis_url, prefix="mine:")
    theirs = RedisStore(redis_url, prefix="theirs:")
    entry = Entry("200 OK", [], b"x", created=0.0, revalidate=None)
    mine.set("/a", entry)
    theirs.set("/a", entry)
    mine.clear()
    assert mine.get("/a") is None
    assert theirs.get("/a") is not None


# -- build ids, namespaces, expiry -------------------------------------------------


def test_entries_are_scoped_by_build_id(redis_url, client_for, calls):
    """A deploy with new code never serves the old code's entries."""
    api = Router()

    @api.get("/page")
    def page():
        calls["page"] += 1
        return {"run": calls["page"]}

    old = client_for(App(api, cache=RedisStore(redis_url), build_id="v1"))
    new = client_for(App(api, cache=RedisStore(redis_url), build_id="v2"))
    again = client_for(App(api, cache=RedisStore(redis_url), build_id="v1"))
    assert old.get("/page").json() == {"run": 1}
    assert (new.get("/page").headers[CACHE], new.get("/page").json()) == ("MISS", {"run": 2})
    assert again.get("/page").headers[CACHE] == "HIT"


def test_build_id_from_the_environment(redis_url, monkeypatch):
    monkeypatch.setenv("MICROROUTE_BUILD_ID", "release-42")
    assert App(Router(), cache=RedisStore(redis_url)).build_id == "release-42"


def test_default_build_id_follows_the_handlers_source(tmp_path, make_tree, redis_url):
    """By default a hash of the route files' source and the microroute version."""
    app_dir = make_tree(tmp_path, {"app/page/route.py": "def GET(): return 'one'"})
    first = App(app_dir=app_dir, cache=RedisStore(redis_url)).build_id
    assert App(app_dir=app_dir, cache=RedisStore(redis_url)).build_id == first
    make_tree(tmp_path, {"app/page/route.py": "def GET(): return 'two'"})
    assert App(app_dir=app_dir, cache=RedisStore(redis_url)).build_id != first


def test_one_store_cannot_serve_two_builds(redis_url):
    store = RedisStore(redis_url)
    App(Router(), cache=store, build_id="a")
    with pytest.raises(ValueError, match="give each App its own RedisStore"):
        App(Router(), cache=store, build_id="b")


def test_entries_expire_ttl_past_their_revalidate_window(redis_url):
    api = Router()
    api.add("/timed", lambda: "t", revalidate=60)
    api.add("/forever", lambda: "f")
    app = App(api, cache=RedisStore(redis_url, ttl=3600), build_id="b")
    client = TestClient(app)
    client.get("/timed")
    client.get("/forever")
    with redis.Redis.from_url(redis_url) as raw:
        assert 3600_000 < raw.pttl("{microroute:b}:p:/timed") <= 3660_000
        assert 3500_000 < raw.pttl("{microroute:b}:p:/forever") <= 3600_000


# -- the store failing ----------------------------------------------------------------


def test_a_redis_outage_is_served_uncached_never_a_500(tmp_path, caplog, calls):
    """"Any store error ... is logged at most once per 10 s and the request is served by a
    build, uncached: never a 500."
    """
    process, url = start_redis(tmp_path)
    api = Router()

    @api.get("/report")
    def report():
        calls["report"] += 1
        return {"run": calls["report"]}

    app = App(api, cache=RedisStore(url))
    client = TestClient(app)
    try:
        assert client.get("/report").headers[CACHE] == "MISS"
        assert client.get("/report").headers[CACHE] == "HIT"
    finally:
        stop_process(process)
    with caplog.at_level(logging.ERROR, logger="microroute"):
        for _ in range(5):
            response = client.get("/report")
            assert response.status_code == 200, response.text
            assert response.headers["Content-Type"] == "application/json"
            time.sleep(0.3)  # past the 1-s pause after a failure, so the store is retried
    failures = [r for r in caplog.records if "cache store (RedisStore) failed" in r.message]
    assert len(failures) == 1
    assert calls["report"] == 6


def test_a_redis_that_never_answers_costs_bounded_time(calls):
    """Socket timeouts are bounded (0.25 s by default): a dead Redis cannot hang requests."""
    with socket_that_never_answers() as url:
        api = Router()
        api.add("/x", lambda: "x")
        client = TestClient(App(api, cache=RedisStore(url, timeout=0.2)))
        started = time.monotonic()
        assert client.get("/x").status_code == 200
        assert time.monotonic() - started < 2


class socket_that_never_answers:
    """A listening socket that accepts and never replies: Redis hung, not refused."""

    def __enter__(self) -> str:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        return f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


# -- one build at a time across workers ---------------------------------------------


def test_a_cold_path_is_built_once_across_workers(redis_url, calls):
    api = Router()

    @api.get("/slow")
    def slow():
        calls["slow"] += 1
        time.sleep(0.4)
        return {"run": calls["slow"]}

    workers = [TestClient(App(api, cache=RedisStore(redis_url))) for _ in range(4)]
    results: list[dict[str, int]] = []
    threads = [
        threading.Thread(target=lambda c=c: results.append(c.get("/slow").json()))
        for c in workers
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [{"run": 1}] * 4
    assert calls["slow"] == 1


def test_a_lock_whose_holder_died_expires(redis_url, calls):
    api = Router()

    @api.get("/page")
    def page():
        calls["page"] += 1
        return "page"

    app = App(api, cache=RedisStore(redis_url), build_id="b")
    with redis.Redis.from_url(redis_url) as raw:  # a worker took the lock and died
        raw.set("{microroute:b}:l:p:/page", "dead-worker", px=300)
    started = time.monotonic()
    response = TestClient(app).get("/page")
    assert (response.status_code, response.headers[CACHE]) == (200, "MISS")
    assert time.monotonic() - started >= 0.25
    assert calls["page"] == 1


# -- tags -------------------------------------------------------------------------------


def test_revalidate_tag_reaches_entries_another_worker_wrote(redis_url, calls):
    def tagged(name: str) -> App:
        api = Router()

        @api.get("/posts/[id]", tags=["posts"])
        def post(id: str):
            calls[name] += 1
            return {"id": id, "by": name}

        return App(api, cache=RedisStore(redis_url), build_id="b")

    a, app_b = TestClient(tagged("a")), tagged("b")
    b = TestClient(app_b)
    a.get("/posts/1")
    a.get("/posts/2")
    assert b.get("/posts/1").headers[CACHE] == "HIT"
    assert app_b.revalidate_tag("posts", expire=True) == 0  # one INCR: the entries are not counted
    assert b.get("/posts/2").json() == {"id": "2", "by": "b"}
    assert a.get("/posts/1").headers[CACHE] == "MISS"
