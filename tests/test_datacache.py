"""The data cache: ``@cached`` functions in the app's store (memory, or a real Redis).

tests/e2e/test_cache_topology_servers.py runs the same across worker processes.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from typing import Any

import msgspec
import pytest
import redis
from support import CACHE, free_port, wait_for

from microroute import App, CacheKeyError, Router, cached
from microroute.cache import RedisStore
from microroute.testing import TestClient


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Any:
    """A factory of the app's ``cache=``: its MemoryStore, or a RedisStore (emptied)."""
    if request.param == "memory":
        return lambda: True
    url = request.getfixturevalue("redis_url")
    return lambda: RedisStore(url)


@dataclasses.dataclass
class Post:
    id: int
    title: str


class Tag(msgspec.Struct):
    name: str


def app_with(cache: Any = True, *routers: Router) -> App:
    return App(*(routers or (Router(),)), cache=cache, build_id="b")


def test_a_miss_computes_once_and_a_hit_returns_the_same_decoded_value(store, calls):
    @cached
    def posts(limit: int) -> list[Post]:
        calls["posts"] += 1
        return [Post(i, f"post {i}") for i in range(limit)]

    app_with(store())
    first = posts(2)
    assert first == [Post(0, "post 0"), Post(1, "post 1")]  # a miss returns what a hit will
    first.append(Post(9, "mine"))  # the caller's copy: the cache is not touched
    assert posts(2) == [Post(0, "post 0"), Post(1, "post 1")]
    assert posts(limit=2) == posts(2)  # bound to the signature: one key
    assert calls["posts"] == 1
    assert posts(3)[2] == Post(2, "post 2")
    assert calls["posts"] == 2


def test_structs_dicts_and_no_annotation(store, calls):
    @cached
    def tags() -> list[Tag]:
        calls["tags"] += 1
        return [Tag("a")]

    @cached
    def anything(x: dict[str, int], *rest: int, **options: str):  # type: ignore[no-untyped-def]
        calls["anything"] += 1
        return {"x": x, "rest": list(rest), "options": options}

    app_with(store())
    assert tags() == tags() == [Tag("a")]
    expected = {"x": {"a": 1, "b": 2}, "rest": [3], "options": {"k": "v"}}
    assert anything({"a": 1, "b": 2}, 3, k="v") == expected
    assert anything({"b": 2, "a": 1}, 3, k="v") == expected  # dict order is not the key
    assert calls == Counter({"tags": 1, "anything": 1})


def test_an_unkeyable_argument_is_an_error_naming_the_function_and_the_argument(calls):
    class Connection:
        pass

    @cached
    def rows(db: Connection, table: str) -> list[int]:
        calls["rows"] += 1
        return [1]

    app_with()
    with pytest.raises(CacheKeyError) as raised:
        rows(Connection(), "posts")
    message = str(raised.value)
    assert "test_datacache" in message and "rows()" in message
    assert "argument 'db' is a Connection" in message and "__cache_key__" in message
    assert isinstance(raised.value, TypeError)
    assert calls["rows"] == 0


def test_a_cache_key_method_makes_an_object_keyable_and_so_a_method_cacheable(calls):
    class Repository:
        def __init__(self, name: str) -> None:
            self.name = name

        def __cache_key__(self) -> str:
            return self.name

        @cached(tags=["posts"])
        def count(self, table: str) -> int:
            calls[self.name] += 1
            return len(self.name + table)

    class Bare:
        @cached
        def count(self) -> int:
            return 1

    app_with()
    assert Repository("a").count("posts") == Repository("a").count("posts") == 6
    assert Repository("bb").count("posts") == 7
    assert calls == Counter({"a": 1, "bb": 1})
    with pytest.raises(CacheKeyError, match=r"Bare\.count\(\): argument 'self' is a Bare"):
        Bare().count()


def test_a_value_that_cannot_be_encoded_is_an_error_naming_the_function():
    @cached
    def handle() -> Any:
        return threading.Lock()

    app_with()
    with pytest.raises(TypeError, match=r"@cached .*handle\(\) returned a lock, which cannot"):
        handle()


def test_a_decorator_with_a_bad_setting_says_which(calls):
    with pytest.raises(TypeError, match=r"tags=\.\.\.\) takes a list of strings"):
        cached(tags="posts")
    with pytest.raises(ValueError, match=r"revalidate=\.\.\.\) takes seconds > 0 or False"):
        cached(revalidate=0)


def test_stale_while_revalidate(store, calls):
    release = threading.Event()

    @cached(revalidate=0.2)
    def clock() -> int:
        calls["clock"] += 1
        if calls["clock"] == 2:
            release.wait(10)  # the refresh runs behind the callers
        return calls["clock"]

    app_with(store())
    assert clock() == 1
    time.sleep(0.25)
    assert clock() == 1  # stale: returned at once, one refresh started
    assert clock() == 1
    release.set()
    wait_for(lambda: clock() == 2)
    assert calls["clock"] == 2


