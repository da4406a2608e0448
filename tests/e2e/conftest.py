"""Fixtures for end-to-end tests: one fixture for both ways to serve an app.

``launch`` is parametrized over ``microroute run``, ``gunicorn -k gevent`` and
``gunicorn -k microroute.gunicorn.Worker``, so every test that uses it runs
against all three. The process handling lives in
``servers.py`` (a plain module, so test modules can import its names).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import (
    BLOG,
    HELLO,
    KINDS,
    REPO,
    SECURITY_APP,
    Launcher,
    Server,
    subprocess_env,
    wait_ready,
)


@pytest.fixture(scope="module", params=KINDS)
def launch(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Launcher]:
    """Start real servers of one kind: ``microroute run``, ``gunicorn -k gevent``, or
    ``gunicorn -k microroute.gunicorn.Worker``."""
    launcher = Launcher(request.param, tmp_path_factory.mktemp(f"e2e-{request.param}"))
    yield launcher
    launcher.stop_all()


@pytest.fixture
def hello_server(launch: Launcher) -> Server:
    """examples/hello.py, served by the kind under test (one per module)."""
    return launch.start(HELLO)


@pytest.fixture
def security_server(launch: Launcher) -> Server:
    """tests/security/security_app.py (a route per way input is read), served by the kind."""
    return launch.start(SECURITY_APP)


@pytest.fixture
def fresh_hello_server(launch: Launcher) -> Server:
    """examples/hello.py in a process of its own, for a test that stops it."""
    return launch.start(HELLO, fresh=True)


@pytest.fixture
def blog_server(launch: Launcher, tmp_path_factory: pytest.TempPathFactory) -> Server:
    """examples/blog on a fresh sqlite file, served by the kind under test."""
    db = tmp_path_factory.mktemp("blog") / "blog.sqlite3"
    return launch.start(BLOG, env={"BLOG_DB": str(db)})


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m microroute run ARGS`` to completion; a start-up error ends it."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "microroute", "run", *args],
            cwd=REPO,
            env=subprocess_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=20,
        )

    return run


@pytest.fixture(scope="module")
def spawn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Server]]:
    """Start ``microroute run TARGET --port PORT`` processes; all stopped by PID after."""
    logs = tmp_path_factory.mktemp("spawn")
    started: list[Server] = []

    def start(target: str, port: int, env: dict[str, str] | None = None) -> Server:
        log = logs / f"{Path(target).stem}-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "microroute", "run", target, "--port", str(port)],
                cwd=REPO,
                env=subprocess_env(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Server("microroute", f"http://127.0.0.1:{port}", process, log)
        started.append(server)
        wait_ready(server)
        return server

    yield start
    for server in started:
        server.stop()
