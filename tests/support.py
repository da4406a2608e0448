"""Helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from microroute.testing import TestClient

CACHE = "X-Microroute-Cache"


def wait_for(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Poll *condition* until it is true, or fail after *timeout* seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met after {timeout}s")
        time.sleep(0.01)


def row(client: TestClient, path: str) -> dict[str, str]:
    """The ``route_table()`` row of *path*."""
    return next(r for r in client.app.route_table() if r["path"] == path)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Stop a process this test session started: terminate, wait, kill if it hangs."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


REDIS_READY_TIMEOUT = 10.0


def start_redis(
    workdir: Path, port: int | None = None, *options: str
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a real ``redis-server`` on a free (or the given) 127.0.0.1 port.

    *options* go to ``redis-server`` after the defaults (``--cluster-enabled``, ``yes``).

    No fake and no skip: without the Debian package ``redis-server`` the tests
    that need it fail, saying what to install. The caller stops it by PID.
    """
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: apt-get install redis-server")
    if port is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    log = workdir / f"redis-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(workdir), *options],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, socket_timeout=1)
    deadline = time.monotonic() + REDIS_READY_TIMEOUT
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"redis-server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if client.ping():
                    return process, url
            except redis.RedisError:
                if time.monotonic() > deadline:
                    stop_process(process)
                    pytest.fail(f"redis-server not answering PING:\n{log.read_text()}")
                time.sleep(0.02)
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis_cluster(
    workdir: Path, primaries: int = 3
) -> tuple[list[subprocess.Popen[bytes]], list[int]]:
    """A Redis Cluster of *primaries* real ``redis-server --cluster-enabled yes`` nodes.

    Slots are spread by ``redis-cli --cluster create``; returns the processes (the
    caller stops them by PID) and their ports once every node says ``cluster_state:ok``.
    """
    import redis

    if shutil.which("redis-cli") is None:
        pytest.fail("redis-cli is not installed: apt-get install redis-tools")
    processes: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    try:
        for index in range(primaries):
            folder = workdir / f"node{index}"
            folder.mkdir()
            port = free_port()
            process, _ = start_redis(
                folder, port, "--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
            )  # fmt: skip
            processes.append(process)
            ports.append(port)
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        if created.returncode != 0:
            pytest.fail(f"redis-cli --cluster create failed:\n{created.stdout}{created.stderr}")
        for port in ports:
            with redis.Redis(port=port, socket_timeout=1) as node:
                wait_for(lambda n=node: n.cluster("info")["cluster_state"] == "ok", timeout=20)
    except BaseException:
        for process in processes:
            stop_process(process)
        raise
    return processes, ports


SENTINEL_NAME = "cache"


def start_sentinel_group(
    workdir: Path, sentinels: int = 3
) -> tuple[list[subprocess.Popen[bytes]], list[int], list[int]]:
    """A primary, one replica and *sentinels* real Sentinels watching them as ``cache``.

    Sentinels run as ``redis-server FILE --sentinel`` (Debian's ``redis-sentinel`` is
    the same binary). Returns the processes (stopped by PID by the caller), the data
    ports (primary first) and the Sentinel ports, once every Sentinel knows the
    replica and the other Sentinels, so a failover can be triggered at once.
    """
    import redis

    processes: list[subprocess.Popen[bytes]] = []
    try:
        (workdir / "primary").mkdir()
        primary, url = start_redis(workdir / "primary")
        processes.append(primary)
        primary_port = int(url.rsplit(":", 1)[1].split("/")[0])
        (workdir / "replica").mkdir()
        replica, replica_url = start_redis(
            workdir / "replica", None, "--replicaof", "127.0.0.1", str(primary_port)
        )
        processes.append(replica)
        replica_port = int(replica_url.rsplit(":", 1)[1].split("/")[0])
        with redis.Redis(port=replica_port, socket_timeout=1) as node:
            wait_for(lambda: node.info("replication")["master_link_status"] == "up", 20)
        sentinel_ports = []
        binary = shutil.which("redis-server")
        assert binary is not None
        for index in range(sentinels):
            folder = workdir / f"sentinel{index}"
            folder.mkdir()
            port = free_port()
            config = folder / "sentinel.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                f"sentinel monitor {SENTINEL_NAME} 127.0.0.1 {primary_port} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_NAME} 2000\n"
                f"sentinel failover-timeout {SENTINEL_NAME} 10000\n"
            )
            with (folder / "sentinel.log").open("wb") as out:
                processes.append(subprocess.Popen(
                    [binary, str(config), "--sentinel"],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                ))  # fmt: skip
            sentinel_ports.append(port)
        for port in sentinel_ports:
            with redis.Redis(port=port, socket_timeout=1) as sentinel:

                def ready(s: redis.Redis = sentinel) -> bool:
                    try:
                        master = s.sentinel_master(SENTINEL_NAME)
                    except redis.RedisError:
                        return False
                    return bool(
                        master["num-slaves"] >= 1 and master["num-other-sentinels"] >= sentinels - 1
                    )

                wait_for(ready, timeout=30)
    except BaseException:
        for process in processes:
            stop_process(process)
        raise
    return processes, [primary_port, replica_port], sentinel_ports


def sentinel_primary(sentinel_port: int) -> int:
    """The port the Sentinel on *sentinel_port* names as the primary now."""
    import redis

    with redis.Redis(port=sentinel_port, socket_timeout=1) as sentinel:
        _host, port = sentinel.sentinel_get_master_addr_by_name(SENTINEL_NAME)
    return int(port)


def failover_ready(sentinel_port: int) -> bool:
    """Whether the Sentinel on *sentinel_port* knows a healthy replica to promote.

    After a failover the old primary becomes a replica only once a Sentinel's next
    INFO round (every 10 s) converts it; a failover asked for before that is aborted
    ("no good slave").
    """
    import redis

    with redis.Redis(port=sentinel_port, socket_timeout=1) as sentinel:
        primary_port = sentinel_primary(sentinel_port)
        replicas = sentinel.sentinel_slaves(SENTINEL_NAME)
    return any(
        replica["flags"] == "slave"
        and replica.get("master-link-status") == "ok"
        and int(replica.get("master-port", 0)) == primary_port
        for replica in replicas
    )
