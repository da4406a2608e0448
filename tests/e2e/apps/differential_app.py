"""The app behind the differential suite: one route for each thing that can differ.

Served three ways by ``tests/e2e/test_differential.py`` (the TestClient,
``microroute run`` and ``gunicorn -k gevent``), which checks every response is
the same on all three. Nothing here depends on time or chance: the same
request gets the same bytes.
"""

from __future__ import annotations

import contextvars
import math
from enum import Enum

import gevent

from microroute import (
    App,
    EventStream,
    Request,
    Response,
    Router,
    abort,
    cookies,
    cors,
    redirect,
    session,
)
from microroute import headers as request_headers

api = Router()
USER: contextvars.ContextVar[str] = contextvars.ContextVar("user")


class Color(Enum):
    RED = "red"


@api.get("/ping")
def ping():
    return "pong"


@api.get("/json")
def json_values():
    return {"uni": "zoë 東京", "nan": math.nan, "inf": -math.inf, "color": Color.RED}


@api.get("/text")
def text():
    return "héllo wörld"


@api.get("/bytes")
def raw_bytes():
    return b"\x00\x01\xfe\xff"


@api.get("/none")
def nothing():
    return None


@api.get("/items/[id]")
def get_item(id):
    return {"id": id, "rewritten": request_headers().get("X-Rewritten")}


@api.put("/items/[id]")
def put_item(id, request):
    return {"id": id, "put": request.json}


@api.patch("/items/[id]")
def patch_item(id, request):
    return {"id": id, "patched": request.json}


@api.delete("/items/[id]")
def delete_item(id):
    return {"deleted": id}, 204  # a 204: the body is dropped


@api.post("/items")
def create_item(request):
    return request.json, 201, {"Location": "/items/1"}


@api.get("/static")
def static():
    return {"static": True}


@api.get("/stream")
def stream():
    yield "a"
    yield "b"
    yield "c"


@api.get("/stream/bytes")
def stream_bytes():
    yield b"\x00"
    yield b"\xff"


@api.get("/stream/fail-before")
def fail_before():
    raise ValueError("before the first chunk")
    yield "never"


@api.get("/stream/abort-before")
def abort_before():
    abort(403, "no stream for you")
    yield "never"


@api.get("/stream/fail-after")
def fail_after():
    yield "first "
    raise ValueError("after the first chunk")


@api.get("/stream/redirect-after")
def redirect_after():
    yield "first "
    redirect("/ping")


@api.get("/stream/abort-after")
def abort_after():
    yield "first "
    abort(403)


@api.get("/stream/timeout-after")
def timeout_after():
    yield "first "
    with gevent.Timeout(0.01):
        gevent.sleep(1)
    yield "never"


@api.get("/lazy")
def lazy():
    def chunks():
        yield "lazy "
        yield request_headers().get("User-Agent", "")

    return Response(chunks(), mimetype="text/plain")


@api.get("/lazy/fail-before")
def lazy_fail_before():
    def chunks():
        abort(409, "conflict before the first chunk")
        yield "never"

    return Response(chunks())


@api.get("/lazy/fail-after")
def lazy_fail_after():
    def chunks():
        yield "first "
        redirect("/ping")

    return Response(chunks())


@api.get("/sse")
def sse():
    def events():
        yield "one"
        yield {"n": 2}
        yield "multi\nline"

    return EventStream(events(), heartbeat=None)


@api.get("/sse/slow-abort")
def sse_slow_abort():
    def events():
        gevent.sleep(0.1)  # longer than the heartbeat: still before headers
        abort(403, "too late to stream")
        yield "never"

    return EventStream(events(), heartbeat=0.02)


@api.get("/sse/slow-first")
def sse_slow_first():
    def events():
        gevent.sleep(0.1)
        yield "first"

    return EventStream(events(), heartbeat=0.02)


@api.get("/redirect/tokyo")
def to_tokyo():
    redirect("/users/東京")


@api.get("/redirect/zoe")
def to_zoe():
    redirect("/users/zoë?q=é")


@api.get("/redirect/relative")
def relative():
    redirect("../ping")


@api.get("/redirect/response")
def response_redirect():
    return Response.redirect("/users/zoë", 308)


@api.get("/redirect/external")
def external():
    redirect("//evil.example/")


@api.get("/users/[name]")
def user(name):
    return {"name": name}


@api.get("/abort")
def aborted():
    abort(429, "slow down", {"Retry-After": "1"})


