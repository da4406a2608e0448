"""One worker of several sharing a RedisStore: slow builds, tagged posts, held builds.

Started twice (two processes, one Redis) by ``test_cache_redis_workers.py``.
Handlers count their runs in Redis (``runs:NAME``) so the workers' runs add
up, and a test can hold a build of ``/posts/ID`` open: it sets ``hold:ID``,
the build pushes its edition on ``building:ID`` and waits for ``release:ID``.
Nothing here lists keys: a test checks that the cache never does.
"""

from __future__ import annotations

import os
import time

import redis

from microroute import App, Request, Router
from microroute.cache import RedisStore

URL = os.environ["CACHE_REDIS_URL"]
LOCK_SECONDS = float(os.environ.get("CACHE_LOCK_SECONDS", "1"))
SLOW_SECONDS = float(os.environ.get("CACHE_SLOW_SECONDS", "3"))
HOLD_SECONDS = 20

counter = redis.Redis.from_url(URL, socket_timeout=HOLD_SECONDS + 10)
api = Router()


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


app = App(api, cache=RedisStore(URL, timeout=2.0, lock_seconds=LOCK_SECONDS))
