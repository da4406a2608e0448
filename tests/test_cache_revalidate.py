"""revalidate_tag / revalidate_path: stale by default (Next.js 16's "max"), or expire=True.

Each behaviour runs on both stores: the in-process MemoryStore and a RedisStore
on the session's real redis-server.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from support import CACHE, wait_for

from microroute import App, Router
from microroute.cache import RedisStore
from microroute.testing import TestClient


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Any:
    """``True`` (the app's MemoryStore) or a RedisStore on an emptied redis-server."""
    if request.param == "memory":
        return lambda: True
    url = request.getfixturevalue("redis_url")
    return lambda: RedisStore(url)


def blog(calls: Counter[str], cache: Any) -> TestClient:
    api = Router()

    @api.get("/posts/[id]", tags=["posts"])
    def post(id: str) -> dict[str, Any]:
        calls[id] += 1
        return {"id": id, "edition": calls[id]}

    @api.get("/about")
    def about() -> dict[str, int]:
        calls["about"] += 1
        return {"edition": calls["about"]}

    return TestClient(App(api, cache=cache, build_id="b"))


def seen(client: TestClient, path: str) -> tuple[str, int]:
    response = client.get(path)
    assert response.status_code == 200
    return response.headers[CACHE], response.json()["edition"]


def test_revalidate_tag_serves_the_old_entry_while_one_build_refreshes_it(store, calls):
    client = blog(calls, store())
    assert seen(client, "/posts/1") == ("MISS", 1)
    assert seen(client, "/about") == ("MISS", 1)
    client.app.revalidate_tag("posts")
    assert seen(client, "/posts/1") == ("STALE", 1)  # no waiting for the build
    wait_for(lambda: seen(client, "/posts/1") == ("HIT", 2))
    assert calls["1"] == 2  # one refresh
    assert seen(client, "/about") == ("HIT", 1)  # untagged: untouched


def test_revalidate_tag_expire_makes_the_next_request_wait_for_a_fresh_one(store, calls):
    client = blog(calls, store())
    assert seen(client, "/posts/1") == ("MISS", 1)
    client.app.revalidate_tag("posts", expire=True)
    assert seen(client, "/posts/1") == ("MISS", 2)
    assert seen(client, "/posts/1") == ("HIT", 2)


def test_revalidate_path_is_stale_by_default_and_expires_on_request(store, calls):
    client = blog(calls, store())
    assert seen(client, "/about") == ("MISS", 1)
    assert client.app.revalidate_path("/about") == 1
    assert seen(client, "/about") == ("STALE", 1)
    wait_for(lambda: seen(client, "/about") == ("HIT", 2))
    client.app.revalidate_path("/about", expire=True)
    assert seen(client, "/about") == ("MISS", 3)


def test_a_subtree_revalidation_is_stale_by_default(store, calls):
    client = blog(calls, store())
    assert seen(client, "/posts/1") == ("MISS", 1)
    client.app.revalidate_path("/posts", subtree=True)
    assert seen(client, "/posts/1") == ("STALE", 1)
    wait_for(lambda: seen(client, "/posts/1") == ("HIT", 2))


def test_a_stale_entry_is_never_a_304_turned_hit(store, calls):
    """A conditional request for a stale entry still says STALE (and starts the refresh)."""
    client = blog(calls, store())
    etag = client.get("/about").headers["ETag"]
    client.app.revalidate_tag("nothing")  # another tag: still fresh
    assert client.get("/about", headers={"If-None-Match": etag}).status_code == 304
    client.app.revalidate_path("/about")
    response = client.get("/about", headers={"If-None-Match": etag})
    assert (response.status_code, response.headers[CACHE]) == (304, "STALE")


@pytest.mark.parametrize("expire", [False, True])
def test_a_revalidation_during_an_in_process_build_is_not_lost(store, calls, expire):
    """The build of /posts/1 began before revalidate_tag and stores after it: the entry
    it stores is never served as fresh (stale, or not at all with expire=True)."""
    entered, release = threading.Event(), threading.Event()
    api = Router()

    @api.get("/posts/[id]", tags=["posts"])
    def post(id: str) -> dict[str, int]:
        calls["post"] += 1
        if calls["post"] == 1:
            entered.set()
            release.wait(10)
        return {"edition": calls["post"]}

    client = TestClient(App(api, cache=store(), build_id="b"))
    results: list[tuple[str, int]] = []
    building = threading.Thread(target=lambda: results.append(seen(client, "/posts/1")))
    building.start()
    assert entered.wait(10)
    client.app.revalidate_tag("posts", expire=expire)
    release.set()
    building.join(10)
    assert results == [("MISS", 1)]
    if expire:
        assert seen(client, "/posts/1") == ("MISS", 2)
    else:
        assert seen(client, "/posts/1") == ("STALE", 1)
        wait_for(lambda: seen(client, "/posts/1") == ("HIT", 2))


def test_a_soft_revalidation_counts_what_it_turned_stale(calls):
    client = blog(calls, True)
    for path in ("/posts/1", "/posts/2", "/about"):
        client.get(path)
    assert client.app.revalidate_tag("posts") == 2
    assert client.app.revalidate_tag("posts") == 0  # already stale
    assert client.app.revalidate_tag("posts", expire=True) == 2


def test_long_paths_and_tags_make_bounded_redis_keys(redis_url, calls):
    import redis

    api = Router()
    long_tag = "t" * 1000

    @api.get("/p/[name]", tags=[long_tag])
    def page(name: str) -> dict[str, int]:
        calls[name] += 1
        return {"edition": calls[name]}

    client = TestClient(App(api, cache=RedisStore(redis_url), build_id="b"))
    name = "x" * 4000
    assert seen(client, f"/p/{name}") == ("MISS", 1)
    assert seen(client, f"/p/{name}") == ("HIT", 1)
    client.app.revalidate_tag(long_tag, expire=True)
    assert seen(client, f"/p/{name}") == ("MISS", 2)
    client.app.revalidate_path(f"/p/{name}", expire=True)
    assert seen(client, f"/p/{name}") == ("MISS", 3)
    with redis.Redis.from_url(redis_url) as raw:
        keys = raw.keys("*")  # the test may list keys; the store never does
        assert keys and max(len(key) for key in keys) < 300, keys
        assert max(len(field) for field in raw.hkeys("{microroute:b}:g")) < 300
