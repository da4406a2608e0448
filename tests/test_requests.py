"""The Request handlers receive: json, text, params, werkzeug's API, body limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def echo_json(router, make_client):
    """A client whose POST /echo answers with ``request.json``."""

    @router.post("/echo")
    def echo(request):
        return {"got": request.json}

    return make_client()


def chunked(*parts: bytes) -> Iterator[bytes]:
    """A request body sent with Transfer-Encoding: chunked (no Content-Length)."""
    yield from parts


# -- request.json -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/x-www-form-urlencoded", None]
)
def test_json_whatever_the_content_type(echo_json, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    resp = echo_json.post("/echo", data=b'{"a": [1, 2]}', headers=headers)
    assert resp.status_code == 200
    assert resp.json() == {"got": {"a": [1, 2]}}


def test_json_sent_by_the_client(echo_json):
    assert echo_json.post("/echo", json={"name": "Zoë"}).json() == {"got": {"name": "Zoë"}}


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b"{not json", b'{"a": 1', b'"\xff\xfe"', b"[" * 100_000],
    ids=["empty", "blank", "malformed", "truncated", "not-utf8", "too-deep"],
)
def test_bad_json_body_is_400(echo_json, body):
    resp = echo_json.post("/echo", data=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/json"
    message = resp.json()["error"]
    assert message.startswith("Invalid JSON body: ")
    assert len(message) > len("Invalid JSON body: ")


def test_json_from_a_chunked_body(echo_json):
    resp = echo_json.post("/echo", data=chunked(b'{"a":', b" [1, ", b"2]}"))
    assert resp.status_code == 200
    assert resp.json() == {"got": {"a": [1, 2]}}


# -- request.text -----------------------------------------------------------------


@pytest.fixture
def echo_text(router, make_client):
    @router.post("/text")
    def text(request):
        return {"text": request.text}

    return make_client()


def test_text_defaults_to_utf8(echo_text):
    resp = echo_text.post("/text", data="café ✓".encode())
    assert resp.json() == {"text": "café ✓"}


def test_text_uses_the_request_charset(echo_text):
    resp = echo_text.post(
        "/text",
        data="café".encode("latin-1"),
        headers={"Content-Type": "text/plain; charset=latin-1"},
    )
    assert resp.json() == {"text": "café"}


def test_text_of_an_empty_body(echo_text):
    assert echo_text.post("/text").json() == {"text": ""}


# -- params and werkzeug's API ----------------------------------------------------


def test_params_hold_the_path_params(router, make_client):
    @router.get("/users/[user_id]/posts/[post_id]")
    def post(request):
        return request.params

    assert make_client().get("/users/7/posts/abc").json() == {"user_id": "7", "post_id": "abc"}


def test_params_of_a_catch_all(router, make_client):
    @router.get("/docs/[...slug]")
    def docs(request):
        return request.params

    assert make_client().get("/docs/a/b/c").json() == {"slug": ["a", "b", "c"]}


def test_args_are_the_query(router, make_client):
    @router.get("/search")
    def search(request):
        return {
            "tags": request.args.getlist("tag"),
            "q": request.args.get("q"),
            "page": request.args.get("page", 1, type=int),
        }

    resp = make_client().get("/search?q=hi+there&tag=a&tag=b&page=3")
    assert resp.json() == {"tags": ["a", "b"], "q": "hi there", "page": 3}


def test_form_and_files(router, make_client):
    @router.post("/upload")
    def upload(request):
        upload = request.files["doc"]
        return {
            "title": request.form["title"],
            "name": upload.filename,
            "data": upload.read().decode(),
        }

    resp = make_client().post(
        "/upload", data={"title": "Report"}, files={"doc": ("r.txt", b"hello", "text/plain")}
    )
    assert resp.json() == {"title": "Report", "name": "r.txt", "data": "hello"}


def test_urlencoded_form(router, make_client):
    @router.post("/login")
    def login(request):
        return request.form.to_dict()

    assert make_client().post("/login", data={"user": "ann", "pw": "x y"}).json() == {
        "user": "ann",
        "pw": "x y",
    }


def test_headers_and_cookies(router, make_client):
    @router.get("/who")
    def who(request):
        return {
            "token": request.headers.get("x-token"),
            "missing": request.headers.get("X-Missing"),
            "theme": request.cookies.get("theme"),
        }

    resp = make_client().get("/who", headers={"X-Token": "t1"}, cookies={"theme": "dark"})
    assert resp.json() == {"token": "t1", "missing": None, "theme": "dark"}


# -- body size limits ---------------------------------------------------------------


@pytest.fixture
def limited(router, make_client):
    """POST /body (answers with ``request.text``) behind a 16-byte limit; records each call."""
    calls: list[str] = []

    @router.post("/body")
    def body(request):
        calls.append("called")
        return {"text": request.text}

    return make_client(max_body_size=16), calls


def test_body_at_the_limit_is_accepted(limited):
    client, _ = limited
    resp = client.post("/body", data=b"x" * 16)
    assert resp.status_code == 200
    assert resp.json() == {"text": "x" * 16}


def test_content_length_over_the_limit_is_413_before_the_handler(limited):
    client, calls = limited
    resp = client.post("/body", data=b"x" * 17)
    assert resp.status_code == 413
    assert resp.headers["Content-Type"] == "application/json"
    assert "error" in resp.json()
    assert calls == []


def test_default_limit_is_16_mib(router, make_client):
    router.post("/body")(lambda: "ran")
    resp = make_client().post("/body", data=b"x" * (16 * 1024 * 1024 + 1))
    assert resp.status_code == 413


def test_chunked_body_over_the_limit_is_413(limited):
    # No Content-Length: the limit must hold while the body is read, and the
    # handler must never see a body cut short at the limit.
    client, _ = limited
    resp = client.post("/body", data=chunked(b"x" * 10, b"y" * 10, b"z" * 10))
    assert resp.status_code == 413
    assert "error" in resp.json()


def test_chunked_json_over_the_limit_is_413(router, make_client):
    @router.post("/n")
    def number(request):
        return {"n": request.json}

    # 24 digits cut at 16 would still parse as a (wrong) number.
    resp = make_client(max_body_size=16).post("/n", data=chunked(b"123456789012", b"345678901234"))
    assert resp.status_code == 413


@pytest.mark.parametrize("length", ["-1", "abc", "1.5"])
def test_bad_content_length_is_400(limited, length):
    client, calls = limited
    resp = client.get("/body", headers={"Content-Length": length})
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/json"
    assert "Content-Length" in resp.json()["error"]
    assert calls == []


@pytest.mark.parametrize(
    ("content_type", "reader"),
    [
        ("application/x-www-form-urlencoded", "request.form"),
        ("multipart/form-data; boundary=x", "request.form and request.files"),
        ("text/plain", "request.text"),
        ("application/octet-stream", "request.get_data()"),
    ],
)
def test_bad_json_of_another_type_says_what_was_sent_and_what_reads_it(
    echo_json, content_type, reader
):
    """README: 'when the request said another Content-Type, the message says so and names
    what reads it: `request.form` for a form, which is what `curl -d` sends'."""
    resp = echo_json.post("/echo", data=b"name=Ada&age=36", headers={"Content-Type": content_type})
    assert resp.status_code == 400
    message = resp.json()["error"]
    assert message.startswith("Invalid JSON body: Expecting value: line 1 column 1 (char 0). ")
    mimetype = content_type.split(";")[0]
    assert f"The body was sent as {mimetype}" in message
    assert f"not JSON: read it with {reader}, or send Content-Type: application/json" in message
    if mimetype == "application/x-www-form-urlencoded":
        assert "(what curl -d sends)" in message


def test_bad_json_with_no_or_a_json_type_has_no_hint(echo_json):
    for headers in ({}, {"Content-Type": "application/json"}):
        message = echo_json.post("/echo", data=b"{nope", headers=headers).json()["error"]
        assert "sent as" not in message
