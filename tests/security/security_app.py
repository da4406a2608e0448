"""The app every hostile-input test hits: one route per way input is read.

Served in-process by the TestClient and, for the header limits that belong to
the server, by ``microroute run tests/security/security_app.py``.
"""

from __future__ import annotations

from typing import Any

from microroute import (
    App,
    Request,
    Response,
    Router,
    abort,
    cookies,
    headers,
    redirect,
    session,
)

api = Router()


@api.post("/json")
def read_json(request: Request) -> dict[str, Any]:
    return {"type": type(request.json).__name__}


@api.post("/echo")
def echo(request: Request) -> Any:
    return {"got": request.json}


@api.post("/get-json")
def get_json(request: Request) -> dict[str, Any]:
    # werkzeug's own API, still public: the same parser and limits as request.json.
    return {"type": type(request.get_json(force=True)).__name__}


@api.post("/get-json-silent")
def get_json_silent(request: Request) -> dict[str, Any]:
    return {"got": request.get_json(force=True, silent=True)}


@api.post("/data")
def data(request: Request) -> dict[str, Any]:
    return {"size": len(request.get_data())}


@api.post("/text")
def text(request: Request) -> dict[str, Any]:
    return {"text": request.text}


@api.post("/form")
def form(request: Request) -> dict[str, Any]:
    # A handler that needs its field: a missing one is werkzeug's 400.
    return {"a": request.form["a"], "fields": sorted(request.form), "files": sorted(request.files)}


@api.get("/query")
def query(request: Request) -> dict[str, Any]:
    return {"a": request.args.getlist("a"), "b": request.args.get("b")}


@api.get("/headers")
def request_headers() -> dict[str, Any]:
    return {"x": headers().get("X-Test"), "count": len(list(headers().keys()))}


@api.get("/static/page")
def page() -> dict[str, Any]:
    return {"page": True}


@api.get("/items/[id]")
def item(id: str) -> dict[str, Any]:
    return {"id": id}


@api.get("/files/[...path]")
def files(path: list[str]) -> dict[str, Any]:
    # Never opens anything: the params are only echoed back.
    return {"path": path}


@api.get("/cookie")
def read_cookie() -> dict[str, Any]:
    jar = cookies()
    return {"signed": jar.get("token", signed=True), "plain": jar.get("plain")}


@api.post("/cookie")
def write_cookie(request: Request) -> dict[str, Any]:
    cookies().set(request.args["name"], request.args["value"])
    return {"set": True}


@api.post("/cookie-attributes")
def write_cookie_attributes(request: Request) -> dict[str, Any]:
    args = request.args
    secure = {"": None, "true": True, "false": False}[args.get("secure", "")]
    cookies().set(
        args["name"], "v", domain=args.get("domain"), samesite=args.get("samesite"), secure=secure
    )
    return {"set": True}


@api.post("/nickname")
def set_nickname(request: Request) -> dict[str, Any]:
    # The user chooses the value; the app signs it so it cannot be changed.
    cookies().set("nickname", request.args["value"], signed=True)
    return {"set": True}


@api.get("/admin")
def admin() -> dict[str, Any]:
    if cookies().get("uid", signed=True) != "0":
        abort(403, "Admins only")
    return {"admin": True}


@api.get("/session")
def read_session() -> dict[str, Any]:
    return {"session": dict(session())}


@api.get("/go")
def go(request: Request) -> None:
    redirect(request.args["next"])


@api.get("/go-external")
def go_external(request: Request) -> None:
    # An OAuth-style redirect that means to leave the site, and says so.
    redirect(request.args["next"], allow_external=True)


@api.get("/go-response")
def go_response(request: Request) -> Response:
    return Response.redirect(request.args["next"])


@api.get("/header")
def echo_header(request: Request) -> tuple[str, int, dict[str, str]]:
    return "ok", 200, {request.args.get("name", "X-Echo"): request.args["value"]}


def make_app(**options: Any) -> App:
    """The security app with small limits, easy to exceed in a test."""
    settings: dict[str, Any] = {
        "secret_key": "security-tests",
        "max_body_size": 4096,
        "max_json_depth": 16,
        "max_form_parts": 8,
        "max_form_memory_size": 512,
        "cache": False,
    }
    settings.update(options)
    return App(api, **settings)


app = make_app()
