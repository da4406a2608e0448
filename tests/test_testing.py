"""Tests for microroute.testing.TestClient and the pytest plugin.

The apps here are raw WSGI callables on purpose: the client must work for any
WSGI app, and these tests must not depend on microroute.App.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from microroute.testing import TestClient

pytest_plugins = ["pytester"]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def echo_app(environ: Environ, start_response: StartResponse) -> list[bytes]:
    """Answer with the environ's plain values and the request body, as JSON."""
    seen = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int))}
    seen["body"] = environ["wsgi.input"].read().decode("utf-8")
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


class Tracked:
    """A response iterable that records how far it got and how often it was closed."""

    def __init__(self, *chunks: bytes, fail_at: int | None = None) -> None:
        self.chunks, self.fail_at = chunks, fail_at
        self.produced: list[bytes] = []
        self.closes = 0

    def __iter__(self) -> Iterator[bytes]:
        for i, chunk in enumerate(self.chunks):
            if i == self.fail_at:
                raise ValueError("boom while streaming")
            self.produced.append(chunk)
            yield chunk

    def close(self) -> None:
        self.closes += 1

    def app(self, environ: Environ, start_response: StartResponse) -> Tracked:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return self


@pytest.fixture
def echo() -> Iterator[TestClient]:
    with TestClient(echo_app) as client:
        yield client


def test_environ_describes_the_request(echo: TestClient) -> None:
    env = echo.post("/api/users?a=1&b=%20x", json={"a": 1}, headers={"X-Token": "t"}).json()
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/api/users"
    assert env["QUERY_STRING"] == "a=1&b=%20x"
    assert (env["SERVER_NAME"], env["SERVER_PORT"], env["HTTP_HOST"]) == (
        "testserver", "80", "testserver"
    )  # fmt: skip
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HTTP_X_TOKEN"] == "t"
    assert env["CONTENT_TYPE"] == "application/json" and "HTTP_CONTENT_TYPE" not in env
    assert env["CONTENT_LENGTH"] == "8" and "HTTP_CONTENT_LENGTH" not in env
    assert json.loads(env["body"]) == {"a": 1}
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is env["wsgi.multiprocess"] is env["wsgi.run_once"] is False


def test_path_is_decoded_as_latin1_bytes(echo: TestClient) -> None:
    env = echo.get("/files/a%2Fb/café").json()
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/files/a/b/café"
    assert env["RAW_URI"] == "/files/a%2Fb/caf%C3%A9"


def test_absolute_https_url_sets_scheme_and_port(echo: TestClient) -> None:
    env = echo.get("https://testserver/x").json()
    assert (env["wsgi.url_scheme"], env["SERVER_PORT"], env["PATH_INFO"]) == ("https", "443", "/x")
    secure = TestClient(echo_app, base_url="https://testserver")
    assert secure.get("/").json()["wsgi.url_scheme"] == "https"


@pytest.mark.parametrize("kind", ["str", "bytes", "file"])
def test_str_bytes_and_file_bodies(echo: TestClient, kind: str, tmp_path: Path) -> None:
    (tmp_path / "body").write_bytes("héllo".encode())
    with (tmp_path / "body").open("rb") as file:
        body = {"str": "héllo", "bytes": "héllo".encode(), "file": file}[kind]
        env = echo.put("/", data=body).json()
    assert env["body"] == "héllo"
    assert env["CONTENT_LENGTH"] == "6"


def test_chunked_body_has_no_length_and_is_read_lazily() -> None:
    sent: list[bytes] = []

    def body() -> Iterator[bytes]:
        for part in (b"abc", b"def"):
            sent.append(part)
            yield part

    seen: dict[str, Any] = {}

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        seen["first"] = environ["wsgi.input"].read(3)
        seen["sent_then"] = len(sent)
        seen["rest"] = environ["wsgi.input"].read()
        seen["length"] = environ.get("CONTENT_LENGTH")
        seen["terminated"] = environ.get("wsgi.input_terminated")
        start_response("204 No Content", [])
        return []

    TestClient(app).post("/upload", data=body())
    assert seen == {
        "first": b"abc", "sent_then": 1, "rest": b"def", "length": None, "terminated": True
    }  # fmt: skip


