"""One worker of several sharing a RedisStore: slow builds, tagged posts, held builds.

Started twice (two processes, one Redis) by ``test_cache_redis_workers.py``, and
by ``test_cache_topology_servers.py`` on a Redis Cluster (``CACHE_REDIS_CLUSTER``,
a node's port) or behind Sentinels (``CACHE_REDIS_SENTINELS``, their ports), with
``@cached`` values under ``/data/``.
Handlers count their runs in Redis (``runs:NAME``) so the workers' runs add
up, and a test can hold a build of ``/posts/ID`` open: it sets ``hold:ID``,
the build pushes its edition on ``building:ID`` and waits for ``release:ID``.
Nothing here lists keys: a test checks that the cache never does.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

from microroute import App, CacheKeyError, Request, Router, cached
from microroute.cache import RedisStore

#: Where the handlers count their runs (a plain redis-server), and by default the cache.
URL = os.environ["CACHE_REDIS_URL"]
LOCK_SECONDS = float(os.environ.get("CACHE_LOCK_SECONDS", "1"))
SLOW_SECONDS = float(os.environ.get("CACHE_SLOW_SECONDS", "3"))
HOLD_SECONDS = 20

counter = redis.Redis.from_url(URL, socket_timeout=HOLD_SECONDS + 10)
api = Router()


def cache_client() -> Any:
    """The store's client: a Cluster, a Sentinel-managed primary, or the URL."""
    if os.environ.get("CACHE_REDIS_CLUSTER"):
        from redis.cluster import RedisCluster

        port = int(os.environ["CACHE_REDIS_CLUSTER"])
        return RedisCluster(host="127.0.0.1", port=port, socket_timeout=2)
    if os.environ.get("CACHE_REDIS_SENTINELS"):
        from redis.sentinel import Sentinel

        ports = os.environ["CACHE_REDIS_SENTINELS"].split(",")
        sentinel = Sentinel([("127.0.0.1", int(p)) for p in ports], socket_timeout=0.5)
        return sentinel.master_for("cache", socket_timeout=0.5)
    return URL


@api.get("/", dynamic="force-dynamic")
def index():
    return {"pid": os.getpid()}


@api.get("/slow")
def slow():
    """Static, and slower than the lock's lifetime."""
    run = int(counter.incr("runs:slow"))
    counter.rpush("started:slow", os.getpid())
    time.sleep(SLOW_SECONDS)  # monkey-patched: the lock's renewer runs meanwhile
    return {"run": run, "pid": os.getpid()}


@api.get("/posts/[id]", tags=["posts"])
def post(id: str):
    edition = int(counter.incr(f"runs:post-{id}"))
    if counter.get(f"hold:{id}"):
        counter.rpush(f"building:{id}", edition)
        counter.blpop([f"release:{id}"], timeout=HOLD_SECONDS)
    return {"id": id, "edition": edition, "pid": os.getpid()}


@api.get("/blog/[...slug]")
def blog(slug):
    name = "/".join(slug)
    return {"slug": name, "edition": int(counter.incr(f"runs:blog-{name}"))}


@api.get("/blogger/[name]")
def blogger(name: str):
    """Beside /blog, not below it."""
    return {"name": name, "edition": int(counter.incr(f"runs:blogger-{name}"))}


@api.post("/revalidate/tag/[tag]")
def revalidate_tag(tag: str, request: Request):
    """``?expire=1``: expire the entries (the next request waits); else they turn stale."""
    expire = request.args.get("expire") == "1"
    return {"returned": app.revalidate_tag(tag, expire=expire)}


@api.post("/revalidate/path")
def revalidate_path(request: Request):
    body = request.json
    returned = app.revalidate_path(
        body["path"], subtree=body.get("subtree", False), expire=body.get("expire", False)
    )
    return {"returned": returned}


# -- the data cache -------------------------------------------------------------


@cached(tags=["posts"])
def title(id: str) -> dict[str, Any]:
    return {"id": id, "title_edition": int(counter.incr(f"runs:title-{id}"))}


@cached(revalidate=1)
def clock() -> int:
    return int(counter.incr("runs:clock"))


@cached()
def slow_sum(a: int, b: int) -> dict[str, int]:
    run = int(counter.incr("runs:slow-sum"))
    counter.rpush("started:slow-sum", os.getpid())
    time.sleep(SLOW_SECONDS)
    return {"sum": a + b, "run": run}


@api.get("/data/title/[id]", dynamic="force-dynamic")
def data_title(id: str):
    """A dynamic handler reusing a cached value."""
    return {**title(id), "pid": os.getpid()}


@api.get("/data/page/[id]", tags=["posts"])
def data_page(id: str):
    """A static route built from a cached value: the tag reaches both."""
    return {"page_edition": int(counter.incr(f"runs:page-{id}")), **title(id)}


@api.get("/data/clock", dynamic="force-dynamic")
def data_clock():
    return {"clock": clock()}


@api.get("/data/slow", dynamic="force-dynamic")
def data_slow():
    return slow_sum(2, 3)


@api.get("/data/unkeyable", dynamic="force-dynamic")
def data_unkeyable():
    try:
        title(object())  # type: ignore[arg-type]
    except CacheKeyError as exc:
        return {"error": str(exc)}
    return {"error": None}


app = App(api, cache=RedisStore(cache_client(), lock_seconds=LOCK_SECONDS, timeout=2.0))
