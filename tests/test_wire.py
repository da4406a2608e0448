"""Issue 12: the app is right on the wire, whoever made the reply.

Each test here is a regression test for one bullet of issue 12, run through the
strict TestClient (which refuses what gunicorn or pywsgi refuses). The same
behaviours are checked on real servers in ``tests/e2e/test_wire_servers.py``
and, request by request, in ``tests/e2e/test_differential.py``.
"""

from __future__ import annotations

import contextvars
import logging
import math
import subprocess
import sys
import textwrap
from enum import Enum

import gevent
import pytest
import requests

from microroute import (
    App,
    HTTPError,
    Request,
    Response,
    Router,
    StartupError,
    abort,
    cookies,
    cors,
    redirect,
)
from microroute.testing import TestClient

# -- no body on HEAD, 204, 304 -----------------------------------------------------


def test_head_has_no_body_on_404_405_and_a_head_handler(router, make_client):
    """README: "No `HEAD` response has a body, a 404, a 405 or a route's own `HEAD`
    handler included." (issue 12: HEAD answers desynchronised keep-alive connections)"""
    router.post("/only-post")(lambda: {"ok": True})
    router.head("/own")(lambda: {"would": "be a body"})
    client = make_client()
    missing = client.head("/nope")
    assert (missing.status_code, missing.content) == (404, b"")
    assert missing.headers["Content-Type"] == "application/json"
    wrong = client.head("/only-post")
    assert (wrong.status_code, wrong.content, wrong.headers["Allow"]) == (405, b"", "OPTIONS, POST")
    own = client.head("/own")
    assert (own.status_code, own.content) == (200, b"")
    # GET's Content-Length is kept: it describes the body a GET would get.
    assert own.headers["Content-Length"] == str(len(b'{"would":"be a body"}'))


@pytest.mark.parametrize("middleware", [False, True])
def test_head_on_a_stream_answers_gets_headers_without_a_length(router, middleware):
    """README: "`HEAD` on a streamed route answers GET's headers and no body." (no
    ``Content-Length: 0`` lie where GET is chunked)"""
    closed = []

    @router.get("/stream")
    def stream():
        try:
            yield "a"
            yield "b"
        finally:
            closed.append(True)

    app = App(router)
    if middleware:  # the reply then goes through a werkzeug Response and back
        app.use(lambda request, call_next: call_next(request))
    client = TestClient(app)
    get = client.get("/stream")
    head = client.head("/stream")
    assert (head.status_code, head.content) == (200, b"")
    assert "Content-Length" not in head.headers and "Content-Length" not in get.headers
    # Each response has its own request id; every other header is GET's.
    assert head.headers.pop("X-Request-ID") != get.headers.pop("X-Request-ID")
    assert dict(head.headers) == dict(get.headers)
    assert closed == [True, True]


def test_204_drops_the_body_and_its_length(router, make_client):
    """README: "A 204 or 304 has no body on the wire whatever the handler returned:
    `return {"deleted": id}, 204` sends a bare 204." (it was a 500 on pywsgi)"""
    router.delete("/items/[id]")(lambda id: ({"deleted": id}, 204))
    resp = make_client().delete("/items/7")
    assert (resp.status_code, resp.content) == (204, b"")
    assert "Content-Length" not in resp.headers and "Content-Type" not in resp.headers


def test_304_from_a_handler_has_no_body_and_no_length(router, make_client):
    """A 304 with a Content-Length is a 500 on pywsgi (``microroute run``)."""
    router.get("/etag")(lambda: ("unchanged", 304, {"ETag": '"x"'}))
    resp = make_client().get("/etag")
    assert (resp.status_code, resp.content, resp.headers["ETag"]) == (304, b"", '"x"')
    assert "Content-Length" not in resp.headers


# -- non-ASCII ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/users/東京", "http://testserver/users/%E6%9D%B1%E4%BA%AC"),
        ("/users/zoë", "http://testserver/users/zo%C3%AB"),
        ("/users/zoë?q=é#top", "http://testserver/users/zo%C3%AB?q=%C3%A9#top"),
        ("/already%20quoted", "http://testserver/already%20quoted"),
    ],
)
def test_redirect_to_an_iri_is_sent_as_a_uri(router, make_client, target, location):
    """README: "A `redirect()` target may be any IRI (`redirect("/users/東京")`): the
    `Location` header carries it percent-encoded, by werkzeug's `iri_to_uri`."""
    router.get("/go")(lambda: redirect(target))
    router.get("/respond")(lambda: Response.redirect(target))
    client = make_client()
    for path in ("/go", "/respond"):
        resp = client.get(path, allow_redirects=False)
        assert resp.status_code == 307
        assert resp.headers["Location"] == location


