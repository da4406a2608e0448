"""Control flow and errors, and how each renders (DESIGN.md, "Control flow")."""

from __future__ import annotations

import logging
import re

import pytest
from werkzeug.exceptions import Forbidden, MethodNotAllowed, TooManyRequests

from microroute import (
    App,
    HTTPError,
    ValidationError,
    abort,
    not_found,
    permanent_redirect,
    redirect,
)
from microroute.testing import TestClient

INTERNAL_ERROR = {"error": "Internal Server Error"}


def serve(router, make_client, raise_it, path="/x", **app_options):
    """GET ``path`` on a handler that calls ``raise_it()``; return the response."""

    def handler():
        raise_it()

    router.get(path)(handler)
    return make_client(**app_options).get(path, allow_redirects=False)


# -- control flow --------------------------------------------------------------------


def test_redirect_is_307(router, make_client):
    resp = serve(
        router, make_client, lambda: redirect("https://example.com/next", allow_external=True)
    )
    assert resp.status_code == 307
    assert resp.headers["Location"] == "https://example.com/next"


def test_permanent_redirect_is_308(router, make_client):
    resp = serve(router, make_client, lambda: permanent_redirect("/new-home"))
    assert resp.status_code == 308
    assert resp.headers["Location"] == "http://testserver/new-home"


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/login", "http://testserver/login"),
        ("edit", "http://testserver/posts/edit"),
        ("../about?x=1", "http://testserver/about?x=1"),
    ],
)
def test_redirect_resolves_relative_targets(router, make_client, target, location):
    resp = serve(router, make_client, lambda: redirect(target), path="/posts/42")
    assert resp.headers["Location"] == location


def test_redirect_is_followed_with_the_same_method(router, make_client):
    @router.post("/old")
    def old():
        redirect("/new")

    @router.post("/new")
    def new(request):
        return {"got": request.json}

    resp = make_client().post("/old", json={"a": 1})
    assert resp.status_code == 200
    assert resp.json() == {"got": {"a": 1}}


def test_not_found_is_json_404(router, make_client):
    resp = serve(router, make_client, not_found)
    assert resp.status_code == 404
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"error": "Not Found"}


def test_not_found_with_message(router, make_client):
    resp = serve(router, make_client, lambda: not_found("No such user"))
    assert resp.status_code == 404
    assert resp.json() == {"error": "No such user"}


def test_abort_with_message(router, make_client):
    resp = serve(router, make_client, lambda: abort(403, "Admins only"))
    assert resp.status_code == 403
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"error": "Admins only"}


@pytest.mark.parametrize(
    ("status", "phrase"), [(401, "Unauthorized"), (409, "Conflict"), (503, "Service Unavailable")]
)
def test_abort_without_message_uses_the_status_phrase(router, make_client, status, phrase):
    resp = serve(router, make_client, lambda: abort(status))
    assert resp.status_code == status
    assert resp.json() == {"error": phrase}


@pytest.mark.parametrize(
    ("raise_it", "status"),
    [
        (lambda: redirect("/elsewhere"), 307),
        (lambda: permanent_redirect("/elsewhere"), 308),
        (not_found, 404),
        (lambda: abort(403, "no"), 403),
    ],
    ids=["redirect", "permanent_redirect", "not_found", "abort"],
)
def test_control_flow_is_not_swallowed_by_except_exception(router, make_client, raise_it, status):
    swallowed = []

    @router.get("/x")
    def handler():
        try:
            raise_it()
        except Exception:
            swallowed.append(True)
            return {"swallowed": True}

    resp = make_client().get("/x", allow_redirects=False)
    assert resp.status_code == status
    assert swallowed == []


# -- HTTPError, ValidationError, werkzeug's exceptions ---------------------------------


def test_http_error_with_headers(router, make_client):
    resp = serve(router, make_client, _raiser(HTTPError(429, "Slow down", {"Retry-After": "30"})))
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "30"
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"error": "Slow down"}


def test_http_error_is_an_ordinary_exception(router, make_client):
    @router.get("/x")
    def handler():
        try:
            raise HTTPError(409, "taken")
        except Exception:
            return {"caught": True}

    assert make_client().get("/x").json() == {"caught": True}


def test_validation_error_is_400(router, make_client):
    resp = serve(router, make_client, _raiser(ValidationError("email is required")))
    assert resp.status_code == 400
    assert resp.json() == {"error": "email is required"}


@pytest.mark.parametrize(
    ("exc", "status"), [(Forbidden(), 403), (TooManyRequests("calm down"), 429)]
)
def test_werkzeug_exceptions_render_as_json(router, make_client, exc, status):
    resp = serve(router, make_client, _raiser(exc))
    assert resp.status_code == status
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.json() == {"error": exc.description}


def test_werkzeug_exception_keeps_its_headers(router, make_client):
    resp = serve(router, make_client, _raiser(MethodNotAllowed(valid_methods=["GET", "PUT"])))
    assert resp.status_code == 405
    assert resp.headers["Allow"] == "GET, PUT"
    assert resp.headers["Content-Type"] == "application/json"


def test_oversized_form_field_renders_as_json(router, make_client):
    @router.post("/form")
    def form(request):
        return request.form.to_dict()

    # A multipart text field over werkzeug's max_form_memory_size (500 kB).
    resp = make_client().post("/form", files={"a": (None, "x" * 600_000)})
    assert resp.status_code == 413
    assert resp.headers["Content-Type"] == "application/json"
    assert "error" in resp.json()