def test_status_reason_headers_and_json() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        headers = [("Content-Type", "application/json"), ("X-Tag", "a"), ("X-Tag", "b")]
        start_response("201 Created", headers)
        return [b'{"id": ', b"7}"]

    resp = TestClient(app).get("/")
    assert (resp.status_code, resp.reason) == (201, "Created")
    assert resp.headers["x-tag"] == "a, b"
    assert resp.json() == {"id": 7}
    assert resp.url == "http://testserver/"


def test_every_set_cookie_is_kept_and_sent_back() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        if environ["PATH_INFO"] == "/login":
            start_response("204 No Content", [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2")])
            return []
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ.get("HTTP_COOKIE", "").encode()]

    with TestClient(app) as client:
        login = client.post("/login")
        assert login.cookies.get_dict() == {"a": "1", "b": "2"}
        assert sorted(client.get("/me").text.split("; ")) == ["a=1", "b=2"]


def test_redirects_are_followed() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        if environ["PATH_INFO"] == "/old":
            start_response("302 Found", [("Location", "/new")])
            return [b""]
        start_response("200 OK", [])
        return [environ["PATH_INFO"].encode()]

    resp = TestClient(app).get("/old")
    assert resp.text == "/new"
    assert [r.status_code for r in resp.history] == [302]


def test_stream_yields_each_chunk_before_the_next_is_produced() -> None:
    body = Tracked(b"a", b"b", b"c")
    with TestClient(body.app) as client, client.get("/", stream=True) as resp:
        chunks = resp.iter_content(None)
        assert next(chunks) == b"a"
        assert body.produced == [b"a"]
        assert next(chunks) == b"b"
        assert body.produced == [b"a", b"b"]
        assert list(chunks) == [b"c"]
    assert body.closes == 1


def test_stream_splits_large_chunks_but_never_waits_to_fill() -> None:
    body = Tracked(b"abcde", b"f", b"g")
    with TestClient(body.app) as client:
        chunks = client.get("/", stream=True).iter_content(2)
        assert [next(chunks) for _ in range(3)] == [b"ab", b"cd", b"e"]
        assert body.produced == [b"abcde"]
        assert next(chunks) == b"f"
        assert body.produced == [b"abcde", b"f"]


def test_iter_lines_sees_each_line_as_it_comes() -> None:
    body = Tracked(b"one\n", b"two\n")
    with TestClient(body.app) as client:
        lines = client.get("/", stream=True).iter_lines()
        assert next(lines) == b"one"
        assert body.produced == [b"one\n"]
        assert list(lines) == [b"two"]


def test_close_called_once_after_full_read() -> None:
    body = Tracked(b"x", b"y")
    client = TestClient(body.app)
    resp = client.get("/")
    assert resp.content == b"xy"
    assert body.closes == 1
    resp.close()
    client.close()
    assert body.closes == 1


def test_closing_a_stream_early_runs_the_generator_finally() -> None:
    events: list[str] = []

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [])

        def gen() -> Iterator[bytes]:
            try:
                for i in range(100):
                    events.append(f"chunk {i}")
                    yield b"x"
            finally:
                events.append("finally")

        return gen()

    client = TestClient(app)
    resp = client.get("/events", stream=True)
    assert resp.raw.read(1) == b"x"
    resp.close()
    assert events == ["chunk 0", "finally"]
    # A stream the test forgot is closed with the session.
    client.get("/events", stream=True)
    client.close()
    assert events[-1] == "finally" and events.count("finally") == 2