def test_relative_redirect_from_a_non_ascii_path(router, make_client):
    router.get("/café/[x]")(lambda x: redirect("next"))
    resp = make_client().get("/caf%C3%A9/a", allow_redirects=False)
    assert resp.headers["Location"] == "http://testserver/caf%C3%A9/next"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("東京", "beyond latin-1"),
        ("a\x00b", "line break or NUL"),
        ("1\r\nSet-Cookie: session=attacker", "line break or NUL"),
        ("bell\x07", "control character"),
    ],
)
def test_a_header_value_a_server_cannot_send_is_a_500_naming_it(
    router, make_client, caplog, value, problem
):
    """README: "A header value that is not latin-1 or holds CR, LF, NUL or another
    control character is an error naming the header, wherever it comes from (a returned
    tuple or `Response`, `abort()`, `HTTPError`, middleware) ... a reply carrying one is
    a logged 500, never an injected header."""
    router.get("/tuple")(lambda: ("x", 200, {"X-City": value}))
    router.get("/response")(lambda: Response("x", headers={"X-City": value}))
    router.get("/abort")(lambda: abort(429, "slow down", {"X-City": value}))
    router.get("/httperror")(lambda: (_ for _ in ()).throw(HTTPError(429, "x", {"X-City": value})))
    router.get("/plain")(lambda: "fine")
    app = App(router)

    def middleware(request, call_next):
        response = call_next(request)
        if request.path == "/plain":
            response.headers["X-City"] = value
        return response

    app.use(middleware)
    client = TestClient(app)
    for path in ("/tuple", "/response", "/abort", "/httperror", "/plain"):
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="microroute"):
            resp = client.get(path)
        assert (resp.status_code, resp.json()) == (500, {"error": "Internal Server Error"}), path
        assert "X-City" not in resp.headers
        if path in ("/response", "/plain") and "\n" in value:
            # werkzeug's Headers refuse it first, in the handler's own line.
            assert "must not contain newline characters" in caplog.text
            continue
        assert "'X-City'" in caplog.text and problem in caplog.text, path


def test_abort_refuses_header_injection_where_it_is_called():
    """README: "`abort()` and `HTTPError` raise `ValueError` where they are called"."""
    with pytest.raises(ValueError, match=r"abort\(429\): header 'Retry-After' has a line break"):
        abort(429, "x", {"Retry-After": "1\r\nSet-Cookie: session=attacker"})
    with pytest.raises(ValueError, match=r"HTTPError\(503\): header 'X-A' has a line break"):
        HTTPError(503, "x", [("X-A", "a\x00b")])


# -- trust_proxy ----------------------------------------------------------------------


def proxied_app(router, **options):
    @router.get("/where")
    def where(request):
        cookies().set("seen", "1")
        return {"url": request.url, "remote_addr": request.remote_addr, "host": request.host}

    router.get("/go")(lambda: redirect("/where"))
    return App(router, **options)


FORWARDED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "shop.example",
    "X-Forwarded-For": "203.0.113.9",
}


def test_trust_proxy_gives_scheme_host_and_client_to_everything(router):
    """README: "Behind proxies, `App(trust_proxy=N)` (`True` is one) applies werkzeug's
    `ProxyFix` to each request: scheme, host and client address come from the nearest
    proxy's `X-Forwarded-Proto`, `-Host`, `-Port` and `-For`, for cookies, redirects,
    `request.url` and `request.remote_addr` alike."""
    client = TestClient(proxied_app(router, trust_proxy=True))
    resp = client.get("/where?a=1", headers=FORWARDED)
    assert resp.json() == {
        "url": "https://shop.example/where?a=1",
        "remote_addr": "203.0.113.9",
        "host": "shop.example",
    }
    assert "Secure" in resp.headers["Set-Cookie"]
    go = client.get("/go", headers=FORWARDED, allow_redirects=False)
    assert go.headers["Location"] == "https://shop.example/where"


def test_trust_proxy_counts_hops_from_the_nearest_proxy(router):
    """``trust_proxy=2``: the second value from the right, as werkzeug's ProxyFix."""
    client = TestClient(proxied_app(router, trust_proxy=2))
    chain = {
        "X-Forwarded-Proto": "http, https",
        "X-Forwarded-Host": "spoofed.example, shop.example",
        "X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.0.0.2",
    }
    data = client.get("/where", headers=chain).json()
    assert data["remote_addr"] == "198.51.100.7"
    assert data["url"] == "http://spoofed.example/where"  # two hops back, as configured
    one = TestClient(proxied_app(Router(), trust_proxy=1)).get("/where", headers=chain).json()
    assert one["remote_addr"] == "10.0.0.2" and one["url"] == "https://shop.example/where"


