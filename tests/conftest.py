"""Shared fixtures: a fresh Router per test and a factory for clients on it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support import start_redis, start_redis_cluster, start_sentinel_group, stop_process

from microroute import App, Router
from microroute.testing import TestClient


@pytest.fixture
def router() -> Router:
    """A fresh Router, so no test sees another test's routes."""
    return Router()


@pytest.fixture
def make_client(router: Router) -> Iterator[Callable[..., TestClient]]:
    """Build ``App(router, **options)`` once routes are registered; return its client.

    Every client is closed at teardown, so open streams get their generators closed.
    """
    clients: list[TestClient] = []

    def make(**app_options: Any) -> TestClient:
        client = TestClient(App(router, **app_options))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# -- file discovery: app/ trees written per test ----------------------------


def _forget_app_modules() -> None:
    """Drop ``app`` and ``app.*``: each test's tree is a new package of that name."""
    import sys

    for name in [m for m in sys.modules if m == "app" or m.startswith("app.")]:
        del sys.modules[name]


@pytest.fixture
def isolated_imports() -> Iterator[None]:
    """Undo what discovery does to the interpreter: ``sys.path`` and ``app.*`` modules."""
    import importlib
    import sys

    saved_path = list(sys.path)
    _forget_app_modules()
    importlib.invalidate_caches()
    yield
    sys.path[:] = saved_path
    _forget_app_modules()
    importlib.invalidate_caches()


@pytest.fixture
def make_tree(isolated_imports: None) -> Callable[..., Any]:
    """Write files under a folder and return its ``app/`` dir.

    ``make_tree(tmp_path, {"app/api/users/route.py": "def GET(): return []"})``;
    contents are dedented, so triple-quoted sources can be indented in tests.
    """
    import importlib
    import textwrap
    from pathlib import Path

    def make(root: Path, files: dict[str, str]) -> Path:
        for relative, source in files.items():
            path = Path(root) / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source), encoding="utf-8")
        importlib.invalidate_caches()
        return Path(root) / "app"

    return make


@pytest.fixture
def client_for() -> Iterator[Callable[[App], TestClient]]:
    """``client_for(app)``: a TestClient on *app*, closed at teardown."""
    clients: list[TestClient] = []

    def make(app: App) -> TestClient:
        client = TestClient(app)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


# -- a real redis-server for the shared cache store ---------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``redis-server`` for the whole session; yields its URL. Stopped by PID."""
    process, url = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield url
    finally:
        stop_process(process)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    """The session's redis-server URL, emptied for this test."""
    import redis

    with redis.Redis.from_url(redis_server) as client:
        client.flushall()
    return redis_server


@pytest.fixture(scope="session")
def redis_cluster_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """A real 3-primary Redis Cluster for the session (slots spread by redis-cli);
    yields its nodes' ports. Each node is stopped by PID."""
    processes, ports = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield ports
    finally:
        for process in processes:
            stop_process(process)


@pytest.fixture(scope="module")
def sentinel_group(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[int], list[int]]]:
    """A real primary, replica and three Sentinels (master name ``cache``), per module,
    since a test may fail it over; yields (data ports, Sentinel ports). Stopped by PID."""
    processes, data_ports, sentinel_ports = start_sentinel_group(
        tmp_path_factory.mktemp("redis-sentinel")
    )
    try:
        yield data_ports, sentinel_ports
    finally:
        for process in processes:
            stop_process(process)


@pytest.fixture
def calls() -> Counter[str]:
    """How many times each handler ran, counted by the handlers themselves."""
    return Counter()