def test_app_exceptions_propagate_after_close() -> None:
    def failing(environ: Environ, start_response: StartResponse) -> list[bytes]:
        raise KeyError("handler bug")

    with pytest.raises(KeyError, match="handler bug"):
        TestClient(failing).get("/")

    body = Tracked(b"ok", b"never", fail_at=1)
    with pytest.raises(ValueError, match="boom while streaming"):
        TestClient(body.app).get("/")
    assert body.closes == 1

    body = Tracked(b"ok", b"never", fail_at=1)
    resp = TestClient(body.app).get("/", stream=True)
    with pytest.raises(ValueError, match="boom while streaming"):
        resp.content  # noqa: B018
    assert body.closes == 1


def test_legacy_write_callable() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"returned"]

    assert TestClient(app).get("/").text == "written returned"


def test_exc_info_replaces_headers_not_yet_sent() -> None:
    def app(environ: Environ, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("X-Partial", "1")])
        try:
            raise RuntimeError("late failure")
        except RuntimeError:
            start_response("500 Internal Server Error", [("X-Error", "1")], sys.exc_info())
        yield b"error page"

    resp = TestClient(app).get("/")
    assert (resp.status_code, resp.text) == (500, "error page")
    assert "X-Partial" not in resp.headers and resp.headers["X-Error"] == "1"


def test_gzip_body_is_decoded() -> None:
    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Encoding", "gzip")])
        return [gzip.compress(b"small " * 100)]

    assert TestClient(app).get("/").content == b"small " * 100


def run_with_plugin(pytester: pytest.Pytester) -> pytest.RunResult:
    # Load the plugin explicitly whether or not the package is installed (the
    # pytest11 entry point would register it a second time under another name).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        return pytester.runpytest("-p", "microroute.pytest_plugin")


