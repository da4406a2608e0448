"""Start-up mistakes that passed silently or with no hint: each one line naming the file.

Also where a discovered app's options live (``microroute.toml``), where a
relative ``app_dir`` points, and reason phrases that no longer depend on who
built the reply.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from microroute import App, Response, StartupError, route
from microroute.project import discovered_app, read_options
from microroute.testing import TestClient

REPO = Path(__file__).resolve().parent.parent


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, source in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return root


def microroute(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m microroute ARGS`` in *cwd*, to its end."""
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "microroute", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- def get(): in a route.py --------------------------------------------------------------


def test_lowercase_or_capitalised_method_names_are_named_at_start_up(tmp_path):
    write(
        tmp_path,
        {
            "app/users/route.py": """
                def get():
                    return []
                def Post():
                    return {}
            """,
            "app/ok/route.py": "def GET(): return 'ok'\ndef _get(): return 1\n",
        },
    )
    done = microroute("routes", ".", cwd=tmp_path)
    assert done.returncode == 0
    warnings = [line for line in done.stderr.splitlines() if "is not a handler" in line]
    assert len(warnings) == 2, done.stderr
    assert any(
        w.startswith("app/users/route.py: get() ") and "rename it GET" in w for w in warnings
    )
    assert any("app/users/route.py: Post() " in w and "rename it POST" in w for w in warnings)
    assert "/ok" in done.stdout


def test_an_imported_function_named_like_a_method_is_not_warned_about(tmp_path, make_tree, caplog):
    app_dir = make_tree(
        tmp_path, {"app/x/route.py": "from json import loads as get\ndef GET(): return 1"}
    )
    with caplog.at_level(logging.WARNING, "microroute"):
        App(app_dir=app_dir)
    assert not [r for r in caplog.records if "is not a handler" in r.getMessage()]


# -- FastAPI's /users/{id} --------------------------------------------------------------------


def test_a_fastapi_style_path_says_how_paths_write_parameters(router):
    with pytest.raises(ValueError) as caught:

        @router.get("/users/{id}/posts")
        def posts(id):
            return []

    message = str(caught.value)
    assert "test_startup_hints.py" in message and "posts()" in message
    assert "'{id}'" in message and "[id]" in message


def test_a_folder_named_like_a_fastapi_parameter_too(tmp_path, make_tree):
    app_dir = make_tree(tmp_path, {"app/users/{id}/route.py": "def GET(id): return id"})
    with pytest.raises(StartupError, match=r"app/users/\{id\}/route.py.*\[id\]"):
        App(app_dir=app_dir)


# -- app.py beside app/ -----------------------------------------------------------------------


def test_an_app_py_beside_app_is_named_as_the_cause(tmp_path):
    write(
        tmp_path,
        {
            "app.py": "from microroute import App\napp = App(app_dir='app')\n",
            "app/_lib/db.py": "ROWS = [1]\n",
            "app/rows/route.py": "from app._lib.db import ROWS\ndef GET(): return ROWS\n",
        },
    )
    for target in ("app.py", "."):
        done = microroute("routes", target, cwd=tmp_path)
        assert done.returncode == 1
        (line,) = done.stderr.splitlines()
        assert line.startswith("error: app/rows/route.py: import failed")
        assert "'app' is not a package" in line
        assert "app.py takes the name 'app'" in line and "rename it" in line


# -- a Router where an app is expected -------------------------------------------------------


def test_a_router_served_as_the_app_says_wrap_it(tmp_path):
    write(
        tmp_path,
        {
            "hello.py": """
                from microroute import route
                @route.get("/")
                def hi(): return "hi"
                app = route
            """
        },
    )
    done = microroute("routes", "hello.py", cwd=tmp_path)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert "'app' is a Router" in line and "wrap it: `app = App(router)`" in line
    done = microroute("routes", "hello:route", cwd=tmp_path)
    assert "'route' is a Router" in done.stderr and "wrap it" in done.stderr


