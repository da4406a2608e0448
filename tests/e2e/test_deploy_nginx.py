"""The proof (issue 21): nginx in front, workers restarting under load, not one failed request.

Debian's nginx runs as its own process on a free 127.0.0.1 port with README's
"Behind nginx" configuration, taken from README as written (only the two
addresses changed), in front of ``gunicorn -k microroute.gunicorn.Worker -w 2
--max-requests 400`` and of ``microroute run --workers 2`` (the same, through
``GUNICORN_CMD_ARGS``). Three kinds of client (a quick GET, a 50 ms GET, a
JSON POST) keep nginx's upstream keep-alive pool busy while the workers are
reloaded twice with SIGHUP, and ``--max-requests`` restarts them all along:
every request must get a 200. Before the fix, most got a 502 ("upstream
prematurely closed connection", "connection reset by peer").

``MICROROUTE_DEPLOY_SECONDS`` (default 5) is the load's length for each
server, and ``MICROROUTE_DEPLOY_RELOADS`` (default 2) the SIGHUP reloads spread
over it; ``-s`` prints the counts. The long run::

    MICROROUTE_DEPLOY_SECONDS=120 MICROROUTE_DEPLOY_RELOADS=20 \
        .venv/bin/python -m pytest tests/e2e/test_deploy_nginx.py -s
 No nginx is a failure naming the package
to install, as a missing redis-server is.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import DEPLOY, REPO, command, free_port, subprocess_env
from support import stop_process

pytestmark = pytest.mark.e2e

SECONDS = float(os.environ.get("MICROROUTE_DEPLOY_SECONDS", "5"))
RELOADS = int(os.environ.get("MICROROUTE_DEPLOY_RELOADS", "2"))
CLIENTS_PER_KIND = 3
READY_TIMEOUT = 20.0
JSON_BODY = json.dumps({"user": "ada", "n": 1}).encode()
#: What both servers run with: workers that restart every few hundred requests.
MAX_REQUESTS = ["--max-requests", "400", "--max-requests-jitter", "100"]


def readme_nginx() -> str:
    """README's "Behind nginx" configuration block, as written."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Behind nginx", 1)[1]
    block = re.search(r"```nginx\n(.*?)```", section, re.S)
    assert block is not None, "README's 'Behind nginx' section has no nginx block"
    return block.group(1)


def nginx_binary() -> str:
    found = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if found is None:
        pytest.fail("nginx is not installed: apt-get install nginx (.ci/run does)")
    return found


def nginx_config(prefix: Path, front: int, upstream: int) -> Path:
    snippet = readme_nginx()
    assert "server 127.0.0.1:8000;" in snippet and "listen 80;" in snippet
    snippet = snippet.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};")
    snippet = snippet.replace("listen 80;", f"listen 127.0.0.1:{front};")
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config = prefix / "nginx.conf"
    config.write_text(
        f"worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n    access_log off;\n{temp}\n{snippet}\n}}\n"
    )
    return config


def ask(port: int, conn: http.client.HTTPConnection | None, kind: str) -> tuple[int, bool]:
    """One request of *kind* on *conn*: (status, whether the connection is spent)."""
    assert conn is not None
    if kind == "post":
        headers = {"Content-Type": "application/json"}
        conn.request("POST", "/json", body=JSON_BODY, headers=headers)
    else:
        conn.request("GET", "/quick" if kind == "quick" else "/slow")
    response = conn.getresponse()
    body = response.read()
    if response.status == 200 and kind == "post":
        assert json.loads(body) == {"user": "ada", "n": 1}, body
    return response.status, response.will_close


def load(port: int, seconds: float, counts: Counter[str], lock: threading.Lock) -> None:
    """Keep-alive clients of three kinds through nginx for *seconds*; count every outcome."""
    stop_at = time.monotonic() + seconds

    def client(kind: str) -> None:
        mine: Counter[str] = Counter()
        conn: http.client.HTTPConnection | None = None
        while time.monotonic() < stop_at:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                status, spent = ask(port, conn, kind)
                mine[f"{kind} {status}"] += 1
            except (OSError, http.client.HTTPException) as exc:
                mine[f"{kind} {type(exc).__name__}"] += 1
                spent = True
            if spent:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            counts.update(mine)

    threads = [
        threading.Thread(target=client, args=(kind,))
        for kind in ("quick", "slow", "post")
        for _ in range(CLIENTS_PER_KIND)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/quick")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"nothing answers on {port}:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def nginx_in_front(tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    """nginx on a free port, proxying to a free upstream port: (front, upstream, its folder)."""
    binary = nginx_binary()
    front, upstream = free_port(), free_port()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    config = nginx_config(prefix, front, upstream)
    process = subprocess.Popen(
        [binary, "-c", str(config), "-p", str(prefix), "-e", str(prefix / "error.log"),
         "-g", "daemon off;"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield front, upstream, prefix
    finally:
        stop_process(process)  # nginx: SIGTERM is its fast stop, by PID


@pytest.mark.parametrize("server", ["gunicorn-worker", "microroute-run-workers"])
def test_workers_restarting_behind_nginx_fail_no_request(
    server: str,
    nginx_in_front: tuple[int, int, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    front, upstream, prefix = nginx_in_front
    env = {}
    if server == "gunicorn-worker":
        argv, cwd = command(
            "gunicorn-microroute", DEPLOY, upstream, workers=2,
            args=[*MAX_REQUESTS, "--keep-alive", "75"],
        )  # fmt: skip
    else:
        argv, cwd = command("microroute", DEPLOY, upstream, args=["--workers", "2"])
        env["GUNICORN_CMD_ARGS"] = " ".join(MAX_REQUESTS)
    log = tmp_path / f"{server}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, cwd=cwd, env=subprocess_env(env), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(upstream, process, log)
        wait_for(front, process, log)
        counts: Counter[str] = Counter()
        lock = threading.Lock()
        loader = threading.Thread(target=load, args=(front, SECONDS, counts, lock))
        loader.start()
        for _ in range(RELOADS):  # spread over the load, the last well before its end
            time.sleep(SECONDS / (RELOADS + 1))
            process.send_signal(signal.SIGHUP)
        loader.join()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text(errors="replace")[-3000:]
    finally:
        stop_process(process)
    output = log.read_text(errors="replace")
    errors = (prefix / "error.log").read_text(errors="replace")
    failed = {key: n for key, n in counts.items() if not key.endswith(" 200")}
    total = sum(counts.values())
    restarts = output.count("Autorestarting worker")
    with capsys.disabled():
        print(
            f"\nbehind nginx, {server}, {SECONDS:g} s, {RELOADS} SIGHUP reloads, {restarts}"
            f" --max-requests restarts: {total} requests, {sum(failed.values())} failed"
            f" {dict(sorted(counts.items()))}"
        )
    assert output.count("Hang up") >= RELOADS, output[-2000:]  # every reload happened
    assert restarts >= 2, output[-2000:]  # and workers rotated under the load
    assert total > 500, counts
    upstream_errors = [line for line in errors.splitlines() if "upstream" in line]
    assert not failed, f"{failed}\nnginx: {upstream_errors[:10]}"
