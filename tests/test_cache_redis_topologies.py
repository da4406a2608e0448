"""RedisStore on every deployment redis-py speaks to: URLs, a 3-primary Cluster, Sentinel.

Two apps here are two 'workers' in one process (each its own router, handler
and client); tests/e2e/test_cache_topology_servers.py runs real worker
processes. The Cluster and the Sentinel group are real servers on 127.0.0.1
(see conftest.py), stopped by PID.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel
from support import CACHE, SENTINEL_NAME, sentinel_primary, start_redis, stop_process, wait_for

from microroute import App, Router, cached
from microroute.cache import RedisStore
from microroute.testing import TestClient


def workers(
    calls: Counter[str], client: Callable[[], Any], **store: Any
) -> tuple[TestClient, TestClient]:
    """Two apps on one store (each with its own client), serving the same routes."""
    api = Router()

    @cached(tags=["posts"])
    def title(id: str) -> str:
        calls[f"title-{id}"] += 1
        return f"post {id}, title edition {calls[f'title-{id}']}"

    @api.get("/posts/[id]", tags=["posts"])
    def post(id: str) -> dict[str, Any]:
        calls[id] += 1
        return {"id": id, "edition": calls[id], "title": title(id)}

    @api.get("/slow")
    def slow() -> dict[str, int]:
        calls["slow"] += 1
        time.sleep(0.5)
        return {"edition": calls["slow"]}

    def app() -> TestClient:
        return TestClient(App(api, cache=RedisStore(client(), **store), build_id="b"))

    return app(), app()


def seen(client: TestClient, path: str) -> tuple[str, int]:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return response.headers[CACHE], response.json()["edition"]


def shared_entries_tags_and_single_flight(
    a: TestClient, b: TestClient, calls: Counter[str]
) -> None:
    assert seen(a, "/posts/1") == ("MISS", 1)
    assert seen(b, "/posts/1") == ("HIT", 1)
    b.app.revalidate_tag("posts")
    assert seen(a, "/posts/1") == ("STALE", 1)
    wait_for(lambda: seen(b, "/posts/1") == ("HIT", 2))
    assert calls["title-1"] == 2  # the @cached value carried the tag too
    a.app.revalidate_tag("posts", expire=True)
    assert seen(b, "/posts/1") == ("MISS", 3)

    results: list[tuple[str, int]] = []
    threads = [
        threading.Thread(target=lambda c=c: results.append(seen(c, "/slow"))) for c in (a, b)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(results) == [("HIT", 1), ("MISS", 1)]  # one build across both workers
    assert calls["slow"] == 1


def test_a_url_a_unix_socket_and_tls_urls_make_clients(tmp_path: Path, calls) -> None:
    socket_file = tmp_path / "redis.sock"
    process, _ = start_redis(tmp_path, None, "--unixsocket", str(socket_file))
    try:
        a, b = workers(calls, lambda: f"unix://{socket_file}?db=0")
        assert seen(a, "/posts/1") == ("MISS", 1)
        assert seen(b, "/posts/1") == ("HIT", 1)
    finally:
        stop_process(process)
    tls = RedisStore("rediss://127.0.0.1:6390/0")  # no connection is made until used
    assert tls.client.connection_pool.connection_class is redis.SSLConnection


def test_anything_but_a_url_or_a_client_is_refused() -> None:
    with pytest.raises(TypeError, match=r"RedisStore takes a URL .* got dict"):
        RedisStore({"host": "127.0.0.1"})


def test_workers_on_a_three_primary_cluster_share_entries_tags_and_single_flight(
    redis_cluster_nodes: list[int], calls: Counter[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Every operation is one slot (a cluster refuses a command or transaction across two)."""
    port = redis_cluster_nodes[0]
    a, b = workers(calls, lambda: RedisCluster(host="127.0.0.1", port=port, socket_timeout=2))
    with caplog.at_level(logging.ERROR, logger="microroute"):
        shared_entries_tags_and_single_flight(a, b, calls)
    assert caplog.text == ""
    cluster = RedisCluster(host="127.0.0.1", port=port)
    slot = cluster.keyslot("{microroute:b}")
    assert {cluster.keyslot(key) for key in cluster.keys(target_nodes=RedisCluster.ALL_NODES)} == {
        slot
    }


def test_apps_and_builds_spread_over_the_cluster_nodes(redis_cluster_nodes: list[int]) -> None:
    """One hash tag per app and build: different apps land on different primaries."""
    cluster = RedisCluster(host="127.0.0.1", port=redis_cluster_nodes[0])
    owners = {cluster.get_node_from_key("{" + f"app{n}:b" + "}:g").port for n in range(30)}
    assert len(owners) == 3


def test_a_sentinel_failover_is_failsoft_and_recovers_by_itself(
    sentinel_group: tuple[list[int], list[int]],
    calls: Counter[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """During SENTINEL FAILOVER every request is answered (from a build if need be), never
    a 500; once the replica is promoted, the workers cache through it again."""
    data_ports, sentinel_ports = sentinel_group
    addresses = [("127.0.0.1", port) for port in sentinel_ports]

    def client() -> Any:
        sentinel = Sentinel(addresses, socket_timeout=0.5)
        return sentinel.master_for(SENTINEL_NAME, socket_timeout=0.5)

    a, b = workers(calls, client)
    shared_entries_tags_and_single_flight(a, b, calls)
    before = sentinel_primary(sentinel_ports[0])

    statuses: Counter[int] = Counter()
    stop = threading.Event()

    def hammer(worker: TestClient) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            statuses[worker.get(f"/posts/{n % 5}").status_code] += 1
            time.sleep(0.005)

    threads = [threading.Thread(target=hammer, args=(w,)) for w in (a, b)]
    with caplog.at_level(logging.ERROR, logger="microroute"):
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        with redis.Redis(port=sentinel_ports[0], socket_timeout=2) as sentinel:
            assert sentinel.execute_command("SENTINEL", "FAILOVER", SENTINEL_NAME)
        wait_for(lambda: sentinel_primary(sentinel_ports[0]) != before, timeout=30)
        time.sleep(1.5)  # past FailSoft's pause: requests go back to the new primary
        stop.set()
        for thread in threads:
            thread.join(10)
    assert set(statuses) == {200}, statuses
    assert sentinel_primary(sentinel_ports[0]) in data_ports

    # Recovered: a new path is built once and shared again, through the new primary.
    wait_for(lambda: seen(a, "/posts/new")[0] in ("MISS", "HIT"), timeout=10)
    wait_for(lambda: seen(b, "/posts/new")[0] == "HIT", timeout=10)
