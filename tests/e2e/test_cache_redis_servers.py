"""The shared Redis store on real servers: outages, and one build across workers.

Each test runs its own ``redis-server`` (a real one, stopped by PID), so one
can stop it mid-test. The app (``apps/cache_app.py``) counts its handler runs
in Redis, so the runs of several worker processes add up.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from servers import (
    APPS,
    Launcher,
    Server,
    Target,
    command,
    free_port,
    herd,
    subprocess_env,
    wait_ready,
)
from support import start_redis, stop_process

pytestmark = pytest.mark.e2e

CACHE = "X-Microroute-Cache"
TIMEOUT = 30
HERD = 200


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    process, url = start_redis(tmp_path)
    yield process, url
    stop_process(process)


def cache_target(url: str) -> Target:
    from servers import REPO

    run = str((APPS / "cache_app.py").relative_to(REPO))
    return Target("cache-redis", run=run, wsgi="cache_app:app", chdir=APPS,
                  env={"CACHE_REDIS_URL": url})  # fmt: skip


def runs(server: Server) -> dict[str, int]:
    response = requests.get(server.url + "/stats", timeout=TIMEOUT)
    assert CACHE not in response.headers
    return response.json()


def test_a_redis_outage_never_becomes_a_500(
    launch: Launcher, redis_process: tuple[subprocess.Popen[bytes], str]
) -> None:
    """On any store failure the request is served uncached, never a 500."""
    process, url = redis_process
    server = launch.start(cache_target(url), fresh=True)
    with requests.Session() as http:
        assert http.get(server.url + "/page", timeout=TIMEOUT).headers[CACHE] == "MISS"
        assert http.get(server.url + "/page", timeout=TIMEOUT).headers[CACHE] == "HIT"
        stop_process(process)
        for _ in range(4):
            response = http.get(server.url + "/page", timeout=TIMEOUT)
            assert (response.status_code, response.content) == (200, b"twenty bytes of body")
            assert response.elapsed.total_seconds() < 2
            time.sleep(0.4)
    assert server.output().count("The cache store (RedisStore) failed") == 1


@pytest.fixture(params=["gunicorn", "gunicorn-microroute"])
def four_workers(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    redis_process: tuple[subprocess.Popen[bytes], str],
) -> Iterator[Server]:
    """Four gunicorn gevent workers (gunicorn's, or microroute's loop) sharing one real Redis."""
    _, url = redis_process
    port = free_port()
    log = tmp_path / "gunicorn-4.log"
    target = cache_target(url)
    argv, cwd = command(request.param, target, port, workers=4)
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=subprocess_env(target.env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(request.param, f"http://127.0.0.1:{port}", process, log)
    try:
        wait_ready(server)
        deadline = time.monotonic() + 15  # every worker up, not just the first
        while server.output().count("Booting worker") < 4:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        yield server
    finally:
        stop_process(process)


def test_four_workers_build_a_cold_path_once_and_regenerate_once(four_workers: Server) -> None:
    replies = herd(four_workers, "/slow", HERD)
    assert [r.status for r in replies] == [200] * HERD
    assert {r.body for r in replies} == {b'{"slow":true,"run":1}'}, four_workers.output()
    assert runs(four_workers)["slow"] == 1

    first = requests.get(four_workers.url + "/clock", timeout=TIMEOUT)
    assert first.json() == {"edition": 1}
    time.sleep(1.1)
    stale = herd(four_workers, "/clock", HERD)
    assert {r.body for r in stale} <= {b'{"edition":1}', b'{"edition":2}'}
    assert [r.status for r in stale] == [200] * HERD
    deadline = time.monotonic() + 10
    while requests.get(four_workers.url + "/clock", timeout=TIMEOUT).json() != {"edition": 2}:
        assert time.monotonic() < deadline, "never regenerated"
        time.sleep(0.05)
    time.sleep(0.5)  # any second regeneration would have finished by now
    assert runs(four_workers)["clock"] == 2  # one regeneration in all four workers


def test_revalidate_tag_in_one_worker_reaches_them_all(four_workers: Server) -> None:
    url = four_workers.url
    assert requests.get(url + "/posts/1", timeout=TIMEOUT).json() == {"id": "1", "edition": 1}
    for _ in range(8):  # fresh connections: spread over the workers
        assert requests.get(url + "/posts/1", timeout=TIMEOUT).headers[CACHE] == "HIT"
    # One counter bumped: RedisStore reaches the entries without listing (or counting) them.
    assert requests.post(url + "/revalidate/posts", timeout=TIMEOUT).json() == {"dropped": 0}
    editions = {requests.get(url + "/posts/1", timeout=TIMEOUT).json()["edition"] for _ in range(8)}
    assert editions == {2}
