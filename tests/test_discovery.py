"""File discovery: an ``app/`` tree becomes routes, as in Next.js."""

from __future__ import annotations

import pytest

from microroute import App, Router, StartupError


@pytest.fixture
def discovered(tmp_path, make_tree, client_for):
    """``discovered({path: source})``: write an app/ tree, discover it, return a client."""

    def make(files):
        return client_for(App(app_dir=make_tree(tmp_path, files)))

    return make


@pytest.fixture
def startup_error(tmp_path, make_tree):
    """``startup_error({path: source})``: the message of the StartupError the app's start raises."""

    def message(files) -> str:
        with pytest.raises(StartupError) as caught:
            App(app_dir=make_tree(tmp_path, files)).check()
        return str(caught.value)

    return message


# -- folders and URLs ------------------------------------------------------------


def test_nested_folders_become_url_segments(discovered):
    client = discovered(
        {
            "app/route.py": "def GET(): return 'root'",
            "app/api/users/route.py": "def GET(): return ['ann']",
            "app/api/users/admins/route.py": "def GET(): return ['bob']",
            "app/api/posts/[id]/route.py": "def GET(id): return {'id': id}",
            "app/api/posts/[id]/comments/route.py": "def GET(params): return params",
        }
    )
    assert client.get("/").text == "root"
    assert client.get("/api/users").json() == ["ann"]
    assert client.get("/api/users/admins").json() == ["bob"]
    assert client.get("/api/posts/3").json() == {"id": "3"}
    assert client.get("/api/posts/3/comments").json() == {"id": "3"}
    assert client.get("/api").status_code == 404


def test_every_method_is_exported_by_name(discovered):
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    source = "".join(f"def {m}(request): return {{'method': request.method}}\n" for m in methods)
    source += "def HEAD(): return ('', 200, {'X-Head': '1'})\n"
    client = discovered({"app/things/route.py": source})
    for method in methods:
        assert client.request(method, "/things").json() == {"method": method}
    assert client.head("/things").headers["X-Head"] == "1"


def test_route_groups_are_left_out_of_the_url(discovered):
    client = discovered(
        {
            "app/api/(admin)/stats/route.py": "def GET(): return 'stats'",
            "app/(marketing)/about/route.py": "def GET(): return 'about'",
        }
    )
    assert client.get("/api/stats").text == "stats"
    assert client.get("/about").text == "about"
    assert client.get("/api/(admin)/stats").status_code == 404


def test_private_folders_are_never_routed(discovered):
    client = discovered(
        {
            "app/api/_lib/route.py": "def GET(): return 'private'",
            "app/_hidden/deep/route.py": "def GET(): return 'private'",
            "app/api/ok/route.py": "def GET(): return 'ok'",
        }
    )
    assert client.get("/api/_lib").status_code == 404
    assert client.get("/_hidden/deep").status_code == 404
    assert client.get("/api/ok").text == "ok"


def test_folder_names_may_contain_dots(discovered):
    client = discovered(
        {
            "app/api/data.json/route.py": "def GET(): return {'format': 'json'}",
            "app/api/data/route.py": "def GET(): return 'plain'",
            "app/robots.txt/route.py": "def GET(): return 'User-agent: *'",
        }
    )
    assert client.get("/api/data.json").json() == {"format": "json"}
    assert client.get("/api/data").text == "plain"
    assert client.get("/robots.txt").text == "User-agent: *"


def test_catch_all_folders(discovered):
    client = discovered(
        {
            "app/docs/[...slug]/route.py": "def GET(slug): return slug",
            "app/shop/[[...path]]/route.py": "def GET(context): return context.params",
        }
    )
    assert client.get("/docs/a/b/c").json() == ["a", "b", "c"]
    assert client.get("/docs").status_code == 404
    assert client.get("/shop").json() == {"path": []}
    assert client.get("/shop/x/y").json() == {"path": ["x", "y"]}


def test_route_files_import_shared_code_by_dotted_path(discovered):
    client = discovered(
        {
            "app/api/_lib/db.py": "def connect(): return 'connected'\n",
            "app/api/users/route.py": """
            from app.api._lib.db import connect

            def GET():
                return {"db": connect()}
        """,
        }
    )
    assert client.get("/api/users").json() == {"db": "connected"}


def test_shared_code_comes_from_this_tests_own_tree(tmp_path, discovered):
    # A second tree in another test must not see a cached app.* from the first.
    client = discovered(
        {
            "app/api/_lib/db.py": f"def connect(): return {str(tmp_path)!r}\n",
            "app/api/users/route.py": "from app.api._lib.db import connect\nGET = connect",
        }
    )
    assert client.get("/api/users").text == str(tmp_path)


def test_non_method_public_names_are_ignored(discovered):
    client = discovered(
        {
            "app/items/route.py": """
            import json

            LIMIT = 10

            def get():
                return "lowercase is not a handler"

            def helper(unknown_argument):
                return unknown_argument

            def POST():
                return None
        """,
        }
    )
    response = client.get("/items")
    assert response.status_code == 405
    assert response.headers["Allow"] == "OPTIONS, POST"
    assert client.post("/items").status_code == 204


