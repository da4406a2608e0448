"""Calling a WSGI app in-process the way a server would, minus the socket.

A template environ is built once per request; each call gets a shallow copy
(apps may write into the environ) and, for a body, a fresh ``BytesIO``. The
response body is consumed and closed, as PEP 3333 asks of a server.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from typing import Any

from .apps import Endpoint

__all__ = ["Reply", "call", "check", "header", "make_caller", "make_environ"]

Environ = dict[str, Any]
Reply = tuple[str, list[tuple[str, str]], bytes]


def make_environ(method: str, path: str, body: bytes = b"") -> Environ:
    """A realistic environ, with the headers a small HTTP client sends."""
    environ: Environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "benchmarks/1.0",
        "HTTP_ACCEPT": "*/*",
        "HTTP_CONNECTION": "keep-alive",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def make_caller(app: Callable[..., Any], endpoint: Endpoint) -> Callable[[int], None]:
    """A function running *n* requests of *endpoint* against *app*, as fast as we can."""
    template = make_environ(endpoint.method, endpoint.path, endpoint.body)
    body = endpoint.body
    BytesIO = io.BytesIO

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> None:
        return None

    if body:

        def run(n: int) -> None:
            for _ in range(n):
                environ = template.copy()
                environ["wsgi.input"] = BytesIO(body)
                result = app(environ, start_response)
                for _chunk in result:
                    pass
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    else:

        def run(n: int) -> None:
            for _ in range(n):
                result = app(template.copy(), start_response)
                for _chunk in result:
                    pass
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    return run


def call(app: Callable[..., Any], endpoint: Endpoint) -> Reply:
    """One request; returns (status, headers, body)."""
    environ = make_environ(endpoint.method, endpoint.path, endpoint.body)
    if endpoint.body:
        environ["wsgi.input"] = io.BytesIO(endpoint.body)
    seen: list[Any] = []

    def start_response(status: str, headers: list[Any], exc_info: Any = None) -> None:
        seen[:] = [status, list(headers)]

    result = app(environ, start_response)
    try:
        data = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return seen[0], seen[1], data


def check(reply: Reply, endpoint: Endpoint) -> str | None:
    """Why *reply* is not the right answer to *endpoint*, or ``None`` when it is."""
    status, headers, body = reply
    if not status.startswith("200"):
        return f"status {status!r}, body {body[:200]!r}"
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    if not content_type.startswith("application/json"):
        return f"Content-Type {content_type!r}"
    # Flask ends JSON with a newline; otherwise every app sends the same bytes.
    if body.rstrip(b"\n") != endpoint.expected_bytes:
        return f"body {body[:200]!r}, expected {endpoint.expected_bytes!r}"
    return None


def header(reply: Reply, name: str) -> str | None:
    """The value of header *name* in *reply*, or ``None``."""
    return next((v for k, v in reply[1] if k.lower() == name.lower()), None)