@api.get("/abort/injection")
def injection():
    abort(429, "x", {"Retry-After": "1\r\nSet-Cookie: session=attacker"})


@api.get("/header/tokyo")
def header_tokyo():
    return "x", 200, {"X-City": "東京"}


@api.get("/header/latin1")
def header_latin1():
    return "x", 200, {"X-City": "Zürich"}


@api.get("/header/nul")
def header_nul():
    return Response("x", headers={"X-Echo": "a\x00b"})


@api.get("/error/key")
def key_error():
    return {}["missing"]


@api.get("/error/crash")
def crash():
    return 1 // 0


@api.get("/error/timeout")
def foreign_timeout():
    with gevent.Timeout(0.01):
        gevent.sleep(1)


@api.get("/error/teapot")
def teapot():
    abort(418)


@api.get("/etag")
def etag():
    return "unchanged", 304, {"ETag": '"v1"'}


@api.get("/cookies/set")
def set_cookies():
    cookies().set("theme", "dark")
    cookies().set("lang", "fr", path="/cookies", samesite="strict")
    cookies().delete("old")
    return {"set": True}


@api.get("/cookies/read")
def read_cookies():
    return cookies().all()


@api.post("/session/login")
def login(request):
    session()["user"] = request.json["user"]
    return {"ok": True}


@api.get("/session/me")
def me():
    return dict(session())


@api.post("/form")
def form(request):
    files = {name: [f.filename, len(f.read())] for name, f in request.files.items()}
    return {"form": request.form.to_dict(flat=False), "files": files}


@api.post("/json")
def echo_json(request):
    return {"got": request.json}


@api.post("/upload")
def upload(request):
    return {"size": len(request.get_data())}


@api.get("/own-options")
def own_options_get():
    return "get"


@api.options("/own-options")
def own_options():
    return "", 204, {"Allow": "GET, OPTIONS", "X-Custom": "1"}


@api.get("/own-head")
def own_head_get():
    return {"from": "GET"}


@api.head("/own-head")
def own_head():
    return {"from": "HEAD, dropped"}, 200, {"X-Head": "own"}


@api.get("/ctx/set")
def ctx_set():
    USER.set("alice")
    return {"user": USER.get()}


@api.get("/ctx/get")
def ctx_get():
    return {"user": USER.get("nobody")}


@api.get("/where")
def where(request):
    return {"url": request.url, "remote_addr": request.remote_addr, "scheme": request.scheme}


def probe(request):
    """What a server made of the request line and headers: extension methods, OWS."""
    return {"method": request.method, "probe": request.headers.get("X-Probe")}


api.add("/probe", probe, methods=["GET", "PURGE", "FROB"])


@api.get("/proxy-redirect")
def proxy_redirect():
    redirect("/where")


@api.get("/café/[x]")
def cafe(x):
    return {"x": x}


SETTINGS = {"secret_key": "differential", "max_body_size": 1024, "trust_proxy": True}
full = App(api, **SETTINGS, health=True)  # with middleware: every reply goes through a Response
bare = App(api, **SETTINGS, health=True)  # without: the replies the handlers make, as they are


def app(environ, start_response):
    """Both apps on one server: ``X-Bare: 1`` picks the one without middleware."""
    chosen = bare if environ.get("HTTP_X_BARE") else full
    return chosen(environ, start_response)


@full.errorhandler(KeyError)
@bare.errorhandler(KeyError)
def missing_key(exc):
    return {"error": "no such key", "key": str(exc)}, 404


@full.errorhandler(500)
@bare.errorhandler(500)
def internal(exc):
    return {"error": "Internal Server Error", "handled": type(exc).__name__}, 500


@full.errorhandler(418)
@bare.errorhandler(418)
def brew(exc):
    return {"error": "I'm a teapot", "brewed": True}, 418


@full.use
def tag(request, call_next):
    response = call_next(request)
    response.headers["X-Mw"] = "1"
    return response


@full.use
def rewrite(request, call_next):
    """``/old/...`` is served as ``/items/...``: call_next gets a request of its own."""
    if request.path.startswith("/old/"):
        environ = dict(request.environ, PATH_INFO="/items/" + request.path[len("/old/") :])
        environ["HTTP_X_REWRITTEN"] = "yes"
        return call_next(Request(environ))
    return call_next(request)


full.use(cors(allow_origins=["https://app.example"], allow_credentials=True))
