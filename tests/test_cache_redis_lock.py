"""RedisStore's build lock on a real redis-server: renewed while its build runs.

Two apps here are two 'workers' in one process; tests/e2e/test_cache_redis_workers.py
does the same with real worker processes, and kills one mid-build.
"""

from __future__ import annotations

import threading
import time

from microroute import App, Router
from microroute.cache import RedisStore
from microroute.testing import TestClient

CACHE = "X-Microroute-Cache"


def test_a_build_slower_than_lock_seconds_runs_once(redis_url, calls):
    """A build that outlives its lock's first lifetime keeps the lock: it runs once."""
    api = Router()

    @api.get("/slow")
    def slow():
        calls["slow"] += 1
        time.sleep(1.2)
        return {"run": calls["slow"]}

    workers = [TestClient(App(api, cache=RedisStore(redis_url, lock_seconds=0.3))) for _ in "ab"]
    results: list[tuple[str, dict[str, int]]] = []

    def get(client: TestClient) -> None:
        response = client.get("/slow")
        results.append((response.headers[CACHE], response.json()))

    first = threading.Thread(target=get, args=(workers[0],))
    first.start()
    time.sleep(0.6)  # twice the lock's lifetime: the first build still holds it
    get(workers[1])
    first.join(10)
    assert sorted(results, key=lambda r: r[0]) == [("HIT", {"run": 1}), ("MISS", {"run": 1})]
    assert calls["slow"] == 1
