"""RedisStore's invalidation by generation, on a real redis-server.

Two apps here are two 'workers' in one process (each its own router, handler
and Redis connection); tests/e2e/test_cache_redis_workers.py runs the same
races between real worker processes.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter

import pytest
import redis
from support import start_redis, stop_process, wait_for

from microroute import App, Router
from microroute.cache import Entry, RedisStore, VersionedStore
from microroute.testing import TestClient

CACHE = "X-Microroute-Cache"


def blog(calls: Counter[str], url: object, **store: float) -> App:
    api = Router()

    @api.get("/posts/[id]", tags=["posts"])
    def post(id: str):
        calls[f"post-{id}"] += 1
        return {"id": id, "edition": calls[f"post-{id}"]}

    @api.get("/blog/[...slug]")
    def page(slug: list[str]):
        name = "/".join(slug)
        calls[name] += 1
        return {"slug": name, "edition": calls[name]}

    @api.get("/blogger")
    def blogger():
        calls["blogger"] += 1
        return {"edition": calls["blogger"]}

    return App(api, cache=RedisStore(url, **store), build_id="b")


def edition(client: TestClient, path: str) -> tuple[str, int]:
    response = client.get(path)
    return response.headers[CACHE], response.json()["edition"]


def test_redis_store_is_a_versioned_store(redis_url):
    assert isinstance(RedisStore(redis_url), VersionedStore)


def test_an_entry_built_before_a_revalidation_and_stored_after_it_is_never_served(redis_url):
    """The store's side of the race: generations read, then another client revalidates
    the tag, then the entry is stored with what it read. No read serves it."""
    store = RedisStore(redis_url)
    store.bind("b")
    other = App(Router(), cache=RedisStore(redis_url), build_id="b")
    entry = Entry("200 OK", [], b"old", created=time.time(), revalidate=None, tags=("posts",))

    entry.generations = store.generations("/posts/1", ("posts",))  # the build begins
    assert other.revalidate_tag("posts", expire=True) == 0  # another worker, meanwhile
    store.set("/posts/1", entry)  # the build ends
    assert store.get("/posts/1", ("posts",)) is None
    assert store.get("/posts/1") is None  # also without the caller naming the tags

    fresh = Entry("200 OK", [], b"new", created=time.time(), revalidate=None, tags=("posts",))
    fresh.generations = store.generations("/posts/1", ("posts",))
    store.set("/posts/1", fresh)
    found = store.get("/posts/1", ("posts",))
    assert found is not None and found.body == b"new"
    other.revalidate_tag("posts", expire=True)  # nothing escapes a later revalidation
    assert store.get("/posts/1", ("posts",)) is None


def test_a_revalidation_during_a_build_is_not_lost(redis_url, calls):
    """In the app: a request's build is under way when another worker revalidates."""
    entered, release = threading.Event(), threading.Event()
    api = Router()

    @api.get("/posts/[id]", tags=["posts"])
    def post(id: str):
        calls["post"] += 1
        if calls["post"] == 1:
            entered.set()
            release.wait(10)
        return {"edition": calls["post"]}

    a = TestClient(App(api, cache=RedisStore(redis_url), build_id="b"))
    b = TestClient(App(api, cache=RedisStore(redis_url), build_id="b"))
    results: list[tuple[str, int]] = []
    building = threading.Thread(target=lambda: results.append(edition(a, "/posts/1")))
    building.start()
    assert entered.wait(10)
    b.app.revalidate_tag("posts", expire=True)
    release.set()
    building.join(10)
    assert results == [("MISS", 1)]
    assert edition(b, "/posts/1") == ("MISS", 2)
    assert edition(a, "/posts/1") == ("HIT", 2)