def test_module_config_is_accepted(discovered):
    client = discovered(
        {
            "app/a/route.py": "dynamic = 'force-dynamic'\ndef GET(): return 'a'",
            "app/b/route.py": "revalidate = 60\ndef GET(): return 'b'",
            "app/c/route.py": "dynamic = 'force-static'\nrevalidate = False\ndef GET(): return 'c'",
        }
    )
    assert [client.get(p).text for p in ("/a", "/b", "/c")] == ["a", "b", "c"]


# -- start-up errors name the file -----------------------------------------------


@pytest.mark.parametrize(
    "config, word",
    [
        ("dynamic = 'sometimes'", "dynamic"),
        ("revalidate = -1", "revalidate"),
        ("revalidate = '60'", "revalidate"),
    ],
)
def test_bad_module_config_names_the_file(startup_error, config, word):
    message = startup_error(
        {
            "app/api/cfg/route.py": f"{config}\ndef GET(): return 'x'",
        }
    )
    assert "cfg" in message and "route.py" in message
    assert word in message


def test_two_files_on_one_url_name_both(startup_error):
    message = startup_error(
        {
            "app/(shop)/cart/route.py": "def GET(): return 'shop'",
            "app/(store)/cart/route.py": "def POST(): return 'store'",
        }
    )
    assert "/cart" in message
    assert "(shop)" in message
    assert "(store)" in message


def test_param_names_clash_across_files(startup_error):
    message = startup_error(
        {
            "app/posts/[id]/route.py": "def GET(id): return id",
            "app/(group)/posts/[slug]/route.py": "def GET(slug): return slug",
        }
    )
    assert "[id]" in message
    assert "[slug]" in message


@pytest.mark.parametrize(
    "folder",
    ["[a-b]", "[]", "x[id]", "[...rest]/more", "[request]", "[params]"],
)
def test_bad_segment_folder_names_the_file(startup_error, folder):
    message = startup_error(
        {
            f"app/api/{folder}/route.py": "def GET(): return 'x'",
        }
    )
    assert "route.py" in message
    assert folder.split("/")[0] in message


@pytest.mark.parametrize(
    "folder, source, words",
    [
        ("broken", "def GET(:\n    return 1\n", ["SyntaxError"]),
        ("crash", "raise RuntimeError('database is down')", ["database is down"]),
        ("shared", "from app.api._lib.missing import x", ["app.api._lib"]),
        ("one", "GET = 1", ["GET"]),
        ("[id]", "def GET(user_id): return user_id", ["GET", "user_id"]),
    ],
)
def test_bad_route_file_names_the_file(startup_error, folder, source, words):
    message = startup_error({f"app/api/{folder}/route.py": source})
    assert f"{folder}/route.py" in message
    for word in words:
        assert word in message


# -- App() and discovery ---------------------------------------------------------


def test_app_without_arguments_discovers_the_current_folder(
    tmp_path, make_tree, client_for, monkeypatch
):
    make_tree(tmp_path, {"app/api/hello/route.py": "def GET(): return 'hello'"})
    monkeypatch.chdir(tmp_path)
    assert client_for(App()).get("/api/hello").text == "hello"


def test_app_without_arguments_and_no_app_folder(tmp_path, monkeypatch, isolated_imports):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StartupError) as caught:
        App()
    message = str(caught.value)
    assert "app" in message
    assert "app_dir" in message


def test_missing_app_dir_is_a_startup_error(tmp_path, isolated_imports):
    with pytest.raises(StartupError, match="nowhere"):
        App(app_dir=tmp_path / "nowhere")


def test_app_dir_accepts_a_string(tmp_path, make_tree, client_for):
    app_dir = make_tree(tmp_path, {"app/x/route.py": "def GET(): return 'x'"})
    assert client_for(App(app_dir=str(app_dir))).get("/x").text == "x"


def test_decorators_and_discovery_combined(tmp_path, make_tree, client_for):
    app_dir = make_tree(
        tmp_path,
        {
            "app/api/users/route.py": "def GET(): return 'from file'",
        },
    )
    api = Router()
    api.get("/api/health")(lambda: "from decorator")
    api.post("/api/users")(lambda: ("created", 201))
    client = client_for(App(api, app_dir=app_dir))
    assert client.get("/api/users").text == "from file"
    assert client.get("/api/health").text == "from decorator"
    assert client.post("/api/users").status_code == 201


def test_decorator_and_file_declaring_the_same_method_conflict(tmp_path, make_tree):
    app_dir = make_tree(tmp_path, {"app/api/users/route.py": "def GET(): return 'file'"})
    api = Router()
    api.get("/api/users")(lambda: "decorator")
    with pytest.raises(StartupError) as caught:
        App(api, app_dir=app_dir)
    message = str(caught.value)
    assert "route.py" in message
    assert "test_discovery.py" in message