def test_tags_are_shared_with_routes(store, calls):
    api = Router()

    @cached(tags=["posts"])
    def titles() -> list[str]:
        calls["titles"] += 1
        return [f"edition {calls['titles']}"]

    @api.get("/posts", tags=["posts"])
    def posts() -> dict[str, Any]:
        calls["route"] += 1
        return {"titles": titles(), "route": calls["route"]}

    client = TestClient(app_with(store(), api))
    assert client.get("/posts").json() == {"titles": ["edition 1"], "route": 1}
    client.app.revalidate_tag("posts", expire=True)  # both go: the build computes anew
    response = client.get("/posts")
    assert (response.headers[CACHE], response.json()) == (
        "MISS",
        {"titles": ["edition 2"], "route": 2},
    )
    client.app.revalidate_tag("posts")  # both stale: old answers while they refresh
    assert titles() == ["edition 2"]
    wait_for(lambda: titles() == ["edition 3"])


def test_a_call_in_a_static_build_keeps_the_route_static_and_works_in_dynamic_handlers(calls):
    api = Router()

    @cached
    def catalogue() -> list[str]:
        calls["catalogue"] += 1
        return ["tea", "cake"]

    @api.get("/shop")
    def shop() -> list[str]:
        return catalogue()

    @api.get("/me")
    def me(request: Any) -> dict[str, Any]:  # dynamic: takes request
        return {"user": request.args.get("u"), "catalogue": catalogue()}

    client = TestClient(app_with(True, api))
    assert client.get("/shop").headers[CACHE] == "MISS"
    assert client.get("/shop").headers[CACHE] == "HIT"
    assert client.get("/me?u=ann").json() == {"user": "ann", "catalogue": ["tea", "cake"]}
    assert CACHE not in client.get("/me?u=bob").headers
    assert calls["catalogue"] == 1
    row = next(r for r in client.app.route_table() if r["path"] == "/shop")
    assert row["mode"] == "static"


def test_each_app_uses_its_own_store_and_calls_outside_a_request_the_last_app(calls):
    @cached
    def which() -> int:
        calls["which"] += 1
        return calls["which"]

    def app() -> TestClient:
        api = Router()

        @api.get("/which", dynamic="force-dynamic")
        def route() -> dict[str, int]:
            return {"which": which()}

        return TestClient(app_with(True, api))

    a, b = app(), app()
    assert a.get("/which").json() == {"which": 1}
    assert b.get("/which").json() == {"which": 2}  # another app, another store
    assert a.get("/which").json() == {"which": 1}
    assert which() == 2  # outside a request: the app made last (b)


def test_a_cache_that_is_off_calls_the_function_every_time(calls):
    @cached
    def value() -> int:
        calls["value"] += 1
        return calls["value"]

    app_with(False)
    assert [value(), value()] == [1, 2]


def test_one_computation_for_many_concurrent_callers(store, calls):
    """In one process, and across two 'workers' (apps) on one Redis."""

    @cached
    def slow(n: int) -> int:
        calls["slow"] += 1
        time.sleep(0.3)
        return n * 2

    api = Router()

    @api.get("/slow", dynamic="force-dynamic")
    def route() -> dict[str, int]:
        return {"value": slow(21)}

    workers = [TestClient(app_with(store(), api)) for _ in range(2)]
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda w=w: results.append(w.get("/slow").json()["value"]))
        for w in workers * 3
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert results == [42] * 6
    expected = 1 if isinstance(workers[0].app.cache_store, RedisStore) else 2
    assert calls["slow"] == expected  # memory stores are per app: one computation each


def test_redis_keeps_msgspec_json_under_bounded_keys(redis_url, calls):
    @cached(tags=["posts"])
    def echo(text: str) -> dict[str, str]:
        calls["echo"] += 1
        return {"text": text}

    app_with(RedisStore(redis_url))
    assert echo("x" * 10_000) == {"text": "x" * 10_000}
    assert echo("x" * 10_000) == {"text": "x" * 10_000}
    assert calls["echo"] == 1
    with redis.Redis.from_url(redis_url) as raw:
        keys = [key for key in raw.keys("*") if b"}:d:" in key]
        assert len(keys) == 1 and len(keys[0]) < 200, keys
        assert b"test_datacache" in keys[0]
        assert raw.get(keys[0]).endswith(b'{"text":"' + b"x" * 10_000 + b'"}')  # JSON, no pickle


def test_a_failing_store_computes_uncached_and_never_raises(calls, caplog):
    @cached
    def value() -> int:
        calls["value"] += 1
        return 7

    app_with(RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.1))
    with caplog.at_level(logging.ERROR, logger="microroute"):
        assert [value(), value()] == [7, 7]
    assert calls["value"] == 2
    assert "The cache store (RedisStore) failed to read" in caplog.text
    assert caplog.text.count("failed to") == 1  # logged quietly


def test_a_stored_value_that_no_longer_fits_its_annotation_is_a_miss(redis_url, calls):
    store = RedisStore(redis_url)
    app_with(store)

    @cached
    def shape() -> int:
        calls["shape"] += 1
        return 1

    shape()
    with redis.Redis.from_url(redis_url) as raw:
        (key,) = [key for key in raw.keys("*") if b"}:d:" in key]
        raw.set(key, raw.get(key).replace(b"\n1", b'\n"one"'))
    assert shape() == 1
    assert calls["shape"] == 2
