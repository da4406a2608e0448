"""Real server processes for end-to-end tests: start on a free port, wait, stop by PID.

``launch`` is parametrized over :data:`KINDS` (:func:`on` narrows a test to some),
so every test that uses it runs against each. Each server is its own process
on a free 127.0.0.1 port, started with this interpreter (``sys.executable -m
...``), waited for by polling HTTP, and stopped by its PID at the end.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pytest
import requests
from support import stop_process

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
APPS = Path(__file__).parent / "apps"
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
#: How long a herd of raw-socket requests may take to be answered.
HERD_TIMEOUT = 30.0


@dataclass(frozen=True)
class Target:
    """One app, named both ways: for ``microroute run`` and for gunicorn."""

    name: str
    run: str  # TARGET for `microroute run`, relative to the repository
    wsgi: str  # module:attr for gunicorn
    chdir: Path = REPO  # gunicorn --chdir: the folder `wsgi` imports from
    env: dict[str, str] = field(default_factory=dict)


HELLO = Target("hello", run="examples/hello.py", wsgi="hello:app", chdir=EXAMPLES)
SECURITY_APP = Target(
    "security",
    run="tests/security/security_app.py",
    wsgi="security_app:app",
    chdir=REPO / "tests" / "security",
)
DEPLOY = Target(
    "deploy",
    run="tests/e2e/apps/deploy_app.py",
    wsgi="deploy_app:app",
    chdir=APPS,
)
RAW = Target("raw", run="tests/e2e/apps/raw_app.py", wsgi="raw_app:app", chdir=APPS)
STREAMING = Target(
    "streaming",
    run="tests/e2e/streaming_app.py",
    wsgi="streaming_app:app",
    chdir=Path(__file__).parent,
)
BLOG = Target(
    "blog",
    run="examples/blog",
    wsgi="microroute.wsgi:app",
    env={"MICROROUTE_APP": str(EXAMPLES / "blog" / "app")},
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment, with the repository importable whatever the folder."""
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Server:
    """A running server process; ``url`` is its base URL."""

    kind: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send *sig*, wait, kill on timeout; return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"{self.kind} ignored {sig.name} for {STOP_TIMEOUT}s:\n{self.output()}")
        return self.process.returncode


#: The servers every e2e test runs against: ``microroute run``, gunicorn's own
#: gevent worker, and gunicorn running microroute's connection loop.
KINDS = ("microroute", "gunicorn", "gunicorn-microroute")
#: The two gunicorn kinds (gunicorn's settings), and the two that run microroute's
#: own connection loop (llhttp; its graceful stop).
GUNICORNS = ("gunicorn", "gunicorn-microroute")
MICROROUTES = ("microroute", "gunicorn-microroute")
#: ``granian --interface wsgi``: supported for apps that need no greenlets (README,
#: "Which to use"). Its handlers run in threads of a process gevent has not patched,
#: so it is not one of :data:`KINDS` (whose tests hold streams, time out handlers and
#: watch disconnects); the differential suite runs it as a fourth server.
GRANIAN = "granian"
WORKER_CLASSES = {"gunicorn": "gevent", "gunicorn-microroute": "microroute.gunicorn.Worker"}


def on(*kinds: str) -> pytest.MarkDecorator:
    """Run a test on these kinds only, for a case the others do not concern.

    It parametrizes ``launch`` (indirectly) over *kinds* instead of every one of
    :data:`KINDS`, so nothing is started, nor skipped, for the rest::

        @on(*GUNICORNS)  # gunicorn's settings: microroute run has options of its own
        def test_limits(launch: Launcher) -> None: ...
    """
    return pytest.mark.parametrize("launch", kinds, indirect=True)


def command(
    kind: str, target: Target, port: int, workers: int = 1, args: Sequence[str] = ()
) -> tuple[list[str], Path]:
    """The argv and working folder that serve *target* on *port* with *kind*, plus *args*."""
    if kind == "microroute":
        argv = [sys.executable, "-m", "microroute", "run", target.run, "--port", str(port), *args]
        return argv, REPO
    if kind == GRANIAN:
        argv = [
            sys.executable, "-m", "granian", "--interface", "wsgi",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--log-level", "warning", target.wsgi,
        ]  # fmt: skip
        return argv, target.chdir
    argv = [
        sys.executable, "-m", "gunicorn",
        "-k", WORKER_CLASSES[kind], "-w", str(workers),
        "--bind", f"127.0.0.1:{port}",
        "--graceful-timeout", "5",
        *args,
        target.wsgi,
    ]  # fmt: skip
    return argv, target.chdir


def wait_ready(server: Server) -> None:
    """Poll with HTTP until the server answers anything, or fail with its output."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"{server.kind} exited with {server.process.returncode} before it was ready:\n"
                + server.output()
            )
        try:
            requests.get(server.url + "/", timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    server.stop()
    pytest.fail(f"{server.kind} not ready after {READY_TIMEOUT}s:\n{server.output()}")


class Launcher:
    """Starts servers of one kind; stops whatever is still running at teardown."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.workdir = workdir
        self.shared: dict[str, Server] = {}
        self.started: list[Server] = []

    def start(
        self,
        target: Target,
        *,
        fresh: bool = False,
        env: dict[str, str] | None = None,
        workers: int = 1,
        args: Sequence[str] = (),
    ) -> Server:
        """A ready server for *target*; shared by the module unless *fresh* (or given *args*).

        *workers* is gunicorn's ``-w`` (``microroute run`` is one process).
        """
        fresh = fresh or bool(args)
        if not fresh and target.name in self.shared:
            return self.shared[target.name]
        port = free_port()
        argv, cwd = command(self.kind, target, port, workers, args=args)
        log = self.workdir / f"{self.kind}-{target.name}-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=subprocess_env({**target.env, **(env or {})}),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Server(self.kind, f"http://127.0.0.1:{port}", process, log)
        self.started.append(server)
        wait_ready(server)
        if not fresh:
            self.shared[target.name] = server
        return server

    def stop_all(self) -> None:
        for server in self.started:
            stop_process(server.process, STOP_TIMEOUT)


class Reply(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float  # from the herd's first request to this answer's end


def herd(server: Server, path: str, count: int) -> list[Reply]:
    """*count* simultaneous first requests for *path*, each on its own connection.

    One thread, raw sockets: every connection is opened, then every request is
    sent in one tight loop, then the answers are read as they come. (Hundreds
    of client threads would starve each other of the GIL, and a gunicorn worker
    drops a connection whose request line has not arrived after ``keepalive``
    seconds.)
    """
    host, port = server.url.removeprefix("http://").split(":")
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    address = (host, int(port))
    sockets = [socket.create_connection(address, timeout=HERD_TIMEOUT) for _ in range(count)]
    received = {sock: bytearray() for sock in sockets}
    finished: dict[socket.socket, float] = {}
    with selectors.DefaultSelector() as selector:
        started = time.monotonic()
        for sock in sockets:
            sock.sendall(request)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        while len(finished) < count:
            assert time.monotonic() - started < HERD_TIMEOUT, f"{count - len(finished)} unanswered"
            for key, _ in selector.select(timeout=1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                chunk = sock.recv(65536)
                if chunk:
                    received[sock] += chunk
                else:  # Connection: close, so the end of the answer
                    finished[sock] = time.monotonic() - started
                    selector.unregister(sock)
                    sock.close()
    return [parse(bytes(received[sock]), finished[sock]) for sock in sockets]


def parse(raw: bytes, seconds: float) -> Reply:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return Reply(int(status_line.split()[1]), headers, body, seconds)
