"""A plain WSGI app (no microroute App): what the server itself must log.

``/boom`` raises before it starts a response, which only the server can
answer (a 500) and log; anything else is a small 200.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom from raw_app")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]
