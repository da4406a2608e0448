"""RedisStore against a real redis-server: entries and revalidation shared by apps."""

from __future__ import annotations

from collections import Counter

import redis

from microroute import App, Router
from microroute.cache import CacheStore, Entry, RedisStore

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


def test_unreadable_entry_reads_as_missing(redis_url):
    with redis.Redis.from_url(redis_url) as client:
        client.set("microroute:/broken", b"not json\nbody")
    assert RedisStore(redis_url).get("/broken") is None


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

    assert app_a.revalidate_path("/report") == 1
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
    assert app_b.revalidate_path("/blog", subtree=True) == 2
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
