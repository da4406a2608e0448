"""The ``microroute`` command: ``routes``, and ``run``'s banner, access log and flags.

``routes`` runs in-process; ``run`` monkey-patches the process, so it runs in
a subprocess here (``tests/e2e/`` covers serving in depth).
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
import requests

from microroute.cli import RouteRow, format_route_table, main

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# microroute routes ---------------------------------------------------------------


def test_routes_of_a_file_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "cli_routes_app.py",
        "from microroute import App, Router\n"
        "r = Router()\n"
        "@r.get('/items/[id]')\n"
        "def item(id): return {}\n"
        "@r.post('/items')\n"
        "def create(): return {}\n"
        "@r.get('/items')\n"
        "def items(): return []\n"
        "app = App(r)\n",
    )
    assert main(["routes", "cli_routes_app.py"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["METHODS", "PATH", "CACHE", "SOURCE"]
    assert lines[1].startswith("GET POST  /items ")
    assert lines[1].endswith("  cli_routes_app.py:7 items(), cli_routes_app.py:5 create()")
    assert "dynamic (route also serves POST)" in lines[1]
    assert lines[2].startswith("GET       /items/[id] ")
    assert lines[2].endswith("  cli_routes_app.py:3 item()")
    assert "static" in lines[2]
    # Columns line up: every path, every cache mode starts at the same offset.
    assert len({line.index("/") for line in lines[1:]}) == 1
    assert len({line.index("CACHE") for line in lines[:1]} | {lines[1].index("dynamic")}) == 1


def test_routes_of_a_discovered_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "cli_discovered"
    write(project / "app" / "api" / "things" / "route.py", "def GET(): return []\n")
    write(project / "app" / "api" / "things" / "[id]" / "route.py", "def DELETE(id): pass\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert main(["routes", "cli_discovered"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()]
    assert ["GET", "/api/things", "static", "cli_discovered/app/api/things/route.py"] in rows
    assert rows[2][:2] == ["DELETE", "/api/things/[id]"]
    assert rows[2][-1] == "cli_discovered/app/api/things/[id]/route.py"
    for name in [m for m in sys.modules if m == "app" or m.startswith("app.")]:
        del sys.modules[name]


def test_routes_start_up_error_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = write(tmp_path / "cli_broken_app.py", "import no_such_module_for_cli\n")
    assert main(["routes", str(broken)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert "cli_broken_app.py" in lines[0]
    assert "no_such_module_for_cli" in lines[0]


def test_routes_missing_target(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["routes", str(tmp_path / "nope.py")]) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_routes_of_a_plain_wsgi_app(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = write(tmp_path / "cli_plain_wsgi.py", "def app(environ, start_response): return []\n")
    assert main(["routes", str(target)]) == 1
    assert "not a microroute App" in capsys.readouterr().err


def test_route_table_format() -> None:
    rows = [RouteRow("GET", "/a", "a.py:1 a()"), RouteRow("GET POST", "/long/path", "b.py")]
    assert format_route_table(rows, indent="  ").splitlines() == [
        "  METHODS   PATH        SOURCE",
        "  GET       /a          a.py:1 a()",
        "  GET POST  /long/path  b.py",
    ]
    assert format_route_table([]) == "(no routes)"


def test_route_table_has_a_cache_column_once_known() -> None:
    rows = [RouteRow("GET", "/a", "a.py", cache="static"), RouteRow("POST", "/b", "b.py")]
    assert format_route_table(rows).splitlines() == [
        "METHODS  PATH  CACHE   SOURCE",
        "GET      /a    static  a.py",
        "POST     /b    -       b.py",
    ]


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "routes" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["routes", "openapi"])
def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path, command: str) -> None:
    """README: 'Piped into a reader that stops early (`microroute routes | head`,
    `microroute openapi | head`), the command stops quietly with exit status 141,
    as one killed by SIGPIPE does, without a traceback.'
    """
    # Far more output than a pipe holds, so the command is still writing when we leave.
    handlers = "".join(
        f"@r.get('/items/{n}/[id]')\ndef item_{n}(id: int) -> dict[str, int]: return {{}}\n"
        for n in range(3000)
    )
    target = write(
        tmp_path / "cli_many_routes.py",
        f"from microroute import App, Router\nr = Router()\n{handlers}app = App(r)\n",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "microroute", command, str(target)],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline()  # like `head -1`: read a line, then leave
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141, err
    assert err == ""


# microroute run --------------------------------------------------------------------


class Running:
    """``python -m microroute run ...`` on a free port, its output read line by line."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "microroute", "run", *args, "--port", "0"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._lines: dict[str, queue.Queue[str]] = {}
        for name, pipe in (("stdout", self.process.stdout), ("stderr", self.process.stderr)):
            lines: queue.Queue[str] = queue.Queue()
            self._lines[name] = lines
            threading.Thread(target=self._pump, args=(pipe, lines), daemon=True).start()

    @staticmethod
    def _pump(pipe: IO[str] | None, lines: queue.Queue[str]) -> None:
        assert pipe is not None
        for line in pipe:
            lines.put(line.rstrip("\n"))

    def read_until(self, predicate: str, stream: str = "stdout", timeout: float = 10) -> str:
        """Read lines from *stream* until one contains *predicate*; return that line."""
        store = self.stdout if stream == "stdout" else self.stderr
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines[stream].get(timeout=left)
            except queue.Empty:
                break
            store.append(line)
            if predicate in line:
                return line
        raise AssertionError(f"no line with {predicate!r} in {stream}: {store}")

    def drain(self) -> None:
        """Collect whatever output is left (after the process ended)."""
        for name, store in (("stdout", self.stdout), ("stderr", self.stderr)):
            while True:
                try:
                    store.append(self._lines[name].get(timeout=0.5))
                except queue.Empty:
                    break

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture
def hello_run() -> Iterator[Running]:
    running = Running("examples/hello.py")
    yield running
    if running.process.poll() is None:
        running.stop()