# -- unhandled exceptions -------------------------------------------------------------


def test_unhandled_exception_is_500_and_logged(router, make_client, caplog):
    with caplog.at_level(logging.ERROR, logger="microroute"):
        resp = serve(router, make_client, _raiser(RuntimeError("secret detail")))
    assert resp.status_code == 500
    assert resp.json() == INTERNAL_ERROR
    assert "secret detail" not in resp.text
    records = [r for r in caplog.records if r.name == "microroute" and r.exc_info]
    assert records, caplog.text
    assert "secret detail" in caplog.text
    assert "Traceback" in caplog.text


def test_debug_adds_the_traceback(router, make_client):
    resp = serve(router, make_client, _raiser(RuntimeError("secret detail")), debug=True)
    assert resp.status_code == 500
    assert resp.json()["error"] == "Internal Server Error"
    assert "Traceback" in resp.text
    assert "RuntimeError: secret detail" in resp.text


# -- app.errorhandler ------------------------------------------------------------------


class MissingUser(KeyError):
    pass


def test_errorhandler_matches_along_the_mro(router, make_client):
    router.get("/x")(_raiser(MissingUser("ann")))
    client = make_client()
    seen = []

    @client.app.errorhandler(LookupError)
    def missing(exc):
        seen.append(exc)
        return {"error": f"missing {exc.args[0]}"}, 404

    resp = client.get("/x")
    assert resp.status_code == 404
    assert resp.json() == {"error": "missing ann"}
    assert isinstance(seen[0], MissingUser)


def test_most_specific_errorhandler_wins(router, make_client):
    router.get("/x")(_raiser(MissingUser("ann")))
    client = make_client()
    client.app.errorhandler(Exception)(lambda exc: ("generic", 500))
    client.app.errorhandler(KeyError)(lambda exc: ("key", 404))
    resp = client.get("/x")
    assert (resp.status_code, resp.text) == (404, "key")


def test_errorhandler_for_a_status_catches_unmatched_paths(router, make_client):
    router.get("/x")(lambda: {})
    client = make_client()
    client.app.errorhandler(404)(lambda exc: ({"error": "nothing here", "custom": True}, 404))
    resp = client.get("/nope")
    assert resp.status_code == 404
    assert resp.json() == {"error": "nothing here", "custom": True}


def test_errorhandler_for_a_status_catches_abort(router, make_client):
    router.get("/x")(lambda: abort(403))
    client = make_client()
    client.app.errorhandler(403)(lambda exc: ("go away", 403))
    resp = client.get("/x")
    assert (resp.status_code, resp.text) == (403, "go away")


def test_failing_errorhandler_gives_plain_500(router, make_client, caplog):
    router.get("/x")(_raiser(ValueError("first")))
    client = make_client()

    @client.app.errorhandler(ValueError)
    def broken(exc):
        raise RuntimeError("handler broke")

    with caplog.at_level(logging.ERROR, logger="microroute"):
        resp = client.get("/x")
    assert resp.status_code == 500
    assert resp.json() == INTERNAL_ERROR
    assert "handler broke" in caplog.text


def _raiser(exc: BaseException):
    def raise_it():
        raise exc

    return raise_it


# -- README: redirect() and abort() raise, so they roll transactions back --------------


def readme_transaction_example() -> str:
    """The README's sqlite example, verbatim (the block that defines ``commit_first``)."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    found = [block for block in blocks if "def commit_first" in block]
    assert len(found) == 1, "README lost its transaction example"
    return found[0]


def test_readme_redirect_inside_with_conn_rolls_back(tmp_path, monkeypatch):
    """README: "Because `redirect()` and `abort()` raise, inside a `with conn:` block
    (sqlite3) or `with session.begin():` (SQLAlchemy) they roll the transaction back:
    a POST that inserts a row and then redirects inside the block leaves no row.
    Commit first, or return a response instead of raising one"."""
    import sqlite3

    monkeypatch.chdir(tmp_path)  # the example opens blog.sqlite3 in the current folder
    namespace: dict[str, object] = {}
    exec(compile(readme_transaction_example(), "README.md", "exec"), namespace)
    conn = namespace["conn"]
    assert isinstance(conn, sqlite3.Connection)
    conn.execute("CREATE TABLE posts (title TEXT)")
    client = TestClient(App(namespace["api"]))

    def rows() -> int:
        check = sqlite3.connect(tmp_path / "blog.sqlite3")  # another connection: committed only
        try:
            return int(check.execute("SELECT count(*) FROM posts").fetchone()[0])
        finally:
            check.close()

    wrong = client.post("/wrong", json={"title": "lost"}, allow_redirects=False)
    assert (wrong.status_code, wrong.headers["Location"]) == (307, "http://testserver/posts")
    assert rows() == 0  # the redirect rolled the insert back
    first = client.post("/commit-first", json={"title": "kept"}, allow_redirects=False)
    assert first.status_code == 307 and rows() == 1
    returned = client.post("/returned", json={"title": "kept too"}, allow_redirects=False)
    assert returned.status_code == 303 and rows() == 2
    conn.close()
