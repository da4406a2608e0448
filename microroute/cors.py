"""CORS as a middleware: ``app.use(cors(allow_origins=["https://app.example"]))``.

The browser enforces CORS; the server's part is to answer preflights and to
say, on each response, which origin may read it. This middleware:

* answers a preflight (``OPTIONS`` with ``Origin`` and
  ``Access-Control-Request-Method``) with 204 when the origin, the method and
  every requested header are allowed, and 403 otherwise — unless the route
  exports its own ``OPTIONS``, which then answers;
* adds ``Access-Control-Allow-Origin`` (and ``-Credentials``,
  ``-Expose-Headers``) to responses for allowed origins, errors included;
* echoes a specific origin with ``Vary: Origin`` (never ``*`` when credentials
  are allowed, which browsers would reject).

``allow_origins="*"`` with ``allow_credentials=True`` is refused when the
middleware is made: echoing any origin with credentials would let every site
read a signed-in user's data, and the Fetch standard forbids the wildcard with
credentials. List the origins instead (or pass a regex or a function, which
says explicitly which origins are trusted).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .middleware import CallNext, Middleware
from .responses import Response

if TYPE_CHECKING:
    from werkzeug.wrappers import Response as _WerkzeugResponse

    from .requests import Request

__all__ = ["cors"]

OriginRule = str | Iterable[str] | re.Pattern[str] | Callable[[str], bool]

_SAFE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_SAFE_HEADERS = ("Content-Type", "Authorization")


def _origin_matcher(allow_origins: OriginRule) -> tuple[Callable[[str], bool], bool]:
    """A predicate for allowed origins, and whether any origin is allowed."""
    if isinstance(allow_origins, str):
        if allow_origins == "*":
            return (lambda origin: True), True
        allowed = {allow_origins.rstrip("/")}
        return allowed.__contains__, False
    if isinstance(allow_origins, re.Pattern):
        pattern = allow_origins
        return (lambda origin: pattern.fullmatch(origin) is not None), False
    if callable(allow_origins):
        predicate = allow_origins
        return (lambda origin: bool(predicate(origin))), False
    origins = {origin.rstrip("/") for origin in allow_origins}
    if "*" in origins:
        return (lambda origin: True), True
    return origins.__contains__, False


def _add_vary(response: _WerkzeugResponse, name: str) -> None:
    current = response.headers.get("Vary")
    if not current:
        response.headers["Vary"] = name
    elif name.lower() not in {v.strip().lower() for v in current.split(",")}:
        response.headers["Vary"] = f"{current}, {name}"


def cors(
    allow_origins: OriginRule = (),
    allow_methods: Iterable[str] = _SAFE_METHODS,
    allow_headers: Iterable[str] | str = _SAFE_HEADERS,
    expose_headers: Iterable[str] = (),
    allow_credentials: bool = False,
    max_age: int = 600,
) -> Middleware:
    """Return a CORS middleware.

    :param allow_origins: a list of origins (``"https://app.example"``),
        ``"*"`` (not with credentials), a compiled regex matched against the whole origin, or a
        function ``origin -> bool``.
    :param allow_methods: methods a preflight may ask for.
    :param allow_headers: request headers a preflight may ask for (``"*"``
        allows any).
    :param expose_headers: response headers the page's script may read.
    :param allow_credentials: let the browser send and receive cookies.
    :param max_age: seconds the browser may cache a preflight answer.

    >>> app.use(cors(["http://localhost:3000"], allow_credentials=True))  # doctest: +SKIP

    Raises :class:`ValueError` for ``allow_origins="*"`` (or a list holding
    ``"*"``) with ``allow_credentials=True``.
    """
    is_allowed, any_origin = _origin_matcher(allow_origins)
    if any_origin and allow_credentials:
        raise ValueError(
            'cors(): allow_origins="*" with allow_credentials=True would let every site read'
            " your users' data with their cookies (the Fetch standard forbids the wildcard"
            ' with credentials); list the origins instead: allow_origins=["https://app.example"]'
        )
    methods = sorted({m.upper() for m in allow_methods})
    any_header = allow_headers == "*"
    headers = {h.lower() for h in allow_headers} if not any_header else set()
    allow_methods_value = ", ".join(methods)
    expose_value = ", ".join(expose_headers)
    # Only "*" (never with credentials, refused above) answers "*"; any other
    # rule answers with the origin itself.
    echo_origin = not any_origin

    def add_cors_headers(response: _WerkzeugResponse, origin: str) -> None:
        if "Access-Control-Allow-Origin" in response.headers:
            return  # the handler decided for itself
        response.headers["Access-Control-Allow-Origin"] = origin if echo_origin else "*"
        if echo_origin:
            _add_vary(response, "Origin")
        if allow_credentials:
            response.headers["Access-Control-Allow-Credentials"] = "true"
        if expose_value:
            response.headers["Access-Control-Expose-Headers"] = expose_value

    def preflight(request: Request, origin: str) -> _WerkzeugResponse:
        method = request.headers.get("Access-Control-Request-Method", "").upper()
        requested = [
            h.strip() for h in request.headers.get("Access-Control-Request-Headers", "").split(",")
        ]
        requested = [h for h in requested if h]
        problem = None
        if not is_allowed(origin):
            problem = f"origin {origin} is not allowed"
        elif method not in methods:
            problem = f"method {method or '(none)'} is not allowed"
        elif not any_header and (bad := [h for h in requested if h.lower() not in headers]):
            problem = f"header {', '.join(bad)} is not allowed"
        if problem is not None:
            response: _WerkzeugResponse = Response.json(
                {"error": f"CORS preflight rejected: {problem}"}, 403
            )
            _add_vary(response, "Origin")
            return response
        response = Response(status=204)
        del response.headers["Content-Type"]
        response.headers["Access-Control-Allow-Methods"] = allow_methods_value
        if requested:
            response.headers["Access-Control-Allow-Headers"] = ", ".join(requested)
        response.headers["Access-Control-Max-Age"] = str(max_age)
        add_cors_headers(response, origin)
        return response

    def cors_middleware(request: Request, call_next: CallNext) -> _WerkzeugResponse:
        origin = request.headers.get("Origin")
        if origin is None:
            response = call_next(request)
            if echo_origin:
                # The answer depends on Origin: a shared cache must not hand
                # this copy (without Allow-Origin) to a page that sends one.
                _add_vary(response, "Origin")
            return response
        is_preflight = (
            request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        )
        if is_preflight and not _has_own_options(request):
            return preflight(request, origin)
        response = call_next(request)
        if is_allowed(origin):
            add_cors_headers(response, origin)
        elif echo_origin:
            _add_vary(response, "Origin")
        return response

    return cors_middleware


def _has_own_options(request: Request) -> bool:
    """Whether the matched route exports OPTIONS itself (which then wins)."""
    from .context import active

    return active().routes.has_handler(request.path, "OPTIONS")