def test_banner_shows_url_and_route_table(hello_run: Running) -> None:
    url = hello_run.read_until("serving on").split()[-1]
    assert url.startswith("http://127.0.0.1:")
    hello_run.read_until("Ctrl-C")
    banner = "\n".join(hello_run.stdout)
    assert "METHODS  PATH" in banner
    row = next(line for line in hello_run.stdout if "/hello/[name]" in line)
    assert row.split()[-2:] == [row.split()[-2], "hello()"]
    assert row.split()[-2].startswith("examples/hello.py:")
    assert hello_run.stop() == 0


def test_access_log_one_line_per_request(hello_run: Running) -> None:
    url = hello_run.read_until("serving on").split()[-1]
    assert requests.get(f"{url}/hello/log", timeout=5).status_code == 200
    line = hello_run.read_until("/hello/log", stream="stderr")
    # 2024-05-01 12:00:00 127.0.0.1 "GET /hello/log HTTP/1.1" 200 27 0.4ms
    date, clock, client, rest = line.split(" ", 3)
    assert time.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S")
    assert client == "127.0.0.1"
    assert rest.startswith('"GET /hello/log HTTP/1.1" 200 ')
    assert rest.rstrip().endswith("ms")
    assert hello_run.stop() == 0


def test_no_access_log() -> None:
    running = Running("examples/hello.py", "--no-access-log")
    url = running.read_until("serving on").split()[-1]
    assert requests.get(f"{url}/hello/quiet", timeout=5).status_code == 200
    assert running.stop() == 0
    running.drain()
    assert not any("/hello/quiet" in line for line in running.stderr), running.stderr


def test_debug_puts_tracebacks_in_500s(tmp_path: Path) -> None:
    target = write(
        tmp_path / "cli_debug_app.py",
        "from microroute import App, Router\n"
        "r = Router()\n"
        "@r.get('/boom')\n"
        "def boom(): raise ValueError('kaboom')\n"
        "app = App(r)\n",
    )
    running = Running(str(target), "--debug", "--no-access-log")
    url = running.read_until("serving on").split()[-1]
    response = requests.get(f"{url}/boom", timeout=5)
    assert response.status_code == 500
    assert "kaboom" in response.json()["traceback"]
    assert running.stop() == 0


def test_debug_refuses_a_network_host() -> None:
    """README: 'microroute run --debug refuses a non-loopback --host'."""
    # A process of its own: `run` monkey-patches. Refused before anything listens.
    done = subprocess.run(
        [sys.executable, "-m", "microroute", "run", "examples/hello.py", "--debug",
         "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=30, cwd=REPO, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 1
    assert "refusing to serve with debug on 0.0.0.0" in done.stderr
    assert "--unsafe-debug-on-network" in done.stderr
    assert "Traceback" not in done.stderr


# microroute run --workers ----------------------------------------------------------


def test_workers_without_gunicorn_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--workers`` is gunicorn's arbiter: without the extra, say how to install it."""
    monkeypatch.setitem(sys.modules, "gunicorn", None)  # import gunicorn fails
    monkeypatch.delitem(sys.modules, "microroute.gunicorn", raising=False)
    assert main(["run", "examples/hello.py", "--workers", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: --workers runs gunicorn's arbiter")
    assert 'pip install "microroute[gunicorn]"' in err
    assert err.count("\n") == 1


def test_workers_and_reload_do_not_mix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "examples/hello.py", "--workers", "2", "--reload"]) == 2
    assert "--reload runs one process" in capsys.readouterr().err


def test_workers_start_up_error_names_the_file(tmp_path: Path) -> None:
    """A route file that fails to import: one ``error:`` line naming it, exit 1, even
    though the app is loaded in gunicorn's workers."""
    target = write(tmp_path / "cli_broken_app.py", "import nowhere_to_be_found\n")
    done = subprocess.run(
        [sys.executable, "-m", "microroute", "run", str(target), "--workers", "2",
         "--port", "0"],
        capture_output=True, text=True, timeout=60, cwd=REPO, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors and "cli_broken_app.py" in errors[0], done.stderr
    assert "Traceback" not in done.stderr
