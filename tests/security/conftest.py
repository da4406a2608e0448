"""Fixtures for the hostile-input tables: the security app, in-process and served.

``client`` is a TestClient on :mod:`security_app`. ``call`` hands the app a
hand-made WSGI environ, for what ``requests`` refuses to send (raw latin-1
bytes in a path, a NUL in a method). ``served`` runs the same app under a real
``microroute run``, since header size and count limits belong to the server,
and ``raw_http`` speaks bytes to it over a socket.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from security_app import make_app
from support import stop_process
from werkzeug.datastructures import Headers

from microroute import App
from microroute.testing import TestClient

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
READY_TIMEOUT = 15.0


@dataclass
class Answer:
    """What the app (or a server) answered, shaped like a ``requests.Response``."""

    status_code: int
    headers: Headers
    content: bytes
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


@pytest.fixture
def app() -> App:
    return make_app()


@pytest.fixture
def client(app: App, client_for: Callable[[App], TestClient]) -> TestClient:
    return client_for(app)


@pytest.fixture
def call(app: App) -> Callable[..., Answer]:
    """``call(path, method=..., body=..., query=..., **environ)``: the app on a raw environ.

    *path* is the WSGI ``PATH_INFO`` (bytes are carried as latin-1, as servers do).
    """

    def run(
        path: str | bytes = "/",
        method: str = "GET",
        body: bytes = b"",
        query: str | bytes = "",
        **extra: Any,
    ) -> Answer:
        if isinstance(path, bytes):
            path = path.decode("latin-1")
        if isinstance(query, bytes):
            query = query.decode("latin-1")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "testserver",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        if body and "CONTENT_LENGTH" not in extra and not extra.get("wsgi.input_terminated"):
            environ["CONTENT_LENGTH"] = str(len(body))
        environ.update(extra)
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            started["status"], started["headers"] = status, headers

        iterable = app(environ, start_response)
        try:
            content = b"".join(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        status = started["status"]
        return Answer(int(status[:3]), Headers(started["headers"]), content, status[4:])

    return run


@pytest.fixture
def refused(caplog: pytest.LogCaptureFixture) -> Callable[..., dict[str, Any]]:
    """``refused(response, status)``: a JSON 4xx saying why; returns the parsed body.

    *status* may be an int or a tuple of acceptable ones. Also checks that
    nothing was logged as an error: a hostile request is the client's fault.
    """
    caplog.set_level(logging.ERROR, logger="microroute")

    def check(response: Any, status: int | tuple[int, ...]) -> dict[str, Any]:
        wanted = status if isinstance(status, tuple) else (status,)
        assert response.status_code in wanted, (response.status_code, response.text[:300])
        assert 400 <= response.status_code < 500
        assert response.headers["Content-Type"] == "application/json"
        assert "Traceback" not in response.text
        body = response.json()
        assert isinstance(body, dict)
        assert set(body) == {"error"}
        assert isinstance(body["error"], str)
        assert body["error"].strip()
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not errors, [r.getMessage() for r in errors]
        return body

    return check


@pytest.fixture
def not_a_500(caplog: pytest.LogCaptureFixture) -> Callable[..., Any]:
    """``not_a_500(response)``: answered below 500, in JSON, with nothing logged as an error."""
    caplog.set_level(logging.ERROR, logger="microroute")

    def check(response: Any) -> Any:
        assert response.status_code < 500, (response.status_code, response.text[:300])
        assert response.headers["Content-Type"] == "application/json"
        assert "Traceback" not in response.text
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not errors, [r.getMessage() for r in errors]
        return response.json()

    return check


# -- a real `microroute run` for the limits that belong to the server ---------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """``microroute run tests/security/security_app.py`` on a free port: ``(host, port)``."""
    port = _free_port()
    log = tmp_path_factory.mktemp("security-server") / "server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "microroute", "run", str(HERE / "security_app.py"),
            "--port", str(port)]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"microroute run exited early:\n{log.read_text()}")
            try:
                requests.get(f"http://127.0.0.1:{port}/static/page", timeout=1)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    pytest.fail(f"microroute run not ready:\n{log.read_text()}")
                time.sleep(0.05)
        yield "127.0.0.1", port
    finally:
        stop_process(process)


@pytest.fixture
def raw_http(served: tuple[str, int]) -> Callable[[bytes], Answer]:
    """Send raw request bytes to the served app; parse the status, headers and body."""

    def send(request: bytes) -> Answer:
        with socket.create_connection(served, timeout=10) as sock:
            # The server may answer and close before reading it all.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(request)
            chunks = []
            while True:
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        raw = b"".join(chunks)
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        pairs = [tuple(line.split(": ", 1)) for line in lines[1:] if ": " in line]
        return Answer(int(parts[1]), Headers(pairs), body, parts[2] if len(parts) > 2 else "")

    return send


@pytest.fixture
def app_with(client_for: Callable[[App], TestClient]) -> Callable[..., TestClient]:
    """``app_with(max_json_depth=2)``: a client on the security app with other settings."""

    def make(**options: Any) -> TestClient:
        return client_for(make_app(**options))

    return make
