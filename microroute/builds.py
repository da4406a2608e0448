"""Static builds: a static GET's response made as Next.js makes it, from no request.

The handler runs on a synthetic GET for the path alone (no query, no cookies,
no client headers; ``Host`` is ``App(static_host=...)``), in a fresh context
holding nothing the live request or its middleware set, outside middleware.
A call to ``cookies()``, ``headers()`` or ``session()`` abandons the build and
makes the route dynamic from then on. :mod:`microroute.cache` decides when a
build runs (a MISS, a stale entry, a HEAD with no entry); this module runs it.
"""

from __future__ import annotations

import contextvars
import io
import logging
import sys
from typing import Any

from .after_response import run_now
from .context import BUILD_MARK, DynamicUsage, RequestState, Routes, active, bind
from .errorpages import ErrorPages
from .handlers import Endpoint
from .lifecycle import Exchange
from .responses import Reply, close_body
from .running import Runner
from .scope import with_cookies
from .settings import Settings

__all__ = ["Builder"]

logger = logging.getLogger("microroute")


class Builder:
    """Runs static builds for one app."""

    __slots__ = ("errors", "routes", "runner", "settings")

    def __init__(
        self, settings: Settings, routes: Routes, runner: Runner, errors: ErrorPages
    ) -> None:
        self.settings = settings
        self.routes = routes
        self.runner = runner
        self.errors = errors

    def build(
        self, endpoint: Endpoint, path: str, params: dict[str, Any]
    ) -> tuple[Reply, bool] | None:
        """Run a static GET as at build time: the reply, and whether the handler made it.

        ``None`` when the handler called ``cookies()``, ``headers()`` or
        ``session()``: the build is abandoned and the route is dynamic from
        then on.
        """
        environ = self.environ(path)
        context = contextvars.Context()
        cause = _observed_request()
        if cause is None or not cause.observers.builds:
            return context.run(self._build_here, endpoint, environ, params, None)
        build = cause.build_exchange(environ, endpoint.template)
        build.context = context
        return context.run(self._observed_build, endpoint, environ, params, build)

    def _observed_build(
        self, endpoint: Endpoint, environ: dict[str, Any], params: dict[str, Any], build: Exchange
    ) -> tuple[Reply, bool] | None:
        """A build the request's observers see start and end, in the build's context."""
        build.build_begins()
        try:
            built = self._build_here(endpoint, environ, params, build)
        except BaseException as exc:  # BuildFailed: the cache answers the request live
            build.error = exc.__cause__ or exc
            raise
        else:
            if built is not None:
                build.status = built[0][0]
            return built
        finally:
            build.build_ends()

    def _build_here(
        self,
        endpoint: Endpoint,
        environ: dict[str, Any],
        params: dict[str, Any],
        build: Exchange | None,
    ) -> tuple[Reply, bool] | None:
        state = RequestState(
            self.settings, self.routes, environ, endpoint.config.dynamic, endpoint.source
        )
        state.exchange = build
        bind(state)  # this context is the build's alone: nothing to unbind
        try:
            reply = self.runner.run(endpoint, state, params)
        except DynamicUsage:
            reply = None
        finally:
            run_now()  # a provider's teardown: the build is its response
        if state.dynamic_call is not None:  # even if the handler caught the signal
            if reply is not None:
                close_body(reply[2])
            endpoint.dynamic_reason = f"calls {state.dynamic_call}"
            return None
        assert reply is not None
        if state.touched:  # force-static's own cookie writes: never stored
            reply = with_cookies(state, reply, self.errors)
        if state.failed and reply[0].startswith("5"):
            logger.error(
                "The static build of %s failed. A static GET runs as at build time: once, for"
                " the path alone, with no request and outside middleware. If it needs"
                " something per request (a value middleware set, a DB session), make it"
                ' dynamic with dynamic = "force-dynamic".',
                endpoint.source,
            )
        return reply, not state.failed

    def environ(self, path: str) -> dict[str, Any]:
        """The synthetic request a static build sees: the path, nothing from a client."""
        host = self.settings.static_host
        return {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": host,
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": host,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            BUILD_MARK: True,
        }


def _observed_request() -> Exchange | None:
    """The exchange of the request this build is for, when something observes it.

    A build runs for a live request (a MISS), or off it for a stale entry
    (``in_background`` hands the rebuild a copy of the request's context).
    """
    try:
        return active().exchange
    except LookupError:  # no request: nothing observes this build
        return None
