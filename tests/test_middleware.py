"""Middleware: app.use(mw) with mw(request, call_next), and app/middleware.py."""

from __future__ import annotations

import pytest

from microroute import App, HTTPError, Response, StartupError, abort, cookies


def tagging(name: str, value: str = "1"):
    """A middleware that adds the header *name* to every response."""

    def mw(request, call_next):
        response = call_next(request)
        response.headers[name] = value
        return response

    return mw


@pytest.fixture
def app_with(router):
    """``app_with(*middleware, **options)``: App(router, ...) with the middleware added."""

    def make(*middleware, **options):
        app = App(router, **options)
        for mw in middleware:
            app.use(mw)
        return app

    return make


# -- order and short-circuit ------------------------------------------------------


def test_middleware_run_in_the_order_added_first_outermost(router, app_with, client_for):
    calls = []

    def recorder(name):
        def mw(request, call_next):
            calls.append(f"{name} in")
            response = call_next(request)
            calls.append(f"{name} out")
            return response

        return mw

    @router.get("/x")
    def handler(request):
        calls.append("handler")
        return {"ok": True}

    client = client_for(app_with(recorder("a"), recorder("b"), recorder("c")))
    assert client.get("/x").json() == {"ok": True}
    assert calls == ["a in", "b in", "c in", "handler", "c out", "b out", "a out"]


def test_use_returns_the_middleware_so_it_works_as_a_decorator(router, client_for):
    router.get("/x")(lambda: "hi")
    app = App(router)

    @app.use
    def stamp(request, call_next):
        response = call_next(request)
        response.headers["X-Stamp"] = "yes"
        return response

    assert callable(stamp)
    assert client_for(app).get("/x").headers["X-Stamp"] == "yes"


@pytest.mark.parametrize(
    ("answer", "status", "body"),
    [
        (lambda: Response("denied", status=401), 401, b"denied"),
        (lambda: {"blocked": True}, 200, b'{"blocked": true}'),
        (lambda: ({"blocked": True}, 403, {"X-Why": "mw"}), 403, b'{"blocked": true}'),
        (lambda: "plain", 200, b"plain"),
    ],
    ids=["Response", "dict", "tuple", "str"],
)
def test_middleware_can_short_circuit(router, app_with, client_for, answer, status, body):
    called = []
    router.get("/x")(lambda request: called.append(1) or "handler")

    def gate(request, call_next):
        return answer()

    resp = client_for(app_with(gate)).get("/x")
    assert resp.status_code == status
    assert resp.content.replace(b" ", b"") == body.replace(b" ", b"")
    assert called == []
    if status == 403:
        assert resp.headers["X-Why"] == "mw"
        assert resp.headers["Content-Type"].startswith("application/json")


# -- headers on every response --------------------------------------------------------


def test_middleware_headers_reach_404_405_and_500(router, app_with, client_for):
    router.get("/ok")(lambda request: "ok")

    @router.get("/boom")
    def boom(request):
        raise ValueError("boom")

    client = client_for(app_with(tagging("X-MW")))
    for path, method, status in [
        ("/ok", "GET", 200),
        ("/missing", "GET", 404),
        ("/ok", "DELETE", 405),
        ("/boom", "GET", 500),
    ]:
        resp = client.request(method, path)
        assert resp.status_code == status, path
        assert resp.headers["X-MW"] == "1", (method, path)
    assert client.delete("/ok").headers["Allow"]


def test_middleware_headers_reach_a_cached_response(router, app_with, client_for):
    router.get("/static")(lambda: {"n": 1})
    client = client_for(app_with(tagging("X-MW")))
    first, second = client.get("/static"), client.get("/static")
    assert second.headers.get("X-Microroute-Cache") == "HIT"
    assert first.headers["X-MW"] == second.headers["X-MW"] == "1"


@pytest.mark.parametrize("raise_it", [lambda: abort(401), lambda: abort(401, "log in first")])
def test_middleware_abort_gives_json_and_outer_headers(router, app_with, client_for, raise_it):
    router.get("/x")(lambda request: "never")

    def guard(request, call_next):
        raise_it()

    resp = client_for(app_with(tagging("X-Outer"), guard)).get("/x")
    assert resp.status_code == 401
    assert resp.json()["error"] in ("Unauthorized", "log in first")
    assert resp.headers["X-Outer"] == "1"


def test_middleware_http_error_gives_json_and_outer_headers(router, app_with, client_for):
    router.get("/x")(lambda request: "never")

    def guard(request, call_next):
        raise HTTPError(403, "admins only", {"X-Reason": "role"})

    resp = client_for(app_with(tagging("X-Outer"), guard)).get("/x")
    assert resp.status_code == 403
    assert resp.json() == {"error": "admins only"}
    assert resp.headers["X-Reason"] == "role"
    assert resp.headers["X-Outer"] == "1"