def test_without_trust_proxy_forwarded_headers_are_ignored(router):
    client = TestClient(proxied_app(router))
    resp = client.get("/where", headers=FORWARDED)
    assert resp.json()["url"] == "http://testserver/where"
    assert resp.json()["remote_addr"] == "127.0.0.1"
    assert "Secure" not in resp.headers["Set-Cookie"]


@pytest.mark.parametrize("bad", [-1, 1.5, "yes"])
def test_trust_proxy_refuses_nonsense(router, bad):
    with pytest.raises(ValueError, match="trust_proxy must be True, False or a number"):
        App(router, trust_proxy=bad)


# -- streams after their first chunk ---------------------------------------------------


@pytest.mark.parametrize("late", ["redirect", "abort", "timeout", "error"])
def test_a_stream_failing_after_its_first_chunk_is_cut_logged_and_closed(
    router, make_client, caplog, late
):
    """README: "An exception raised then, and a `redirect()`, `abort()` or
    `gevent.Timeout` too, ends the stream cleanly: it is logged with the route, the
    generator is closed (its `finally:` runs) and the chunked body is cut" (the wire
    side is in tests/e2e/test_differential.py)."""
    closed = []

    @router.get("/stream")
    def stream():
        try:
            yield "first "
            if late == "redirect":
                redirect("/elsewhere")
            elif late == "abort":
                abort(403)
            elif late == "timeout":
                raise gevent.Timeout(0.01)
            else:
                raise KeyError("late")
            yield "never"
        finally:
            closed.append(True)

    client = make_client()
    with caplog.at_level(logging.ERROR, logger="microroute"):
        resp = client.get("/stream", stream=True)
        assert resp.status_code == 200
        chunks = resp.iter_content(None)
        assert next(chunks) == b"first "
        # An Exception (not a BaseException): servers log it and cut the body.
        with pytest.raises(RuntimeError, match="after the first chunk") as cut:
            next(chunks)
    assert type(cut.value.__cause__).__name__ in ("ControlFlow", "Timeout", "KeyError")
    assert closed == [True]
    assert "Error while streaming the response of" in caplog.text
    assert "test_wire.py" in caplog.text  # the route's handler, by file


def test_a_foreign_gevent_timeout_is_a_json_500(router, make_client, caplog):
    """Issue 12: "A gevent.Timeout that is not the framework's own is a JSON 500"."""

    @router.get("/slow")
    def slow():
        with gevent.Timeout(0.01):
            gevent.sleep(1)

    for client in (make_client(), make_client(handler_timeout=5)):
        with caplog.at_level(logging.ERROR, logger="microroute"):
            resp = client.get("/slow")
        assert (resp.status_code, resp.json()) == (500, {"error": "Internal Server Error"})
        assert "Unhandled Timeout" in caplog.text


# -- error handlers -------------------------------------------------------------------


@pytest.mark.parametrize("key", [500, Exception])
def test_errorhandler_500_and_exception_catch_unhandled_errors(router, make_client, caplog, key):
    """README: "`errorhandler(500)` and `errorhandler(Exception)` catch unhandled
    exceptions (which are still logged with their traceback)."""
    router.get("/boom")(lambda: {}["missing"])
    client = make_client()
    client.app.errorhandler(key)(lambda exc: ({"handled": type(exc).__name__}, 500))
    with caplog.at_level(logging.ERROR, logger="microroute"):
        resp = client.get("/boom")
    assert (resp.status_code, resp.json()) == (500, {"handled": "KeyError"})
    if key == 500:  # still logged with its traceback, as Flask does
        assert "Unhandled KeyError" in caplog.text


def test_the_early_413_goes_through_middleware_and_error_handlers(router):
    """README: "That 413 (and the 400 for a malformed `Content-Length`) goes through
    middleware and error handlers like any error, so CORS headers reach it, but no
    handler runs."""
    ran = []

    @router.post("/upload")
    def upload(request):
        ran.append(True)
        return {"size": len(request.get_data())}

    app = App(router, max_body_size=10)
    app.use(cors(allow_origins=["https://app.example"]))
    client = TestClient(app)
    origin = {"Origin": "https://app.example"}
    resp = client.post("/upload", data=b"x" * 11, headers=origin)
    assert resp.status_code == 413
    assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
    prepared = client.prepare_request(
        requests.Request("POST", "http://testserver/upload", data=b"x", headers=origin)
    )
    prepared.headers["Content-Length"] = "+1"  # int() would take it; HTTP does not
    bad = client.send(prepared)
    assert bad.status_code == 400
    assert bad.headers["Access-Control-Allow-Origin"] == "https://app.example"
    app.errorhandler(413)(lambda exc: ({"too": "big"}, 413))
    assert client.post("/upload", data=b"x" * 11).json() == {"too": "big"}
    assert ran == []


