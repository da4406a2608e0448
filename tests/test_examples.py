"""The examples work as their docs say, in process through the TestClient."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from microroute.targets import load_app
from microroute.testing import TestClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def hello() -> Iterator[TestClient]:
    # load_app imports hello.py once per process: its routes live on the shared
    # module-level `route`, so a second import would register them twice.
    with TestClient(load_app(str(EXAMPLES / "hello.py"))) as client:
        yield client


@pytest.fixture
def isolated_app_package() -> Iterator[None]:
    """Hide other tests' ``app`` package from the blog, and the blog's from them.

    Every discovered project names its package ``app``, and route files import
    ``app.api._lib.db``: a stale ``sys.modules`` entry would resolve to
    another project's files.
    """

    def is_app(name: str) -> bool:
        return name == "app" or name.startswith("app.")

    saved_path = list(sys.path)
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if is_app(name)}
    yield
    for name in [name for name in sys.modules if is_app(name)]:
        del sys.modules[name]
    sys.modules.update(saved)
    sys.path[:] = saved_path


@pytest.fixture
def blog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_app_package: None
) -> Iterator[TestClient]:
    monkeypatch.setenv("BLOG_DB", str(tmp_path / "blog.sqlite3"))
    with TestClient(load_app(str(EXAMPLES / "blog"))) as client:
        yield client


# hello.py ----------------------------------------------------------------------


def test_hello_greets_by_path_param(hello: TestClient) -> None:
    response = hello.get("/hello/Ada")
    assert response.status_code == 200
    assert response.json() == {"message": "Hello, Ada!"}


def test_hello_index_lists_routes(hello: TestClient) -> None:
    assert "/echo" in hello.get("/").json()["routes"]


def test_hello_echo_returns_the_json_body_with_201(hello: TestClient) -> None:
    response = hello.post("/echo", data='{"ping": [1, 2]}')
    assert response.status_code == 201
    assert response.json() == {"ping": [1, 2]}


def test_hello_echo_rejects_malformed_json(hello: TestClient) -> None:
    response = hello.post("/echo", data="{nope")
    assert response.status_code == 400
    assert response.json()["error"].startswith("Invalid JSON body")


def test_hello_count_streams_lines(hello: TestClient) -> None:
    response = hello.get("/count/3", stream=True)
    assert response.status_code == 200
    assert list(response.iter_lines()) == [b"1", b"2", b"3"]


def test_hello_count_validates_before_streaming(hello: TestClient) -> None:
    response = hello.get("/count/many")
    assert response.status_code == 400
    assert response.json() == {"error": "n must be a whole number"}


def test_hello_unknown_path_is_json_404(hello: TestClient) -> None:
    response = hello.get("/nope")
    assert response.status_code == 404
    assert "error" in response.json()


# blog/ -------------------------------------------------------------------------


def test_blog_starts_empty_and_healthy(blog: TestClient) -> None:
    assert blog.get("/api/posts").json() == []
    assert blog.get("/api/health").json() == {"status": "ok"}


def test_blog_crud(blog: TestClient) -> None:
    created = blog.post("/api/posts", json={"title": "  Hello  ", "body": "First"})
    assert created.status_code == 201
    post = created.json()
    assert post["title"] == "Hello"
    assert post["body"] == "First"
    assert post["published"] is False
    assert created.headers["Location"] == f"/api/posts/{post['id']}"
    url = f"/api/posts/{post['id']}"

    assert blog.get(url).json() == post
    assert blog.get("/api/posts").json() == [post]

    patched = blog.patch(url, json={"published": True})
    assert patched.status_code == 200
    assert patched.json()["published"] is True
    assert patched.json()["title"] == "Hello"
    assert blog.get("/api/posts?published=true").json() == [patched.json()]
    assert blog.get("/api/posts?published=false").json() == []

    replaced = blog.put(url, json={"title": "Replaced"})
    assert replaced.status_code == 200
    assert replaced.json()["title"] == "Replaced"
    assert replaced.json()["body"] == ""  # PUT replaces: absent fields take defaults
    assert replaced.json()["published"] is False

    deleted = blog.delete(url)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert blog.get(url).status_code == 404
    assert blog.get("/api/posts").json() == []


def test_blog_posts_get_distinct_ids(blog: TestClient) -> None:
    ids = [blog.post("/api/posts", json={"title": f"t{i}"}).json()["id"] for i in range(3)]
    assert len(set(ids)) == 3
    assert [p["title"] for p in blog.get("/api/posts").json()] == ["t0", "t1", "t2"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "title is required and must be a non-empty string"),
        ({"title": ""}, "title is required and must be a non-empty string"),
        ({"title": 3}, "title is required and must be a non-empty string"),
        ({"title": "x" * 201}, "title must be at most 200 characters"),
        ({"title": "ok", "body": 1}, "body must be a string"),
        ({"title": "ok", "published": "yes"}, "published must be true or false"),
        ({"title": "ok", "author": "me"}, "Unknown field(s): author"),
        ([1, 2], "Expected a JSON object"),
    ],
)
def test_blog_rejects_bad_posts_with_400(blog: TestClient, body: object, message: str) -> None:
    response = blog.post("/api/posts", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert blog.get("/api/posts").json() == []


def test_blog_rejects_malformed_json(blog: TestClient) -> None:
    response = blog.post("/api/posts", data="not json")
    assert response.status_code == 400
    assert response.json()["error"].startswith("Invalid JSON body")


def test_blog_patch_validates_only_given_fields(blog: TestClient) -> None:
    url = f"/api/posts/{blog.post('/api/posts', json={'title': 'a'}).json()['id']}"
    assert blog.patch(url, json={"body": "b"}).json()["title"] == "a"
    response = blog.patch(url, json={"title": ""})
    assert response.status_code == 400
    assert "title" in response.json()["error"]


def test_blog_bad_published_filter_is_400(blog: TestClient) -> None:
    response = blog.get("/api/posts?published=maybe")
    assert response.status_code == 400
    assert response.json() == {"error": "published must be true or false"}


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
def test_blog_missing_post_is_404(blog: TestClient, method: str) -> None:
    body = {"title": "x"} if method in ("PUT", "PATCH") else None
    response = blog.request(method, "/api/posts/999", json=body)
    assert response.status_code == 404
    assert response.json() == {"error": "No post 999"}


def test_blog_non_numeric_id_is_404(blog: TestClient) -> None:
    response = blog.get("/api/posts/abc")
    assert response.status_code == 404
    assert "error" in response.json()


def test_blog_collection_is_never_cached(blog: TestClient) -> None:
    # GET /api/posts shares its route with POST, so it is dynamic.
    assert blog.get("/api/posts").json() == []
    blog.post("/api/posts", json={"title": "new"})
    response = blog.get("/api/posts")
    assert len(response.json()) == 1
    assert "X-Microroute-Cache" not in response.headers


def test_blog_uses_the_database_named_by_blog_db(blog: TestClient, tmp_path: Path) -> None:
    blog.post("/api/posts", json={"title": "stored"})
    assert (tmp_path / "blog.sqlite3").is_file()