def test_middleware_crash_is_a_500_with_outer_headers(router, app_with, client_for, caplog):
    router.get("/x")(lambda request: "never")

    def broken(request, call_next):
        raise KeyError("oops")

    resp = client_for(app_with(tagging("X-Outer"), broken)).get("/x")
    assert resp.status_code == 500
    assert resp.json() == {"error": "Internal Server Error"}
    assert resp.headers["X-Outer"] == "1"
    assert "broken" in caplog.text


# -- the body ---------------------------------------------------------------------


READERS = {
    "data": lambda request: request.get_data(as_text=True),
    "json": lambda request: request.json,
    "form": lambda request: request.form.to_dict(),
}
# A body's Content-Type, and what each reader that applies to it sees.
BODIES = [
    ("application/x-www-form-urlencoded", {"data": "a=1", "form": {"a": "1"}}),
    ("application/json", {"data": '{"a": 1}', "json": {"a": 1}}),
    ("text/plain", {"data": "raw text"}),
]
COMBOS = [
    (mw, handler, content_type, body)
    for content_type, body in BODIES
    for mw in body
    for handler in body
]


@pytest.mark.parametrize("chunked", [False, True], ids=["sized", "chunked"])
@pytest.mark.parametrize(("mw_reads", "handler_reads", "content_type", "body"), COMBOS)
def test_middleware_reads_the_body_and_the_handler_still_can(
    router, app_with, client_for, mw_reads, handler_reads, content_type, body, chunked
):
    seen = {}

    @router.post("/echo")
    def echo(request):
        return {"handler": READERS[handler_reads](request)}

    def peek(request, call_next):
        seen["mw"] = READERS[mw_reads](request)
        return call_next(request)

    raw = body["data"].encode()
    data = iter([raw[:2], raw[2:]]) if chunked else raw
    resp = client_for(app_with(peek)).post(
        "/echo", data=data, headers={"Content-Type": content_type}
    )
    assert resp.status_code == 200, resp.text
    assert seen["mw"] == body[mw_reads]
    assert resp.json()["handler"] == body[handler_reads]


# -- registration ------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [lambda request: None, lambda: None, lambda a, b, c: None, "not callable"],
    ids=["one-arg", "no-arg", "three-args", "not-callable"],
)
def test_wrong_middleware_signature_fails_at_use(router, bad):
    app = App(router)
    with pytest.raises(TypeError, match=r"request, call_next"):
        app.use(bad)


def test_middleware_can_use_cookies(router, app_with, client_for):
    router.get("/x")(lambda request: {"visits": cookies().get("visits")})

    def count_visits(request, call_next):
        visits = int(cookies().get("visits", "0")) + 1
        cookies().set("visits", str(visits))
        return call_next(request)

    client = client_for(app_with(count_visits))
    assert client.get("/x").json() == {"visits": "1"}
    assert client.get("/x").json() == {"visits": "2"}
    assert client.cookies["visits"] == "2"


# -- app/middleware.py -------------------------------------------------------------


def test_discovered_middleware_file_is_picked_up(tmp_path, make_tree, client_for):
    app_dir = make_tree(
        tmp_path,
        {
            "app/api/ping/route.py": "def GET(request): return {'pong': True}",
            "app/middleware.py": """
                def middleware(request, call_next):
                    response = call_next(request)
                    response.headers["X-From-File"] = "yes"
                    return response
            """,
        },
    )
    client = client_for(App(app_dir=app_dir))
    resp = client.get("/api/ping")
    assert resp.json() == {"pong": True}
    assert resp.headers["X-From-File"] == "yes"
    assert client.get("/nowhere").headers["X-From-File"] == "yes"


def test_middleware_file_is_not_a_route(tmp_path, make_tree, client_for):
    app_dir = make_tree(
        tmp_path,
        {
            "app/route.py": "def GET(): return 'home'",
            "app/middleware.py": "def middleware(request, call_next): return call_next(request)",
        },
    )
    client = client_for(App(app_dir=app_dir))
    assert client.get("/").text == "home"
    assert client.get("/middleware").status_code == 404


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def other(request, call_next): return call_next(request)", "export a function"),
        ("def middleware(request): return None", "request, call_next"),
    ],
    ids=["no-middleware-name", "wrong-signature"],
)
def test_bad_middleware_file_is_a_startup_error_naming_it(tmp_path, make_tree, source, message):
    app_dir = make_tree(
        tmp_path,
        {"app/route.py": "def GET(): return 'home'", "app/middleware.py": source},
    )
    with pytest.raises(StartupError) as caught:
        App(app_dir=app_dir)
    assert "middleware.py" in str(caught.value)
    assert message in str(caught.value)
