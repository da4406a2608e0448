"""``microroute dev``: real processes on free ports, files edited, reloads waited for.

Each test writes a small project in a temporary folder, starts ``python -m
microroute dev`` there on a free 127.0.0.1 port, edits files and waits (bounded)
for the server to show the change; every process is stopped by its PID. The
debug page and the start-up error page are also opened in headless Chromium,
which must fetch nothing but the page itself.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, sync_playwright
from servers import free_port, subprocess_env
from support import stop_process
from test_browser_cors import CHROMIUM_ARGS, chromium_path

pytestmark = pytest.mark.e2e

TIMEOUT = 10
#: How long a save may take to show: the watcher, a new process, the app's import.
RELOAD_WITHIN = 15.0

STATS = """
COUNT = [0]

def GET():
    COUNT[0] += 1
    return {"count": COUNT[0], "version": 1}
"""

STREAM = """
import time

def GET():
    for n in range(10_000):
        yield f"data: {n}\\n\\n"
        time.sleep(0.05)
"""

BOOM = """
def GET(request):
    return ratio(1, 0)

def ratio(a, b):
    return a / b
"""


@dataclass
class Dev:
    """A running ``microroute dev``: its process, URL, project folder and output."""

    process: subprocess.Popen[bytes]
    url: str
    root: Path
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(self.url + path, timeout=TIMEOUT, **kwargs)  # type: ignore[arg-type]

    def write(self, relative: str, source: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))

    def wait(
        self, path: str, ready: Callable[[requests.Response], bool], **kwargs: object
    ) -> requests.Response:
        """GET *path* until *ready* says yes (a reload shows), at most :data:`RELOAD_WITHIN`."""
        deadline = time.monotonic() + RELOAD_WITHIN
        last: requests.Response | None = None
        while time.monotonic() < deadline:
            try:
                last = self.get(path, **kwargs)
                if ready(last):
                    return last
            except requests.RequestException:
                pass
            time.sleep(0.1)
        pytest.fail(
            f"GET {path} never became ready in {RELOAD_WITHIN}s (last: "
            f"{last.status_code if last else None} {last.text[:300] if last else ''}):\n"
            + self.output()
        )


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[Callable[..., Dev]]:
    """``dev(files, *args, env=...)``: a project written, and ``microroute dev`` serving it."""
    started: list[Dev] = []

    def start(files: dict[str, str], *args: str, env: dict[str, str] | None = None) -> Dev:
        root = tmp_path / f"project{len(started)}"
        port = free_port()
        log = tmp_path / f"dev{len(started)}.log"
        for relative, source in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "microroute", "dev", *args, "--port", str(port)],
                cwd=root,
                env=subprocess_env(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Dev(process, f"http://127.0.0.1:{port}", root, log)
        started.append(server)
        server.wait("/", lambda response: True)
        return server

    yield start
    for server in started:
        stop_process(server.process)


def test_static_gets_are_built_on_every_request_and_the_banner_says_so(
    dev: Callable[..., Dev],
) -> None:
    server = dev({"app/api/stats/route.py": STATS})
    first, second = server.get("/api/stats"), server.get("/api/stats")
    assert (first.json()["count"], second.json()["count"]) == (1, 2)
    assert first.headers["X-Microroute-Cache"] == second.headers["X-Microroute-Cache"] == "DEV"
    assert first.headers["Cache-Control"] == "no-store"
    output = server.output()
    assert f"microroute dev serving on {server.url}" in output
    assert "static GETs built on every request (X-Microroute-Cache: DEV)" in output
    assert "/api/stats" in output


def test_microroute_run_keeps_the_static_default(
    tmp_path: Path, spawn: Callable[..., object]
) -> None:
    project = tmp_path / "run"
    (project / "app" / "api" / "stats").mkdir(parents=True)
    (project / "app" / "api" / "stats" / "route.py").write_text(textwrap.dedent(STATS))
    server = spawn(str(project), free_port())
    seen = [requests.get(f"{server.url}/api/stats", timeout=TIMEOUT) for _ in range(2)]  # type: ignore[attr-defined]
    assert [r.headers["X-Microroute-Cache"] for r in seen] == ["MISS", "HIT"]
    assert seen[0].json() == seen[1].json()


@pytest.mark.parametrize("watcher", ["watchfiles", "poll"])
def test_a_save_reloads(dev: Callable[..., Dev], watcher: str) -> None:
    env = {"MICROROUTE_DEV_POLL": "1"} if watcher == "poll" else {}
    server = dev({"app/api/stats/route.py": STATS}, env=env)
    assert server.get("/api/stats").json()["version"] == 1
    server.write("app/api/stats/route.py", STATS.replace('"version": 1', '"version": 2'))
    server.wait("/api/stats", lambda r: r.status_code == 200 and r.json()["version"] == 2)
    server.write("app/api/new/route.py", "def GET(): return 'new route'\n")
    assert server.wait("/api/new", lambda r: r.status_code == 200).text == "new route"
    output = server.output()
    assert "app/api/stats/route.py changed; reloading" in output
    assert ("watchfiles" in output) == (watcher == "watchfiles")


def test_an_error_at_start_keeps_the_port_and_shows_the_error_until_the_next_save(
    dev: Callable[..., Dev],
) -> None:
    server = dev({"app/api/stats/route.py": STATS})
    server.write("app/api/stats/route.py", "def GET(:\n    return 1\n")
    broken = server.wait("/api/stats", lambda r: r.status_code == 500)
    error = broken.json()["error"]
    assert error.startswith("app/api/stats/route.py: import failed: SyntaxError")
    assert "route.py" in broken.json()["traceback"]
    for path in ("/", "/anything/else"):  # every request, not only the broken route's
        assert server.get(path).json()["error"] == error
    page = server.get("/api/stats", headers={"Accept": "text/html"})
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "The app could not start" in page.text and "SyntaxError" in page.text
    # An import error too: the module that is missing, and the line that asked for it.
    server.write("app/api/stats/route.py", "import no_such_module_here\ndef GET(): return 1\n")
    missing = server.wait("/api/stats", lambda r: "no_such_module_here" in r.text)
    assert "ModuleNotFoundError" in missing.json()["error"]
    server.write("app/api/stats/route.py", STATS)
    assert server.wait("/api/stats", lambda r: r.status_code == 200).json()["version"] == 1


def test_open_streams_end_at_once_on_reload(dev: Callable[..., Dev]) -> None:
    server = dev({"app/events/route.py": STREAM, "app/ping/route.py": "def GET(): return 'v1'"})
    with requests.get(server.url + "/events", stream=True, timeout=TIMEOUT) as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith(b"data: ")
        server.write("app/ping/route.py", "def GET(): return 'v2'")
        saved = time.monotonic()
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for _ in lines:
                assert time.monotonic() - saved < RELOAD_WITHIN
        ended = time.monotonic() - saved
    assert ended < 3.0, f"the stream took {ended:.1f}s to end"
    server.wait("/ping", lambda r: r.text == "v2")


def test_a_500_is_the_debug_page_for_browsers_and_json_for_api_clients(
    dev: Callable[..., Dev],
) -> None:
    server = dev({"app/boom/route.py": BOOM})
    api = server.get("/boom")
    assert api.status_code == 500
    trace = api.json()["traceback"].splitlines()
    assert trace[1].strip().startswith('File "') and "app/boom/route.py" in trace[1]
    assert "in GET" in trace[1] and "ZeroDivisionError" in trace[-1]
    page = server.get("/boom", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 500
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_stopped_by_its_pid_it_leaves_nothing_behind(dev: Callable[..., Dev]) -> None:
    server = dev({"app/ping/route.py": "def GET(): return 'pong'"})
    assert server.get("/ping").text == "pong"
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=TIMEOUT) == 0
    host, port = server.url.removeprefix("http://").split(":")
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=1).close()


def test_a_public_host_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "microroute", "dev", "--host", "0.0.0.0", "--port", "0"],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 1
    assert "refusing to serve with debug on 0.0.0.0" in done.stderr


# -- in a real browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=chromium_path(), args=CHROMIUM_ARGS, timeout=30_000
            )
        except Exception as exc:  # the browser must start: fail, never skip
            pytest.fail(f"headless Chromium did not start: {exc}")
        yield launched
        launched.close()


def open_page(browser: Browser, url: str) -> dict[str, object]:
    """What a browser shows at *url*, and every URL it fetched and complained about."""
    context = browser.new_context()
    try:
        page = context.new_page()
        fetched: list[str] = []
        complaints: list[str] = []
        page.on("request", lambda request: fetched.append(request.url))
        page.on("console", lambda message: complaints.append(message.text))
        # The page's own status is no complaint: a blocked script or style would be.
        expected = "the server responded with a status of 500"
        response = page.goto(url, timeout=15_000)
        assert response is not None
        return {
            "status": response.status,
            "title": page.title(),
            "heading": page.inner_text("h1"),
            "message": page.inner_text(".errormsg"),
            "frames": page.locator(".frame cite.filename").all_inner_texts(),
            "text": page.inner_text("body"),
            "fetched": fetched,
            "complaints": [text for text in complaints if expected not in text],
        }
    finally:
        context.close()


def test_the_debug_page_in_a_browser(dev: Callable[..., Dev], browser: Browser) -> None:
    server = dev({"app/boom/route.py": BOOM})
    shown = open_page(browser, server.url + "/boom")
    assert shown["status"] == 500
    assert shown["heading"] == "ZeroDivisionError"
    assert shown["message"] == "ZeroDivisionError: division by zero"
    frames = shown["frames"]
    assert isinstance(frames, list) and frames
    assert frames[0].endswith('app/boom/route.py"')  # the user's frame first
    assert all("microroute" not in frame for frame in frames)
    assert "return ratio(1, 0)" in str(shown["text"])
    assert shown["fetched"] == [server.url + "/boom"]  # nothing else, from anywhere
    assert shown["complaints"] == []  # no script blocked, nothing refused by the CSP


def test_the_start_up_error_page_in_a_browser(dev: Callable[..., Dev], browser: Browser) -> None:
    server = dev({"app/ok/route.py": "def GET(): return 'ok'"})
    server.write("app/ok/route.py", "def GET(:\n")
    server.wait("/ok", lambda r: r.status_code == 500)
    shown = open_page(browser, server.url + "/ok")
    assert shown["status"] == 500
    assert shown["heading"] == "The app could not start"
    assert str(shown["message"]).startswith("app/ok/route.py: import failed: SyntaxError")
    assert "def GET(:" in str(shown["text"])  # the line, with its caret
    assert shown["fetched"] == [server.url + "/ok"]
    assert shown["complaints"] == []