def test_client_fixture_uses_the_app_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def app():
            def wsgi(environ, start_response):
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [environ["PATH_INFO"].encode()]
            return wsgi
        """
    )
    pytester.makepyfile("def test_it(client):\n    assert client.get('/hi').text == '/hi'\n")
    run_with_plugin(pytester).assert_outcomes(passed=1)


def test_client_fixture_without_app_says_to_define_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it(client):\n    pass\n")
    result = run_with_plugin(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*`client` fixture builds a TestClient from your `app`*", "*Define one*", "*def app():*"]
    )


# -- strict: what a real server refuses, the TestClient refuses -----------------------


class Body(list[bytes]):
    """A response iterable that records its close()."""

    def __init__(self, chunks: Iterable[bytes], closed: list[bool]) -> None:
        super().__init__(chunks)
        self.closed = closed

    def close(self) -> None:
        self.closed.append(True)


def app_answering(status: str, headers: list[Any], *chunks: bytes, closed: list[bool]) -> Any:
    def app(environ: Environ, start_response: StartResponse) -> Body:
        body = Body(chunks, closed)
        try:
            start_response(status, headers)
        except BaseException:
            body.close()  # as an app must when start_response refuses its reply
            raise
        return body

    return app


@pytest.mark.parametrize(
    ("status", "headers", "chunks", "method", "message"),
    [
        ("200", [], [b"x"], "GET", "invalid WSGI status"),
        ("200 OK\r\nX-Evil: 1", [], [b"x"], "GET", "invalid WSGI status"),
        ("2000 OK", [], [b"x"], "GET", "invalid WSGI status"),
        ("200 OK", [("Bad Name", "x")], [], "GET", "must be an RFC 9110 token"),
        ("200 OK", [("X-A", "1\r\nSet-Cookie: a=b")], [], "GET", "header 'X-A'"),
        ("200 OK", [("X-A", "a\x00b")], [], "GET", "header 'X-A'"),
        ("200 OK", [("X-A", "東京")], [], "GET", "values must be latin-1"),
        ("200 OK", [("Transfer-Encoding", "chunked")], [], "GET", "hop-by-hop"),
        ("200 OK", [("Connection", "close")], [], "GET", "hop-by-hop"),
        ("200 OK", [], [b"body"], "HEAD", "allows no body"),
        ("204 No Content", [], [b"{}"], "GET", "allows no body"),
        ("304 Not Modified", [], [b"x"], "GET", "allows no body"),
        ("204 No Content", [("Content-Length", "2")], [], "GET", "must not have Content-Length"),
        ("304 Not Modified", [("Content-Length", "9")], [], "GET", "must not have Content-Length"),
        ("200 OK", [("Content-Length", "2")], [b"abc"], "GET", "allows Content-Length 2"),
        ("200 OK", [("Content-Length", "5")], [b"abc"], "GET", "Content-Length is 5"),
        ("200 OK", [("Content-Length", "1"), ("Content-Length", "1")], [b"a"], "GET", "2 times"),
    ],
)
def test_the_client_refuses_what_a_server_refuses(status, headers, chunks, method, message):
    """README: "It is as strict as a real server: a malformed status line, a header name
    or value a server would refuse (CR/LF/NUL, beyond latin-1, hop-by-hop),
    `start_response` called twice, a body on a HEAD, 204 or 304 response, or one that
    disagrees with its `Content-Length` raises `WSGIProtocolError`"; the app's iterable
    is closed all the same."""
    from microroute.testing import WSGIProtocolError

    closed: list[bool] = []
    app = app_answering(status, headers, *chunks, closed=closed)
    with pytest.raises(WSGIProtocolError, match=message):
        TestClient(app).request(method, "/")
    assert closed == [True]


def test_the_client_accepts_what_a_server_sends() -> None:
    closed: list[bool] = []
    ok = [
        ("200 OK", [("Content-Length", "3"), ("X-A", "tab\there, latin-1 é")], [b"abc"], "GET"),
        ("200 OK", [("Content-Length", "3")], [], "HEAD"),
        ("204 No Content", [], [], "GET"),
        ("304 Not Modified", [("ETag", '"x"'), ("Content-Length", "0")], [], "GET"),
        ("599 Whatever", [], [b"chunk", b"ed"], "GET"),
    ]
    for status, headers, chunks, method in ok:
        resp = TestClient(app_answering(status, headers, *chunks, closed=closed)).request(
            method, "/"
        )
        assert resp.status_code == int(status[:3])
        assert resp.content == (b"".join(chunks) if method == "GET" else b"")
    assert closed == [True] * len(ok)


def test_start_response_twice_is_refused() -> None:
    from microroute.testing import WSGIProtocolError

    def app(environ: Environ, start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        start_response("500 Internal Server Error", [])
        return []

    with pytest.raises(WSGIProtocolError, match="called twice"):
        TestClient(app).get("/")


def test_header_names_with_underscores_are_dropped_as_servers_drop_them():
    """README: "It hands the app what a server would: a header whose name has an
    underscore (`X_User`) is dropped, as nginx, gunicorn and microroute's servers drop
    it"."""
    from microroute import App, Router, headers

    api = Router()

    @api.get("/who", dynamic="force-dynamic")
    def who():
        return {"user": headers().get("X-User"), "type": headers().get("Content-Type")}

    with TestClient(App(api)) as client:
        got = client.get("/who", headers={"X_User": "admin", "Content_Type": "text/evil"})
        assert got.json() == {"user": None, "type": None}
        assert client.get("/who", headers={"X-User": "ada"}).json()["user"] == "ada"


@pytest.mark.parametrize("blocking", ["sleep", "queue"])
def test_an_event_stream_delivers_its_first_event_before_the_generator_blocks(blocking):
    """README: "an `EventStream` delivers each event before its generator blocks again
    (`time.sleep`, `queue.get`)" — with the default heartbeat too."""
    import queue
    import time

    from microroute import App, EventStream, Router

    api = Router()
    handoff: queue.Queue[str] = queue.Queue()

    @api.get("/events")
    def events():
        def gen():
            yield "first"
            if blocking == "sleep":
                time.sleep(1.5)
                yield "second"
            else:
                yield handoff.get(timeout=5)

        return EventStream(gen())

    with TestClient(App(api)) as client:
        started = time.monotonic()
        with client.get("/events", stream=True) as resp:
            lines = resp.iter_lines()
            assert next(lines) == b"data: first"
            assert time.monotonic() - started < 1.0
            handoff.put("second")
            assert [line for line in lines if line] == [b"data: second"]