def test_revalidate_path_exact_drops_one_path_and_lists_no_keys(redis_url, calls):
    """"`revalidate_path` and `revalidate_tag` reach every worker without listing keys:
    an exact path touches its own two keys, a tag or a subtree one counter"."""
    a = TestClient(blog(calls, redis_url))
    b_app = blog(calls, redis_url)
    b = TestClient(b_app)
    with redis.Redis.from_url(redis_url) as raw:
        raw.config_resetstat()
        for path in ("/blog/one", "/blog/one/deep", "/blogger", "/posts/1"):
            assert edition(a, path) == ("MISS", 1)
            assert edition(b, path) == ("HIT", 1)

        assert b_app.revalidate_path("/blog/one", expire=True) == 1
        assert b_app.revalidate_path("/blog/one", expire=True) == 0  # gone already
        assert edition(a, "/blog/one") == ("MISS", 2)
        assert edition(a, "/blog/one/deep") == ("HIT", 1)

        assert b_app.revalidate_path("/blog/", subtree=True, expire=True) == 0  # not counted
        assert edition(a, "/blog/one/deep") == ("MISS", 2)
        assert edition(a, "/blog/one") == ("MISS", 3)
        assert edition(a, "/blogger") == ("HIT", 1)

        b_app.revalidate_tag("posts", expire=True)
        assert edition(a, "/posts/1") == ("MISS", 2)
        assert edition(b, "/blogger") == ("HIT", 1)

        b_app.revalidate_path("/", subtree=True, expire=True)
        assert edition(a, "/blogger") == ("MISS", 2)
        stats = raw.info("commandstats")
    assert not {"cmdstat_scan", "cmdstat_keys"} & set(stats), stats


def test_clear_lists_no_keys(redis_url):
    store = RedisStore(redis_url)
    store.set("/a", Entry("200 OK", [], b"x", created=0.0, revalidate=None))
    with redis.Redis.from_url(redis_url) as raw:
        raw.config_resetstat()
        store.clear()
        assert store.get("/a") is None
        assert not {"cmdstat_scan", "cmdstat_keys"} & set(raw.info("commandstats"))


def test_a_revalidation_outlasts_every_entry_it_reached(redis_url, calls):
    """The counter a revalidation bumps lives as long as the entries that recorded its old
    value: were it to expire first it would read 0 again and bring them back."""
    api = Router()

    @api.get("/posts/[id]", tags=["posts"], revalidate=30)
    def post(id: str):
        calls["post"] += 1
        return {"edition": calls["post"]}

    app = App(api, cache=RedisStore(redis_url, ttl=0.5), build_id="b")
    client = TestClient(app)
    assert edition(client, "/posts/1") == ("MISS", 1)  # kept 30.5 s
    app.revalidate_tag("posts", expire=True)
    time.sleep(1)  # past the store's ttl, well within the entry's lifetime
    assert edition(client, "/posts/1") == ("MISS", 2)


@pytest.fixture
def redis_cluster(tmp_path):
    """A one-node Redis Cluster holding every slot: it refuses what spans two slots."""
    with socket.socket() as sock:  # the cluster bus: by default port + 10000, maybe past 65535
        sock.bind(("127.0.0.1", 0))
        bus = sock.getsockname()[1]
    process, url = start_redis(
        tmp_path, None, "--cluster-enabled", "yes", "--cluster-port", str(bus),
        "--cluster-config-file", "nodes.conf",
    )  # fmt: skip
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    try:
        with redis.Redis(port=port) as node:
            node.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            wait_for(lambda: node.cluster("info")["cluster_state"] == "ok", timeout=10)
        yield port
    finally:
        stop_process(process)


def test_every_operation_works_on_redis_cluster(redis_cluster, calls, caplog):
    """"no operation spans Cluster slots or scans keys": each is accepted by a Redis Cluster,
    which refuses a command or transaction whose keys hash to two slots."""
    from redis.cluster import RedisCluster

    def worker() -> App:
        return blog(calls, RedisCluster(host="127.0.0.1", port=redis_cluster))

    a_app, b_app = worker(), worker()
    a, b = TestClient(a_app), TestClient(b_app)
    with caplog.at_level(logging.ERROR, logger="microroute"):
        for path in ("/posts/1", "/blog/a/b", "/blogger"):
            assert edition(a, path) == ("MISS", 1)
            assert edition(b, path) == ("HIT", 1)
        b_app.revalidate_tag("posts", expire=True)
        assert edition(a, "/posts/1") == ("MISS", 2)
        assert b_app.revalidate_path("/blogger", expire=True) == 1
        assert edition(a, "/blogger") == ("MISS", 2)
        b_app.revalidate_path("/blog", subtree=True, expire=True)
        assert edition(a, "/blog/a/b") == ("MISS", 2)
        assert edition(b, "/blog/a/b") == ("HIT", 2)
    assert caplog.text == ""
