"""Two worker processes on one real Redis: the build lock between them.

Each server kind (``microroute run``, ``gunicorn -k gevent``, gunicorn with
microroute's worker) runs ``apps/shared_cache_app.py`` twice, as two separate
processes, on the session's ``redis-server``. The app counts its handler runs
in Redis, so the runs of both workers add up.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from servers import APPS, REPO, Launcher, Server, Target

pytestmark = pytest.mark.e2e

CACHE = "X-Microroute-Cache"
TIMEOUT = 30
LOCK_SECONDS = 1.0
SLOW_SECONDS = 3.0


def shared_cache(name: str, url: str) -> Target:
    run = str((APPS / "shared_cache_app.py").relative_to(REPO))
    env = {
        "CACHE_REDIS_URL": url,
        "CACHE_LOCK_SECONDS": str(LOCK_SECONDS),
        "CACHE_SLOW_SECONDS": str(SLOW_SECONDS),
    }
    return Target(name, run=run, wsgi="shared_cache_app:app", chdir=APPS, env=env)


@pytest.fixture
def workers(launch: Launcher, redis_url: str) -> tuple[Server, Server]:
    """Two processes of the kind under test, one Redis (emptied for each test)."""
    return launch.start(shared_cache("worker-a", redis_url)), launch.start(
        shared_cache("worker-b", redis_url)
    )


@pytest.fixture
def raw(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, socket_timeout=TIMEOUT)


def test_a_build_slower_than_lock_seconds_runs_once_across_workers(
    workers: tuple[Server, Server], raw: redis.Redis
) -> None:
    """"The lock is renewed while the build runs, so a build slower than `lock_seconds` still
    runs once, and a lock whose holder died expires."
    """
    a, b = workers
    with ThreadPoolExecutor(1) as pool:
        building = pool.submit(requests.get, a.url + "/slow", timeout=TIMEOUT)
        assert raw.blpop(["started:slow"], timeout=TIMEOUT) is not None
        time.sleep(LOCK_SECONDS * 1.5)  # past the lock's first lifetime: only renewals hold it
        waited = requests.get(b.url + "/slow", timeout=TIMEOUT)
        built = building.result()
    assert (built.status_code, built.headers[CACHE]) == (200, "MISS")
    assert (waited.status_code, waited.headers[CACHE]) == (200, "HIT")
    assert waited.json() == built.json() == {"run": 1, "pid": built.json()["pid"]}
    assert int(raw.get("runs:slow") or 0) == 1


def test_the_build_lock_of_a_worker_that_died_expires(
    launch: Launcher, workers: tuple[Server, Server], raw: redis.Redis, redis_url: str
) -> None:
    """A worker killed mid-build renews its lock no more: another builds lock_seconds later."""
    doomed = launch.start(shared_cache("doomed", redis_url), fresh=True)
    _, b = workers
    with ThreadPoolExecutor(1) as pool:
        lost = pool.submit(requests.get, doomed.url + "/slow", timeout=TIMEOUT)
        started = raw.blpop(["started:slow"], timeout=TIMEOUT)
        assert started is not None
        os.kill(int(started[1]), signal.SIGKILL)  # the process building (a gunicorn worker)
        killed = time.monotonic()
        with pytest.raises(requests.RequestException):
            lost.result()
    response = requests.get(b.url + "/slow", timeout=TIMEOUT)
    assert (response.status_code, response.headers[CACHE]) == (200, "MISS")
    assert response.json()["run"] == 2
    # A waiter gives up on a lock after 30 s; an expired lock is taken at once.
    assert time.monotonic() - killed < LOCK_SECONDS + SLOW_SECONDS + 10
