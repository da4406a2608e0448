"""The default build id: two releases of one project tree, each loaded as a worker would."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROJECT = {
    "app/page/route.py": """
        from app._lib.db import rows
        from services.pricing import price

        def GET():
            return {"rows": rows(), "price": price()}
    """,
    "app/_lib/__init__.py": "",
    "app/_lib/db.py": "def rows():\n    return [1]\n",
    "services/__init__.py": "",
    "services/pricing.py": "def price():\n    return 10\n",
    "scripts/migrate.py": "print('run by hand, never imported')\n",
}

#: What a worker does at start-up: load the app with a shared store (the id is taken then).
LOAD = """
import sys
if len(sys.argv) > 3:  # as gunicorn -c FILE does, before it loads the app
    from gunicorn.app.base import Application
    Application.get_config_from_filename(None, sys.argv[3])
from microroute import App
from microroute.cache import RedisStore
print(App(app_dir=sys.argv[1], cache=RedisStore(sys.argv[2])).build_id)
"""


@pytest.fixture
def release(tmp_path: Path, redis_url: str):
    """``release(name, **changes)``: a copy of PROJECT at its own path; its build id."""

    def make(
        name: str,
        changes: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        gunicorn_config: str | None = None,
    ):
        root = tmp_path / name
        for relative, source in {**PROJECT, **(changes or {})}.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source), encoding="utf-8")
        environ = {k: v for k, v in os.environ.items() if k != "MICROROUTE_BUILD_ID"}
        done = subprocess.run(
            [sys.executable, "-c", LOAD, str(root / "app"), redis_url]
            + ([str(root / gunicorn_config)] if gunicorn_config else []),
            cwd=root,
            env={**environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    return make


def test_a_change_to_an_imported_helper_module_changes_the_build_id(release) -> None:
    """"else a hash of every module of the application loaded at start-up from outside
    site-packages and the standard library (route files and the helpers they import, such
    as `app/_lib/db.py` or `services/pricing.py`), the handlers' files and the microroute
    version: contents only, never paths."
    """
    first = release("v1")
    assert len(first) == 16
    assert release("v1-elsewhere") == first  # another folder, the same code
    assert release("db", {"app/_lib/db.py": "def rows():\n    return [1, 2]\n"}) != first
    assert release("pricing", {"services/pricing.py": "def price():\n    return 12\n"}) != first
    # A file no module imported at start-up is not part of the release's behaviour.
    assert release("script", {"scripts/migrate.py": "print('changed')\n"}) == first


def test_microroute_build_id_may_be_set_per_deploy(release) -> None:
    """"Set `MICROROUTE_BUILD_ID` per deploy (a commit or release name) when what decides a
    response is not all in Python modules"."""
    assert release("tagged", env={"MICROROUTE_BUILD_ID": "release-42"}) == "release-42"
    changed = {"services/pricing.py": "def price():\n    return 12\n"}
    assert release("same-tag", changed, env={"MICROROUTE_BUILD_ID": "release-42"}) == "release-42"


def test_a_gunicorn_config_file_is_not_part_of_the_build(release) -> None:
    """Workers under `gunicorn -c gunicorn.conf.py` share entries with those started without it."""
    config = {"gunicorn.conf.py": "workers = 4\n"}
    assert release("with-config", config, gunicorn_config="gunicorn.conf.py") == release("plain")
