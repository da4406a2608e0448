"""The apps under test and the three requests every one of them serves.

Each module here exposes a WSGI ``app`` serving, with the same bytes:

* ``GET /hello``       -> ``{"message":"Hello, World!"}``
* ``GET /users/<id>``  -> ``{"id":"<id>"}`` (the id as the string in the path)
* ``POST /echo``       -> the JSON body back

(Flask ends its JSON bodies with a newline; the rest is byte-identical.)

``benchmarks.servers`` also loads :data:`IO` (``GET /io``: a sync handler blocked
20 ms in ``time.sleep``) from the apps in :data:`IO_APPS`, and serves the ASGI
peers of :data:`ASGI_APPS` (Starlette, FastAPI) with uvicorn.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["APPS", "ASGI_APPS", "ENDPOINTS", "IO", "IO_APPS", "AppSpec", "Endpoint", "load"]

WSGIApp = Callable[..., Any]


@dataclass(frozen=True)
class AppSpec:
    """One app under test: a short key, a label for tables, where its ``app`` lives."""

    key: str
    label: str
    target: str  # "module:attr", importable from the repository root

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]


@dataclass(frozen=True)
class Endpoint:
    """One of the three requests, and the JSON every app must answer it with."""

    key: str
    method: str
    path: str
    expected: Any
    body: bytes = b""

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def expected_bytes(self) -> bytes:
        return compact_json(self.expected)


def compact_json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


APPS: list[AppSpec] = [
    AppSpec("raw", "raw WSGI", "benchmarks.apps.raw_wsgi:app"),
    AppSpec("werkzeug", "plain werkzeug", "benchmarks.apps.plain_werkzeug:app"),
    AppSpec("flask", "Flask", "benchmarks.apps.flask_app:app"),
    AppSpec("falcon", "Falcon", "benchmarks.apps.falcon_app:app"),
    AppSpec("bottle", "Bottle", "benchmarks.apps.bottle_app:app"),
    AppSpec("microroute", "microroute (decorators)", "benchmarks.apps.microroute_decorators:app"),
    AppSpec(
        "microroute-bare",
        "microroute (ids, access log off)",
        "benchmarks.apps.microroute_decorators:bare",
    ),
    AppSpec(
        "microroute-discovered",
        "microroute (discovered)",
        "benchmarks.apps.microroute_discovered:app",
    ),
    AppSpec("microroute-cached", "microroute (cache on)", "benchmarks.apps.microroute_cached:app"),
]
APPS_BY_KEY = {spec.key: spec for spec in APPS}
#: ASGI apps, for ``benchmarks.servers`` only (uvicorn): the same bytes on the same requests.
ASGI_APPS: list[AppSpec] = [
    AppSpec("starlette", "Starlette (async)", "benchmarks.apps.starlette_app:app"),
    AppSpec("fastapi", "FastAPI (async def)", "benchmarks.apps.fastapi_app:app"),
    AppSpec("fastapi-sync", "FastAPI (def)", "benchmarks.apps.fastapi_app:sync_app"),
]

_ECHO = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "city": "Zürich",
    "tags": ["math", "engines"],
    "age": 36,
    "active": True,
}

ENDPOINTS: list[Endpoint] = [
    Endpoint("hello", "GET", "/hello", {"message": "Hello, World!"}),
    Endpoint("users", "GET", "/users/42", {"id": "42"}),
    Endpoint("echo", "POST", "/echo", _ECHO, compact_json(_ECHO)),
]
ENDPOINTS_BY_KEY = {endpoint.key: endpoint for endpoint in ENDPOINTS}
#: A sync handler that waits 20 ms on I/O (``time.sleep``): what a server's concurrency buys.
IO = Endpoint("io", "GET", "/io", {"slept_ms": 20})
#: The apps that serve :data:`IO`: these WSGI apps and every one of :data:`ASGI_APPS`.
IO_APPS = ("raw", "falcon", "microroute", "microroute-bare", "microroute-cached")


def load(spec: AppSpec) -> WSGIApp:
    """Import *spec*'s module and return its WSGI ``app``."""
    module_name, _, attr = spec.target.partition(":")
    app: WSGIApp = getattr(importlib.import_module(module_name), attr)
    return app
