"""Behaviour through real HTTP, against ``microroute run`` and ``gunicorn -k gevent``."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from servers import Server

pytestmark = pytest.mark.e2e

TIMEOUT = 5
RunCLI = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def hello(hello_server: Server) -> Server:
    return hello_server


@pytest.fixture
def blog(blog_server: Server) -> Server:
    return blog_server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def test_json_get(hello: Server, http: requests.Session) -> None:
    response = http.get(f"{hello.url}/hello/Ada", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"message": "Hello, Ada!"}


def test_post_echo(hello: Server, http: requests.Session) -> None:
    response = http.post(f"{hello.url}/echo", data='{"n": [1, 2]}', timeout=TIMEOUT)
    assert response.status_code == 201
    assert response.json() == {"n": [1, 2]}


def test_unknown_path_is_json_404(hello: Server, http: requests.Session) -> None:
    response = http.get(f"{hello.url}/nope", timeout=TIMEOUT)
    assert response.status_code == 404
    assert "error" in response.json()


def test_keep_alive_requests_are_not_delayed(hello: Server, http: requests.Session) -> None:
    # With Nagle's algorithm on, each keep-alive response waits ~40 ms for a
    # delayed ACK: 100 requests would take 4 s or more.
    http.get(f"{hello.url}/hello/warm", timeout=TIMEOUT)
    started = time.monotonic()
    for _ in range(100):
        assert http.get(f"{hello.url}/hello/fast", timeout=TIMEOUT).status_code == 200
    assert time.monotonic() - started < 2.0


def test_stream_arrives_chunk_by_chunk(hello: Server, http: requests.Session) -> None:
    arrivals: list[tuple[float, bytes]] = []
    started = time.monotonic()
    with http.get(f"{hello.url}/count/5", stream=True, timeout=TIMEOUT) as response:
        assert response.status_code == 200
        for chunk in response.iter_content(chunk_size=None):
            arrivals.append((time.monotonic() - started, chunk))
    assert b"".join(chunk for _, chunk in arrivals) == b"1\n2\n3\n4\n5\n"
    # The handler sleeps 0.1 s after each line: a buffered body would come at once.
    assert len(arrivals) >= 3
    assert arrivals[-1][0] - arrivals[0][0] >= 0.25


def test_blog_crud(blog: Server, http: requests.Session) -> None:
    posts = f"{blog.url}/api/posts"
    created = http.post(posts, json={"title": "Over HTTP"}, timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    url = f"{blog.url}{created.headers['Location']}"
    assert http.get(url, timeout=TIMEOUT).json()["title"] == "Over HTTP"
    assert created.json() in http.get(posts, timeout=TIMEOUT).json()

    patched = http.patch(url, json={"published": True}, timeout=TIMEOUT)
    assert patched.json()["published"] is True
    assert http.put(url, json={"title": "New"}, timeout=TIMEOUT).json()["title"] == "New"

    assert http.delete(url, timeout=TIMEOUT).status_code == 204
    missing = http.get(url, timeout=TIMEOUT)
    assert missing.status_code == 404
    assert missing.json()["error"].startswith("No post")


def test_blog_bad_input_is_400(blog: Server, http: requests.Session) -> None:
    response = http.post(f"{blog.url}/api/posts", json={"title": ""}, timeout=TIMEOUT)
    assert response.status_code == 400
    assert response.json() == {"error": "title is required and must be a non-empty string"}


def test_blog_concurrent_writes(blog: Server) -> None:
    import concurrent.futures

    def create(i: int) -> int:
        response = requests.post(f"{blog.url}/api/posts", json={"title": f"c{i}"}, timeout=TIMEOUT)
        return response.status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(create, range(40))) == {201}


def test_sigterm_exits_zero(fresh_hello_server: Server) -> None:
    server = fresh_hello_server
    assert requests.get(f"{server.url}/hello/x", timeout=TIMEOUT).status_code == 200
    assert server.stop(signal.SIGTERM) == 0, server.output()


# Start-up errors: `microroute run` only, gunicorn has its own reporting. ---------


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0]


def test_import_error_in_a_file_target(run_cli: RunCLI, tmp_path: Path) -> None:
    script = tmp_path / "broken_app.py"
    script.write_text("import no_such_module_here\n")
    result = run_cli(str(script), "--port", "0")
    assert_one_line_error(result, "broken_app.py", "ModuleNotFoundError", "no_such_module_here")


def test_import_error_in_a_route_file(run_cli: RunCLI, tmp_path: Path) -> None:
    route = tmp_path / "app" / "api" / "boom" / "route.py"
    route.parent.mkdir(parents=True)
    route.write_text("def GET():\n    return {}\n\n1 / 0\n")
    result = run_cli(str(tmp_path), "--port", "0")
    assert_one_line_error(result, "route.py", "ZeroDivisionError")


def test_file_target_without_app(run_cli: RunCLI, tmp_path: Path) -> None:
    script = tmp_path / "no_app.py"
    script.write_text("x = 1\n")
    assert_one_line_error(run_cli(str(script), "--port", "0"), "no_app.py", "'app'")


def test_busy_port(run_cli: RunCLI) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("examples/hello.py", "--port", str(port))
    assert_one_line_error(result, f"127.0.0.1:{port}", "in use")
