"""Plain werkzeug: a ``Map`` of ``Rule``s and ``Request``/``Response`` objects.

Written the way werkzeug's own tutorial builds an app, with no framework on
top: microroute's floor, since it routes with werkzeug too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response


def _json(data: Any) -> Response:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Response(body, mimetype="application/json")


def hello(request: Request) -> Response:
    return _json({"message": "Hello, World!"})


def user(request: Request, id: str) -> Response:
    return _json({"id": id})


def echo(request: Request) -> Response:
    return _json(request.get_json(force=True))


url_map = Map(
    [
        Rule("/hello", endpoint="hello", methods=["GET"]),
        Rule("/users/<id>", endpoint="user", methods=["GET"]),
        Rule("/echo", endpoint="echo", methods=["POST"]),
    ]
)
views: dict[str, Callable[..., Response]] = {"hello": hello, "user": user, "echo": echo}


@Request.application  # type: ignore[arg-type]
def app(request: Request) -> Response | HTTPException:
    adapter = url_map.bind_to_environ(request.environ)
    try:
        endpoint, values = adapter.match()
        return views[endpoint](request, **values)
    except HTTPException as exc:
        return exc
