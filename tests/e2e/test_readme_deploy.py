"""README's gunicorn commands, run as written in a fresh virtualenv.

Issue 12: "`gunicorn -k gevent` as the README says fails in a fresh venv with
plain `pip install gunicorn` (`No module named 'packaging'`)". The README now
installs the ``microroute[gunicorn]`` extra; this test takes the commands from
README.md's "With gunicorn" block and runs them in a virtualenv that holds
nothing else. One substitution: ``microroute`` is installed from a copy of
this checkout's package files (it is not on a registry), and the bind address comes from
``GUNICORN_CMD_ARGS`` (gunicorn's own way), so the commands stay as written.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from servers import EXAMPLES, REPO, free_port

pytestmark = pytest.mark.e2e

INSTALL_TIMEOUT = 300
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
READY_TIMEOUT = 20


def readme_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### With gunicorn", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "README's 'With gunicorn' section has no sh block"
    return [line.split("  #")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def start(command: str, cwd: Path, venv: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # bash and gunicorn's workers: one group to stop
    )


def stop(process: subprocess.Popen[bytes]) -> str:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.stdout is not None
    return process.stdout.read().decode(errors="replace")


def wait_for(url: str, process: subprocess.Popen[bytes]) -> requests.Response:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}:\n{stop(process)}")
        try:
            return requests.get(url, timeout=2)
        except requests.RequestException:
            time.sleep(0.1)
    pytest.fail(f"no answer from {url}:\n{stop(process)}")


def test_readme_gunicorn_commands_work_in_a_fresh_venv(tmp_path: Path) -> None:
    """README: ``pip install "microroute[gunicorn]"`` then ``gunicorn -k
    microroute.gunicorn.Worker -w 4 hello:app``, ``gunicorn -k gevent hello:app`` and
    ``MICROROUTE_APP=app gunicorn -k microroute.gunicorn.Worker microroute.wsgi:app``,
    exactly as written."""
    install, *serve = readme_commands()
    assert install == 'pip install "microroute[gunicorn]"'
    assert serve == [
        "gunicorn -k microroute.gunicorn.Worker -w 4 hello:app",
        "gunicorn -k gevent hello:app",
        "MICROROUTE_APP=app gunicorn -k microroute.gunicorn.Worker microroute.wsgi:app",
    ]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # The package's own files only, copied: building in this checkout would
    # leave build/ behind, and a stale build/ can hide a missing file.
    source = tmp_path / "source"
    shutil.copytree(REPO / "microroute", source / "microroute", ignore=IGNORED)
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    local = install.replace('"microroute[gunicorn]"', f'"{source}[gunicorn]"')
    done = subprocess.run(
        ["bash", "-c", local],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    checks = [
        (serve[0], EXAMPLES, "/hello/Ada", {"message": "Hello, Ada!"}),
        (serve[1], EXAMPLES, "/hello/Ada", {"message": "Hello, Ada!"}),
        (serve[2], EXAMPLES / "blog", "/api/posts", []),
    ]
    for command, cwd, path, expected in checks:
        port = free_port()
        server_env = {
            **env,
            "GUNICORN_CMD_ARGS": f"--bind 127.0.0.1:{port}",
            "BLOG_DB": str(tmp_path / "blog.sqlite3"),
        }
        process = start(command, cwd, venv, server_env)
        try:
            resp = wait_for(f"http://127.0.0.1:{port}{path}", process)
            assert resp.status_code == 200, resp.text
            assert resp.json() == expected
        finally:
            output = stop(process)
        assert "No module named" not in output, output
        # The installed copy served it, not this checkout.
        version = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import microroute; print(microroute.__file__)"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert str(venv) in version.stdout, version
