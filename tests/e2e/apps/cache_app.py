"""An app for the cache on real servers: it counts its own handler runs.

``/stats`` is dynamic (force-dynamic), so it always runs and reports how many
times each static handler really ran, whatever the cache answered.
"""

from __future__ import annotations

import time
from collections import Counter

from microroute import App, Router

api = Router()
calls: Counter[str] = Counter()


@api.get("/")
def index():
    return {"ok": True}


@api.get("/slow")
def slow():
    """Static and slow: a herd of first requests must run it once."""
    calls["slow"] += 1
    time.sleep(0.5)  # monkey-patched: the other requests arrive meanwhile
    return {"slow": True, "run": calls["slow"]}


@api.get("/clock", revalidate=1)
def clock():
    """Stale after a second; regenerated in the background."""
    calls["clock"] += 1
    time.sleep(0.4)  # a regeneration that takes a while: STALE must not wait for it
    return {"edition": calls["clock"]}


@api.get("/stats", dynamic="force-dynamic")
def stats():
    return dict(calls)


app = App(api)