# -- context ----------------------------------------------------------------------------

USER: contextvars.ContextVar[str] = contextvars.ContextVar("user")


def test_a_contextvar_set_in_one_request_is_gone_in_the_next(router, make_client):
    """README: "Each request runs in its own copy of the context (stream chunks
    included), so a `ContextVar` your code sets in one request is gone in the next"
    (the same keep-alive connection is checked in tests/e2e/test_differential.py)."""

    @router.get("/login/[name]")
    def login(name):
        USER.set(name)
        return {"user": USER.get()}

    @router.get("/stream-login/[name]")
    def stream_login(name):
        yield "a"
        USER.set(name)  # set while streaming
        yield USER.get()

    router.get("/who")(lambda: {"user": USER.get("nobody")})
    client = make_client()
    assert client.get("/login/alice").json() == {"user": "alice"}
    assert client.get("/who").json() == {"user": "nobody"}
    assert client.get("/stream-login/bob").text == "abob"
    assert client.get("/who").json() == {"user": "nobody"}
    assert USER.get("unset") == "unset"


# -- middleware -----------------------------------------------------------------------


def test_call_next_dispatches_the_request_it_is_given(router):
    """Issue 12: "call_next(request) dispatches the request it is given (routing,
    handler, cache key)"."""
    from microroute import headers

    router.get("/v2/items", dynamic="force-dynamic")(
        lambda request: {"path": request.path, "added": headers().get("X-Added")}
    )
    router.get("/v2/static")(lambda: {"static": True})
    app = App(router)

    def rewrite(request, call_next):
        environ = dict(request.environ)
        environ["PATH_INFO"] = "/v2" + request.path
        environ["HTTP_X_ADDED"] = "yes"
        return call_next(Request(environ))

    app.use(rewrite)
    client = TestClient(app)
    assert client.get("/items").json() == {"path": "/v2/items", "added": "yes"}
    assert client.get("/static").json() == {"static": True}
    assert client.get("/static").headers["X-Microroute-Cache"] == "HIT"


def test_a_middleware_failing_after_call_next_closes_the_stream(router, caplog):
    """Issue 12: "a middleware's exception closes the inner response's iterable"."""
    closed = []
    alive = []  # held here, so only an explicit close() (not garbage collection) ends it

    def chunks():
        try:
            yield "primed"
            yield "more"
        finally:
            closed.append(True)

    @router.get("/stream")
    def stream():
        alive.append(chunks())
        return alive[-1]

    app = App(router)

    def broken(request, call_next):
        call_next(request)
        raise RuntimeError("middleware bug")

    app.use(broken)
    with caplog.at_level(logging.ERROR, logger="microroute"):
        resp = TestClient(app).get("/stream")
    assert resp.status_code == 500
    assert closed == [True]


# -- async handlers, JSON ---------------------------------------------------------------


def test_async_handlers_stop_start_up_naming_file_and_function(router):
    """README: "`async def` handlers (and async generators) stop start-up with an
    error naming the file and function"."""

    async def fetch():
        return {}

    async def ticks():
        yield "x"

    for handler in (fetch, ticks):
        local = Router()
        local.get("/x")(handler)
        named = rf"test_wire.py:\d+ .*{handler.__name__}\(\).*async"
        with pytest.raises(StartupError, match=named):
            App(local)


class Color(Enum):
    RED = "red"
    NUMBER = 7


JSON_CASES = {
    "nan": math.nan,
    "inf": [math.inf, -math.inf, 1.5],
    "enum": [Color.RED, Color.NUMBER],
    "nested": {"a": (math.nan, {"b": Color.RED})},
    "big": [2**70, math.nan],  # past 64 bits: orjson hands over to the standard library
}

JSON_APP = """
import math, sys
from enum import Enum
{block}
from microroute import App, Router
from microroute.testing import TestClient

class Color(Enum):
    RED = "red"
    NUMBER = 7

cases = {{
    "nan": math.nan,
    "inf": [math.inf, -math.inf, 1.5],
    "enum": [Color.RED, Color.NUMBER],
    "nested": {{"a": (math.nan, {{"b": Color.RED}})}},
    "big": [2**70, math.nan],
}}
router = Router()
router.get("/[name]", dynamic="force-dynamic")(lambda name: {{"v": cases[name]}})
client = TestClient(App(router))
for name in cases:
    sys.stdout.write(client.get("/" + name).text + "\\n")
"""


