"""An app for the cache on real servers: it counts its own handler runs.

``/stats`` is dynamic (force-dynamic), so it always runs and reports how many
times each static handler really ran, whatever the cache answered. With
``CACHE_REDIS_URL`` set the cache is a shared :class:`RedisStore` and the runs
are counted in Redis too, so several workers' runs add up.
"""

from __future__ import annotations

import os
import time
from collections import Counter

from microroute import App, Request, Response, Router

api = Router()
calls: Counter[str] = Counter()
REDIS_URL = os.environ.get("CACHE_REDIS_URL")
counter = None
if REDIS_URL:
    import redis

    counter = redis.Redis.from_url(REDIS_URL, socket_timeout=1)


def count(name: str) -> int:
    calls[name] += 1
    if counter is None:
        return calls[name]
    try:
        return int(counter.incr(f"runs:{name}"))
    except redis.RedisError:  # the outage test stops Redis: count locally then
        return calls[name]


@api.get("/")
def index():
    return {"ok": True}


@api.get("/slow")
def slow():
    """Static and slow: a herd of first requests must run it once."""
    run = count("slow")
    time.sleep(0.5)  # monkey-patched: the other requests arrive meanwhile
    return {"slow": True, "run": run}


@api.get("/clock", revalidate=1)
def clock():
    """Stale after a second; regenerated in the background."""
    edition = count("clock")
    time.sleep(0.4)  # a regeneration that takes a while: STALE must not wait for it
    return {"edition": edition}


@api.get("/page")
def page():
    """A Response object: werkzeug gives a HEAD no body, which must never be stored."""
    count("page")
    return Response("twenty bytes of body")


@api.get("/where", dynamic="force-static")
def where(request: Request):
    """Built from the synthetic request: never the client's Host."""
    return {"host": request.host, "url": request.url}


@api.get("/posts/[id]", tags=["posts"])
def post(id: str):
    return {"id": id, "edition": count(f"post-{id}")}


@api.post("/revalidate/[tag]")
def revalidate(tag: str):
    return {"dropped": app.revalidate_tag(tag, expire=True)}


@api.get("/stats", dynamic="force-dynamic")
def stats():
    if counter is not None:
        try:
            return {k.decode()[5:]: int(v) for k in counter.keys("runs:*") if (v := counter.get(k))}
        except redis.RedisError:
            pass
    return dict(calls)


cache = True
if REDIS_URL:
    from microroute.cache import RedisStore

    # A generous timeout: the tests here prove one build across workers, and on a
    # loaded 2-core machine a 0.25-s Redis call can time out, which (by design)
    # serves uncached. The default timeout has tests of its own.
    cache = RedisStore(REDIS_URL, timeout=2.0)
app = App(api, cache=cache)
