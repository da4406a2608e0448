"""Dispatch: a request's path and method to the reply of the right handler.

Refuses a path with a dot or empty segment (400), redirects a trailing slash
(308, query kept), matches the route (404), picks the method's handler (405
with ``Allow``; ``HEAD`` from ``GET``; ``OPTIONS`` answered with ``Allow``),
then serves a static GET from the cache and runs anything else.

A route's scoped middleware (``router.use``, a ``middleware.py`` in a folder
above its file) runs here, once the route is known, around everything the
route answers: the cache (a HIT too), the handler, ``HEAD`` from ``GET``, its
``OPTIONS`` and 405. A request a scoped middleware passes on reaches the same
handler: routing is done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urljoin

from werkzeug.wrappers import Response as _WerkzeugResponse

from .cache import RouteCache
from .context import RequestState, active
from .errorpages import PATH_SAFE, ErrorPages, current_url
from .handlers import Endpoint
from .middleware import CallNext, chain, check_middleware, reply_to_response, response_to_reply
from .requests import Request
from .responses import Reply, status_line
from .routing import dot_or_empty_segment
from .running import Runner
from .table import Route, RouteTable
from .wire import without_body

__all__ = ["Dispatcher"]


class Dispatcher:
    """Routes one request; the innermost stage, inside middleware."""

    __slots__ = ("cache", "errors", "runner", "table")

    def __init__(
        self, table: RouteTable, cache: RouteCache | None, runner: Runner, errors: ErrorPages
    ) -> None:
        self.table = table
        self.cache = cache
        self.runner = runner
        self.errors = errors
        _wire_scoped_middleware(table, errors)

    def dispatch(self, environ: dict[str, Any], state: RequestState) -> Reply:
        path = environ.get("PATH_INFO") or "/"
        if not path.isascii():
            # WSGI hands paths over as latin-1; URLs are UTF-8.
            path = path.encode("latin-1").decode("utf-8", "replace")
        if (problem := dot_or_empty_segment(path)) is not None:
            return self.errors.routing_error(400, problem, environ)
        if path[-1] == "/" and path != "/":
            return _slash_redirect(environ, path)
        found = self.table.match(path)
        if found is None:
            return self.errors.routing_error(404, "Not Found", environ)
        route, params = found
        exchange = state.exchange
        if exchange is not None:
            exchange.route = route.pattern.path
            if exchange.observers.matched:
                exchange.routed(route.pattern.path)
        method = environ["REQUEST_METHOD"]
        endpoint = route.endpoints.get(method)
        if endpoint is None:
            return self._unexported(route, method, state, params)
        if endpoint.layers is not None:
            return _through(endpoint.layers, state, lambda: self._serve(endpoint, state, params))
        if endpoint.dynamic_reason is None and self.cache is not None:
            return self._static(endpoint, state, params)
        return self.runner.run(endpoint, state, params)

    def _serve(self, endpoint: Endpoint, state: RequestState, params: dict[str, Any]) -> Reply:
        """The endpoint's reply, inside its scoped middleware."""
        if endpoint.dynamic_reason is None and self.cache is not None:
            return self._static(endpoint, state, params)
        return self.runner.run(endpoint, state, params)

    def _unexported(
        self, route: Route, method: str, state: RequestState, params: dict[str, Any]
    ) -> Reply:
        """A method the route has no handler for: HEAD from GET, OPTIONS, or a 405."""
        if method == "HEAD" and "GET" in route.endpoints:
            get = route.endpoints["GET"]
            if get.layers is not None:
                return _through(get.layers, state, lambda: self._head(get, state, params))
            return self._head(get, state, params)
        if route.layers is not None:
            return _through(route.layers, state, lambda: self._answer(route, method, state))
        return self._answer(route, method, state)

    def _answer(self, route: Route, method: str, state: RequestState) -> Reply:
        if method == "OPTIONS":
            return status_line(204), [("Allow", route.allow)], []
        return self.errors.routing_error(
            405, "Method Not Allowed", state.environ, [("Allow", route.allow)]
        )

    def _static(self, endpoint: Endpoint, state: RequestState, params: dict[str, Any]) -> Reply:
        """A static route's response from the cache: stored, or built now."""
        environ = state.environ
        assert self.cache is not None
        reply = self.cache.serve(
            endpoint,
            environ.get("PATH_INFO") or "/",
            params,
            state,
            environ.get("HTTP_IF_NONE_MATCH"),
        )
        if reply[0][0] == "3" and not reply[0].startswith("304"):
            # A build redirects with a path-absolute Location (it has no host):
            # resolve it against this request, as any other redirect is.
            status, headers, body = reply
            base = current_url(environ)
            headers = [
                (name, urljoin(base, value) if name.lower() == "location" else value)
                for name, value in headers
            ]
            return status, headers, body
        return reply

    def _head(self, get: Endpoint, state: RequestState, params: dict[str, Any]) -> Reply:
        """HEAD served from GET: GET's status and headers, no body.

        A static route answers from its GET entry, or builds one exactly as a
        GET would: the build is a GET, so what it stores is GET's response.
        """
        if get.dynamic_reason is None and self.cache is not None:
            status, headers, body = self._static(get, state, params)
        else:
            status, headers, body = self.runner.run(get, state, params)
        # A streamed GET keeps an unsized empty body, so HEAD is framed as GET
        # is (no "Content-Length: 0"), even through middleware's Response.
        return status, headers, without_body(headers, body, int(status[:3]))


def _through(layers: CallNext, state: RequestState, inner: Callable[[], Reply]) -> Reply:
    """*inner*'s reply, made inside the scoped middleware chain *layers*."""
    state.inner = inner
    return response_to_reply(layers(state.request), state.environ)


def _innermost(request: Request) -> _WerkzeugResponse:
    """The ``call_next`` at the heart of every scoped chain: what dispatch set to run."""
    state = active()
    state.use_request(request)
    return reply_to_response(state.inner())


def _wire_scoped_middleware(table: RouteTable, errors: ErrorPages) -> None:
    """Build each scoped chain once; handlers sharing middleware share the chain."""
    chains: dict[tuple[int, ...], CallNext] = {}

    def layers(middleware: tuple[Any, ...]) -> CallNext | None:
        if not middleware:
            return None
        key = tuple(map(id, middleware))
        found = chains.get(key)
        if found is None:
            for mw in middleware:
                check_middleware(mw)
            found = chains[key] = chain(middleware, _innermost, errors)
        return found

    for route in table.routes:
        for endpoint in route.endpoints.values():
            endpoint.layers = layers(endpoint.middleware)
        route.layers = layers(route.common_middleware())


def _slash_redirect(environ: dict[str, Any], path: str) -> Reply:
    """``/users/`` -> 308 ``/users``, keeping the query string."""
    # Collapse leading slashes: "//evil.example/" must not become a
    # protocol-relative redirect to another host.
    target = environ.get("SCRIPT_NAME", "") + "/" + path.strip("/")
    location = quote(target, safe=PATH_SAFE)
    query = environ.get("QUERY_STRING")
    if query:
        location += "?" + query
    return status_line(308), [("Location", location), ("Content-Length", "0")], []