def test_json_is_identical_with_and_without_orjson():
    """README: "NaN and ±Infinity are written as `null`, as `JSON.stringify` does, and
    the bytes are the same with and without the `fast` extra (orjson)"; enums "as their
    value"."""
    outputs = []
    for block in ("import orjson", "sys.modules['orjson'] = None  # no orjson"):
        source = textwrap.dedent(JSON_APP.format(block=block))
        done = subprocess.run(
            [sys.executable, "-c", source], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.splitlines())
    assert outputs[0] == outputs[1]
    assert outputs[0] == [
        '{"v":null}',
        '{"v":[null,null,1.5]}',
        '{"v":["red",7]}',
        '{"v":{"a":[null,{"b":"red"}]}}',
        '{"v":[1180591620717411303424,null]}',
    ]


def test_a_lazy_response_body_runs_in_the_request_context_and_is_cut_cleanly(
    router, make_client, caplog
):
    """README: "A `Response` around a generator is a stream too: primed, run in the
    request's context, and cut the same way." (headers() works in it, a ContextVar it
    sets does not leak, a redirect() after its first chunk cuts it)"""
    from microroute import headers

    closed = []

    def chunks(fail):
        try:
            yield f"agent={headers().get('User-Agent')};"
            USER.set("leaked?")
            if fail:
                redirect("/too-late")
            yield "done"
        finally:
            closed.append(fail)

    router.get("/lazy")(lambda: Response(chunks(False), mimetype="text/plain"))
    router.get("/lazy-fail")(lambda: Response(chunks(True), mimetype="text/plain"))
    router.get("/who")(lambda: {"user": USER.get("nobody")})
    client = make_client()
    resp = client.get("/lazy", headers={"User-Agent": "tester"})
    assert resp.text == "agent=tester;done"
    assert client.get("/who").json() == {"user": "nobody"}
    with caplog.at_level(logging.ERROR, logger="microroute"):
        failing = client.get("/lazy-fail", stream=True)
        parts = failing.iter_content(None)
        assert next(parts).startswith(b"agent=")
        with pytest.raises(RuntimeError, match="after the first chunk"):
            next(parts)
    assert closed == [False, True]
    assert "the response to GET /lazy-fail" in caplog.text


def test_a_lazy_response_body_failing_before_its_first_chunk_is_a_json_error(
    router, make_client
):
    """README: "A `Response` around a generator is a stream too: primed ..." -- an
    error (or abort()) before its first chunk is a JSON response, not a server's page."""

    def chunks(signal):
        if signal:
            abort(403, "not yours")
        raise KeyError("before the first chunk")
        yield "never"

    router.get("/fails")(lambda: Response(chunks(False)))
    router.get("/aborts")(lambda: Response(chunks(True)))
    client = make_client()
    resp = client.get("/fails")
    assert (resp.status_code, resp.json()) == (500, {"error": "Internal Server Error"})
    resp = client.get("/aborts")
    assert (resp.status_code, resp.json()) == (403, {"error": "not yours"})


def test_an_error_handler_that_times_out_is_the_plain_json_500(router, make_client):
    """A gevent.Timeout escaping an error handler is a JSON 500 too, not a server's."""
    router.get("/boom")(lambda: {}["missing"])
    client = make_client()

    @client.app.errorhandler(KeyError)
    def slow_handler(exc):
        with gevent.Timeout(0.01):
            gevent.sleep(1)

    resp = client.get("/boom")
    assert (resp.status_code, resp.json()) == (500, {"error": "Internal Server Error"})


@pytest.mark.parametrize("name", ["Connection", "transfer-encoding", "Keep-Alive"])
def test_a_hop_by_hop_header_is_a_500_naming_it(router, make_client, caplog, name):
    """README: "So is a hop-by-hop header (`Connection`, `Transfer-Encoding`, ...),
    which belongs to the server." (gunicorn drops them, pywsgi sends them)"""
    router.get("/tuple")(lambda: ("x", 200, {name: "close"}))
    router.get("/response")(lambda: Response("x", headers={name: "close"}))
    client = make_client()
    for path in ("/tuple", "/response"):
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="microroute"):
            resp = client.get(path)
        assert resp.status_code == 500, path
        assert f"header {name!r} is hop-by-hop" in caplog.text, path
