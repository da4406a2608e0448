"""The ceiling: a hand-written WSGI callable, no framework at all.

It does the least work that still serves the three endpoints correctly: the
constant ``/hello`` body is encoded once, ``/users/<id>`` and ``/echo`` encode
JSON per request (they depend on the request), with one prebuilt encoder.
``/io`` is a handler blocked 20 ms in ``time.sleep`` (``benchmarks.servers``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_JSON = ("Content-Type", "application/json")
_HELLO = _encoder.encode({"message": "Hello, World!"}).encode()
_HELLO_HEADERS = [_JSON, ("Content-Length", str(len(_HELLO)))]
_NOT_FOUND = b'{"error":"Not Found"}'
_IO = _encoder.encode({"slept_ms": 20}).encode()
_IO_HEADERS = [_JSON, ("Content-Length", str(len(_IO)))]


def _json(start_response: Callable[..., Any], body: bytes) -> list[bytes]:
    start_response("200 OK", [_JSON, ("Content-Length", str(len(body)))])
    return [body]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    method = environ["REQUEST_METHOD"]
    if method == "GET":
        if path == "/hello":
            start_response("200 OK", _HELLO_HEADERS)
            return [_HELLO]
        if path.startswith("/users/"):
            user_id = path[7:]
            if user_id and "/" not in user_id:
                return _json(start_response, _encoder.encode({"id": user_id}).encode())
        if path == "/io":
            time.sleep(0.02)
            start_response("200 OK", _IO_HEADERS)
            return [_IO]
    elif method == "POST" and path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = json.loads(environ["wsgi.input"].read(length))
        return _json(start_response, _encoder.encode(data).encode())
    start_response("404 Not Found", [_JSON, ("Content-Length", str(len(_NOT_FOUND)))])
    return [_NOT_FOUND]
