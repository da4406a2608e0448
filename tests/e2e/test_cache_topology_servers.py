"""Worker processes on a 3-primary Redis Cluster and behind Sentinels, on every server kind.

Each server kind runs ``apps/shared_cache_app.py`` twice, as two processes whose
RedisStore is a ``RedisCluster`` client (the session's cluster, see conftest.py)
or a Sentinel's ``master_for("cache")`` (this module's primary, replica and three
Sentinels). The handlers count their runs on the plain session redis-server. The
data cache (``@cached``) is tested here too, across the cluster's workers.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from redis.cluster import RedisCluster
from servers import APPS, REPO, Launcher, Server, Target
from support import SENTINEL_NAME, failover_ready, sentinel_primary, wait_for

pytestmark = pytest.mark.e2e

CACHE = "X-Microroute-Cache"
TIMEOUT = 30
SLOW_SECONDS = 1.0


def worker(name: str, counter_url: str, **env: str) -> Target:
    run = str((APPS / "shared_cache_app.py").relative_to(REPO))
    env = {"CACHE_REDIS_URL": counter_url, "CACHE_SLOW_SECONDS": str(SLOW_SECONDS), **env}
    return Target(name, run=run, wsgi="shared_cache_app:app", chdir=APPS, env=env)


@pytest.fixture
def on_cluster(
    launch: Launcher, redis_url: str, redis_cluster_nodes: list[int]
) -> tuple[Server, Server]:
    """Two processes of the kind under test on the Cluster (emptied for each test)."""
    cluster = RedisCluster(host="127.0.0.1", port=redis_cluster_nodes[0])
    cluster.flushall(target_nodes=RedisCluster.ALL_NODES)
    cluster.close()
    env = {"CACHE_REDIS_CLUSTER": str(redis_cluster_nodes[0])}
    return (
        launch.start(worker("cluster-a", redis_url, **env)),
        launch.start(worker("cluster-b", redis_url, **env)),
    )


@pytest.fixture
def raw(redis_url: str) -> redis.Redis:
    """The plain redis-server the handlers count their runs on."""
    return redis.Redis.from_url(redis_url, socket_timeout=TIMEOUT)


def get(server: Server, path: str) -> requests.Response:
    response = requests.get(server.url + path, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response


def edition(server: Server, path: str) -> tuple[str, int]:
    response = get(server, path)
    return response.headers[CACHE], response.json()["edition"]


def revalidate(server: Server, tag: str, expire: bool = False) -> None:
    url = f"{server.url}/revalidate/tag/{tag}" + ("?expire=1" if expire else "")
    assert requests.post(url, timeout=TIMEOUT).status_code == 200


def shares_entries_tags_and_single_flight(a: Server, b: Server, raw: redis.Redis) -> None:
    assert edition(a, "/posts/1") == ("MISS", 1)
    assert edition(b, "/posts/1") == ("HIT", 1)
    revalidate(b, "posts")  # stale: the old entry while one build refreshes it
    assert edition(a, "/posts/1") == ("STALE", 1)
    wait_for(lambda: edition(b, "/posts/1") == ("HIT", 2), timeout=10)
    revalidate(a, "posts", expire=True)
    assert edition(b, "/posts/1") == ("MISS", 3)
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda server: get(server, "/slow"), (a, b)))
    assert sorted(r.headers[CACHE] for r in both) == ["HIT", "MISS"]
    assert both[0].json() == both[1].json()
    assert int(raw.get("runs:slow") or 0) == 1


def test_workers_on_a_cluster_share_entries_tags_and_single_flight(
    on_cluster: tuple[Server, Server], raw: redis.Redis
) -> None:
    shares_entries_tags_and_single_flight(*on_cluster, raw)


def test_cached_values_hit_miss_and_share_across_workers(
    on_cluster: tuple[Server, Server], raw: redis.Redis
) -> None:
    """In a dynamic handler: computed once, then the same value from either process."""
    a, b = on_cluster
    first = get(a, "/data/title/7").json()
    assert first["title_edition"] == 1
    assert CACHE not in get(a, "/data/title/7").headers  # the route stays dynamic
    assert get(b, "/data/title/7").json()["title_edition"] == 1
    assert get(b, "/data/title/8").json()["title_edition"] == 1  # another key
    assert int(raw.get("runs:title-7")) == 1


def test_cached_values_are_stale_while_one_worker_refreshes_them(
    on_cluster: tuple[Server, Server], raw: redis.Redis
) -> None:
    a, b = on_cluster
    assert get(a, "/data/clock").json() == {"clock": 1}
    time.sleep(1.1)  # revalidate=1
    assert get(b, "/data/clock").json() == {"clock": 1}  # stale, returned at once
    wait_for(lambda: get(a, "/data/clock").json() == {"clock": 2}, timeout=10)
    assert int(raw.get("runs:clock")) == 2


def test_a_tag_refreshes_routes_and_values_alike(
    on_cluster: tuple[Server, Server], raw: redis.Redis
) -> None:
    a, b = on_cluster
    page = get(a, "/data/page/3")
    assert page.headers[CACHE] == "MISS"
    assert (page.json()["page_edition"], page.json()["title_edition"]) == (1, 1)
    revalidate(b, "posts", expire=True)
    page = get(b, "/data/page/3")
    assert page.headers[CACHE] == "MISS"
    assert (page.json()["page_edition"], page.json()["title_edition"]) == (2, 2)


def test_one_computation_of_a_cached_value_across_workers(
    on_cluster: tuple[Server, Server], raw: redis.Redis
) -> None:
    a, b = on_cluster
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(get, a, "/data/slow")
        assert raw.blpop(["started:slow-sum"], timeout=TIMEOUT) is not None
        second = pool.submit(get, b, "/data/slow")
        answers = [first.result().json(), second.result().json()]
    assert answers == [{"sum": 5, "run": 1}] * 2
    assert int(raw.get("runs:slow-sum")) == 1


def test_an_unkeyable_argument_names_the_function_and_the_argument(
    on_cluster: tuple[Server, Server],
) -> None:
    error = get(on_cluster[0], "/data/unkeyable").json()["error"]
    assert "shared_cache_app.title(): argument 'id' is a object" in error


def test_a_sentinel_failover_mid_traffic_is_never_a_5xx(
    launch: Launcher, redis_url: str, raw: redis.Redis, sentinel_group: tuple[list[int], list[int]]
) -> None:
    """Two workers behind three Sentinels: SENTINEL FAILOVER while both serve traffic.
    Every request is answered (from a build while the store fails), none with a 5xx,
    and the workers cache through the promoted replica afterwards, by themselves."""
    data_ports, sentinel_ports = sentinel_group
    with redis.Redis(port=sentinel_primary(sentinel_ports[0])) as primary:
        primary.flushall()
    env = {"CACHE_REDIS_SENTINELS": ",".join(map(str, sentinel_ports))}
    a = launch.start(worker("sentinel-a", redis_url, **env))
    b = launch.start(worker("sentinel-b", redis_url, **env))
    shares_entries_tags_and_single_flight(a, b, raw)

    wait_for(lambda: failover_ready(sentinel_ports[1]), timeout=30)  # after the last kind's
    before = sentinel_primary(sentinel_ports[0])
    statuses: Counter[int] = Counter()
    stop = threading.Event()

    def traffic(server: Server) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            for path in (f"/posts/{n % 7}", f"/data/title/{n % 5}"):
                statuses[requests.get(server.url + path, timeout=TIMEOUT).status_code] += 1

    threads = [threading.Thread(target=traffic, args=(server,)) for server in (a, b)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        with redis.Redis(port=sentinel_ports[1], socket_timeout=2) as sentinel:
            assert sentinel.execute_command("SENTINEL", "FAILOVER", SENTINEL_NAME)
        wait_for(lambda: sentinel_primary(sentinel_ports[0]) != before, timeout=30)
        time.sleep(1.5)  # traffic on the promoted replica
    finally:
        stop.set()
        for thread in threads:
            thread.join(TIMEOUT)
    assert statuses and max(statuses) < 500, statuses
    assert sentinel_primary(sentinel_ports[0]) in data_ports
    # Recovered by itself: a new path is built once and shared again.
    wait_for(lambda: get(a, "/posts/after-failover").headers[CACHE] in ("MISS", "HIT"))
    wait_for(lambda: get(b, "/posts/after-failover").headers[CACHE] == "HIT", timeout=10)