def test_the_test_client_says_wrap_it_too():
    with pytest.raises(TypeError, match=r"wrap it: TestClient\(App\(route\)\)"):
        TestClient(route)  # type: ignore[arg-type]


# -- a discovered app's options: microroute.toml ----------------------------------------------


def test_microroute_toml_beside_app_holds_the_apps_options(tmp_path, isolated_imports):
    write(
        tmp_path,
        {
            "app/items/route.py": "def GET(): return [1]\n",
            "microroute.toml": """
                # App(...) options of the discovered app
                docs = "/docs"
                static_by_default = false
                max_body_size = 1024
                trust_proxy = 1
            """,
        },
    )
    app = discovered_app(tmp_path / "app")
    client = TestClient(app)
    assert client.get("/openapi.json").json()["paths"]["/items"]["get"]
    assert client.get("/docs").status_code == 200
    assert "X-Microroute-Cache" not in client.get("/items").headers  # static_by_default
    assert client.post("/items", data=b"x" * 2000).status_code == 413
    assert client.get("/items", headers={"X-Forwarded-Proto": "https"}).status_code == 200
    done = microroute("routes", ".", cwd=tmp_path)
    assert "/docs" in done.stdout and "static_by_default=False" in done.stdout


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("dcos = '/docs'", "unknown option 'dcos'; App() takes"),
        ("docs = 1", "option 'docs' must be str, got int 1"),
        ("max_body_size = true", "option 'max_body_size' must be int, got bool"),
        ("app_dir = 'elsewhere'", "unknown option 'app_dir'"),
        ("docs = ", "not a TOML file"),
    ],
)
def test_a_bad_option_names_the_file_and_the_key(tmp_path, text, named):
    path = write(tmp_path, {"microroute.toml": text}) / "microroute.toml"
    with pytest.raises(StartupError) as caught:
        read_options(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


def test_microroute_wsgi_reads_it_too(tmp_path):
    write(
        tmp_path,
        {"site/app/x/route.py": "def GET(): return 1\n", "site/microroute.toml": "docs = '/d'\n"},
    )
    code = (
        "from microroute.wsgi import app\n"
        "from microroute.testing import TestClient\n"
        "print(TestClient(app).get('/d').status_code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path / "site",
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "200", done.stderr


# -- App(app_dir="app") is beside the file that says it -----------------------------------------


def test_a_relative_app_dir_is_beside_the_file_that_names_it(tmp_path):
    write(
        tmp_path,
        {
            "project/main.py": "from microroute import App\napp = App(app_dir='app')\n",
            "project/app/ping/route.py": "def GET(): return 'pong'\n",
        },
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = microroute("routes", str(tmp_path / "project" / "main.py"), cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert "/ping" in done.stdout


# -- reason phrases --------------------------------------------------------------------------


def test_reason_phrases_are_the_same_whoever_built_the_reply(router):
    router.get("/none")(lambda: None)
    router.get("/response")(lambda: Response(status=204))
    router.get("/teapot")(lambda: Response("short and stout", status=418))
    router.get("/own")(lambda: Response("x", status="299 Mine"))
    router.get("/tuple")(lambda: ("made", 201))

    router.get("/accepted")(lambda: "later")

    def through_middleware(request, call_next):
        response = call_next(request)
        if request.path == "/accepted":
            response.status_code = 202  # werkzeug writes "202 ACCEPTED"
        return response

    plain, wrapped = App(router), App(router)
    wrapped.use(through_middleware)
    for app in (plain, wrapped):
        client = TestClient(app)
        assert client.get("/none").reason == "No Content"
        assert client.get("/response").reason == "No Content"
        assert client.get("/teapot").reason == "I'm a Teapot"
        assert client.get("/tuple").reason == "Created"
        assert client.get("/own").reason == "Mine"  # chosen by the app: kept
        assert client.get("/missing").reason == "Not Found"
    assert TestClient(wrapped).get("/accepted").reason == "Accepted"
