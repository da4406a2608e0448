"""Warming a build: ``app.warm()`` and ``microroute warm`` build static entries before traffic.

The CLI runs as a real subprocess against a real redis-server; a second app
on the same store and build id then answers HIT without running a handler.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
from support import CACHE

from microroute import App, Router, cookies
from microroute.testing import TestClient

REPO = Path(__file__).resolve().parents[1]

ROUTE_FILES = {
    "app/about/route.py": """
        from counting import count

        def GET():
            return {"page": "about", "run": count("about")}
    """,
    "app/posts/[id]/route.py": """
        from counting import count

        tags = ["posts"]

        def generate_static_params():
            return [{"id": "1"}, {"id": "2"}]

        def GET(id: str):
            return {"id": id, "run": count("post-" + id)}
    """,
    "app/docs/[...slug]/route.py": """
        def generate_static_params():
            return [{"slug": ["intro", "café"]}]

        def GET(slug: list[str]):
            return {"slug": slug}
    """,
    "app/me/route.py": """
        from microroute import cookies

        def GET():
            return {"theme": cookies().get("theme")}
    """,
    "counting.py": """
        import os

        import redis

        _counter = redis.Redis.from_url(os.environ["WARM_REDIS_URL"])

        def count(name):
            return int(_counter.incr("runs:" + name))
    """,
    "serve.py": """
        import os
        from pathlib import Path

        from microroute import App
        from microroute.cache import RedisStore

        app = App(app_dir=Path(__file__).parent / "app",
                  cache=RedisStore(os.environ["WARM_REDIS_URL"], timeout=2))
    """,
}


@pytest.fixture
def project(tmp_path: Path, make_tree: Any, redis_url: str, monkeypatch) -> Path:
    make_tree(tmp_path, {name: textwrap.dedent(text) for name, text in ROUTE_FILES.items()})
    monkeypatch.setenv("WARM_REDIS_URL", redis_url)
    monkeypatch.setenv("MICROROUTE_BUILD_ID", "release-7")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def warm_command(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(project)])}
    return subprocess.run(
        [sys.executable, "-m", "microroute", "warm", str(project / "serve.py"), *args],
        cwd=project, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_microroute_warm_builds_the_static_entries_before_traffic(project: Path, redis_url):
    paths = project / "hot-paths.txt"
    paths.write_text("# the hottest pages\n/posts/3\n/posts/1   # listed twice\n/nowhere\n")
    done = warm_command(project, "--paths", str(paths))
    assert done.returncode == 1, done.stderr  # /nowhere matched no route
    lines = done.stdout.splitlines()
    assert lines[0] == "warming build release-7"
    outcomes = {line.split()[-1]: " ".join(line.split()[:-1]) for line in lines[1:]}
    assert outcomes == {
        "/about": "built",
        "/posts/1": "built",
        "/posts/2": "built",
        "/posts/3": "built",  # from --paths
        "/docs/intro/café": "built",  # a catch-all from generate_static_params
        "/me": "dynamic: calls cookies()",  # only a build can tell: nothing stored
        "/nowhere": "no route",
    }

    # The servers of this release: every warmed path is a HIT, no handler runs.
    import serve  # type: ignore[import-not-found]

    client = TestClient(serve.app)
    for path in ("/about", "/posts/1", "/posts/3", "/docs/intro/café"):
        assert client.get(path).headers[CACHE] == "HIT", path
    with redis.Redis.from_url(redis_url) as raw:
        assert int(raw.get("runs:post-1")) == 1

    again = warm_command(project)
    assert again.returncode == 0, again.stderr
    assert {line.split()[0] for line in again.stdout.splitlines()[1:]} == {"fresh", "dynamic:"}


def test_app_warm_reports_what_it_did_and_warns_without_a_shared_store(calls: Counter[str]):
    api = Router()

    @api.get("/about")
    def about() -> dict[str, int]:
        calls["about"] += 1
        return {"run": calls["about"]}

    @api.get("/me")
    def me() -> dict[str, Any]:
        return {"theme": cookies().get("theme")}

    @api.get("/teapot")
    def teapot() -> tuple[dict[str, str], int]:
        return {"error": "short and stout"}, 418

    app = App(api)
    assert app.warm(["/me", "/teapot", "/about"]) == [
        ("/about", "built"),
        ("/me", "dynamic: calls cookies()"),
        ("/teapot", "not stored"),
    ]
    assert TestClient(app).get("/about").headers[CACHE] == "HIT"
    assert calls["about"] == 1
    assert App(api, cache=False).warm(["/about"]) == [("/about", "cache off")]


def test_warm_says_when_the_cache_is_in_process_memory_or_off(tmp_path: Path):
    (tmp_path / "memory.py").write_text(
        "from microroute import App, Router\napi = Router()\n"
        "@api.get('/a')\ndef a():\n    return 'a'\napp = App(api)\n"
        "off = App(api, cache=False)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = [sys.executable, "-m", "microroute", "warm"]
    memory = subprocess.run([*run, "memory.py"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert memory.returncode == 0
    assert "warning: the app keeps its cache in process memory" in memory.stderr
    off = subprocess.run([*run, "memory:off"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert (off.returncode, off.stderr) == (1, "error: the app's cache is off (App(cache=False)"
                                            " or MICROROUTE_CACHE=0)\n")  # fmt: skip
