"""Two worker processes on one real Redis: the build lock and invalidation between them.

Each server kind (``microroute run``, ``gunicorn -k gevent``, gunicorn with
microroute's worker) runs ``apps/shared_cache_app.py`` twice, as two separate
processes, on the session's ``redis-server``. The app counts its handler runs
in Redis and can hold a build open until the test lets it go, so each race
here happens in the same order every time.
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


REVALIDATIONS = {
    "tag": ("/revalidate/tag/posts?expire=1", None),
    "path": ("/revalidate/path", {"path": "/posts/1", "expire": True}),
    "subtree": ("/revalidate/path", {"path": "/posts", "subtree": True, "expire": True}),
}


@pytest.mark.parametrize("how", list(REVALIDATIONS))
def test_a_revalidation_racing_a_build_is_never_lost(
    workers: tuple[Server, Server], raw: redis.Redis, how: str
) -> None:
    """Worker A's build of /posts/1 has read its generations when worker B revalidates;
    A stores what it made after that. The entry is never served, and a later
    revalidation still reaches the entry that replaces it.
    """
    a, b = workers
    url, body = REVALIDATIONS[how]
    raw.set("hold:1", 1)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(requests.get, a.url + "/posts/1", timeout=TIMEOUT)
        assert raw.blpop(["building:1"], timeout=TIMEOUT) == (b"building:1", b"1")
        assert requests.post(b.url + url, json=body, timeout=TIMEOUT).status_code == 200
        raw.delete("hold:1")
        raw.rpush("release:1", "go")
        built = held.result()
    assert (built.headers[CACHE], built.json()["edition"]) == ("MISS", 1)

    after = requests.get(b.url + "/posts/1", timeout=TIMEOUT)
    assert (after.headers[CACHE], after.json()["edition"]) == ("MISS", 2)
    again = requests.get(a.url + "/posts/1", timeout=TIMEOUT)
    assert (again.headers[CACHE], again.json()["edition"]) == ("HIT", 2)

    assert requests.post(a.url + url, json=body, timeout=TIMEOUT).status_code == 200
    assert requests.get(b.url + "/posts/1", timeout=TIMEOUT).json()["edition"] == 3


def test_invalidation_across_workers_lists_no_keys(
    workers: tuple[Server, Server], raw: redis.Redis
) -> None:
    """An exact revalidate_path is one key (no SCAN); a subtree and a tag are one counter."""
    a, b = workers

    def edition(server: Server, path: str) -> tuple[str, int]:
        response = requests.get(server.url + path, timeout=TIMEOUT)
        return response.headers[CACHE], response.json()["edition"]

    raw.config_resetstat()
    for path in ("/blog/one", "/blog/two/deep", "/blogger/x", "/posts/1"):
        assert edition(a, path) == ("MISS", 1)
        assert edition(b, path) == ("HIT", 1)

    before = raw.info("commandstats")
    exact = {"path": "/blog/one", "expire": True}
    assert requests.post(b.url + "/revalidate/path", json=exact, timeout=TIMEOUT).json() == {
        "returned": 1
    }
    spent = raw.info("commandstats")
    assert {
        name: spent[name]["calls"] - before.get(name, {"calls": 0})["calls"]
        for name in spent
        if name not in ("cmdstat_info",)
        and spent[name]["calls"] != before.get(name, {"calls": 0})["calls"]
    } == {"cmdstat_multi": 1, "cmdstat_incrby": 1, "cmdstat_pexpire": 1, "cmdstat_del": 1,
          "cmdstat_exec": 1}  # fmt: skip
    assert edition(a, "/blog/one") == ("MISS", 2)
    assert edition(a, "/blog/two/deep") == ("HIT", 1)

    subtree = {"path": "/blog", "subtree": True, "expire": True}
    requests.post(a.url + "/revalidate/path", json=subtree, timeout=TIMEOUT)
    assert edition(b, "/blog/two/deep") == ("MISS", 2)
    assert edition(b, "/blog/one") == ("MISS", 3)
    assert edition(b, "/blogger/x") == ("HIT", 1)

    requests.post(b.url + "/revalidate/tag/posts?expire=1", timeout=TIMEOUT)
    assert edition(a, "/posts/1") == ("MISS", 2)

    stats = raw.info("commandstats")
    assert not {"cmdstat_scan", "cmdstat_keys"} & set(stats), stats
