"""One worker of several sharing a RedisStore, with a build slower than its lock.

Started twice (two processes, one Redis) by ``test_cache_redis_workers.py``.
Handlers count their runs in Redis (``runs:NAME``) so the workers' runs add up.
"""

from __future__ import annotations

import os
import time

import redis

from microroute import App, Router
from microroute.cache import RedisStore

URL = os.environ["CACHE_REDIS_URL"]
LOCK_SECONDS = float(os.environ.get("CACHE_LOCK_SECONDS", "1"))
SLOW_SECONDS = float(os.environ.get("CACHE_SLOW_SECONDS", "3"))

counter = redis.Redis.from_url(URL, socket_timeout=30)
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


app = App(api, cache=RedisStore(URL, timeout=2.0, lock_seconds=LOCK_SECONDS))
