"""The handler stage: call a handler's plan, coerce what it returns, render what it raises.

Shared by every path that runs a handler: a dynamic request, a static build,
a stale entry's rebuild, a HEAD served from GET. ``App(handler_timeout=...)``
bounds the call with ``gevent.Timeout``: past it, the client gets a 504. That
interrupts a handler only where its waits yield to gevent, so in a process gevent
has not monkey-patched (granian's threads, a test client) the first timed call
logs a warning naming the setting.
"""

from __future__ import annotations

import logging
from typing import Any

from .cache import BuildFailed
from .context import RequestState
from .errorpages import HANDLER_ERRORS, ErrorPages, status_of
from .errors import ControlFlow
from .handlers import Endpoint
from .replies import coerce
from .requests import Request
from .responses import JSON_TYPE, Reply, SafeHeaders, encode_json, error_reply, status_line

__all__ = ["Runner"]

logger = logging.getLogger("microroute")

_OK = status_line(200)
_JSON_TYPE = ("Content-Type", JSON_TYPE)


class Runner:
    """Runs one endpoint for one request; never raises what the handler raised."""

    __slots__ = ("errors", "timeout", "unchecked")

    def __init__(self, errors: ErrorPages, timeout: float | None) -> None:
        self.errors = errors
        self.timeout = timeout
        #: The timeout has not yet been checked against the process (see _warn_unpatched).
        self.unchecked = timeout is not None

    def run(self, endpoint: Endpoint, state: RequestState, params: dict[str, Any]) -> Reply:
        request = None
        if endpoint.needs_request:
            request = state.request
            request.params = params
        if self.timeout is not None:
            return self._run_with_timeout(endpoint, state, request, params)
        try:
            result = endpoint.invoke(request, params)
            if type(result) is dict:  # the most common return, without the coerce call
                body = encode_json(result)
                return _OK, SafeHeaders([_JSON_TYPE, ("Content-Length", str(len(body)))]), [body]
            return coerce(result, endpoint.source, state.environ)
        except HANDLER_ERRORS as exc:  # ControlFlow and gevent.Timeout are BaseExceptions
            return self._failed(exc, endpoint, state)

    def _run_with_timeout(
        self, endpoint: Endpoint, state: RequestState, request: Request | None, params: Any
    ) -> Reply:
        """Run a handler under ``gevent.Timeout``: past the limit, a 504."""
        import gevent

        if self.unchecked:
            self.unchecked = False
            _warn_unpatched(self.timeout)
        timeout = gevent.Timeout(self.timeout)
        timeout.start()
        try:
            return coerce(endpoint.invoke(request, params), endpoint.source, state.environ)
        except gevent.Timeout as fired:
            if fired is not timeout:  # the handler's own timeout: a 500 like any error
                return self._failed(fired, endpoint, state)
            logger.error(
                "%s did not finish within handler_timeout=%ss; answered 504",
                endpoint.source,
                self.timeout,
            )
            state.failed = True
            return error_reply(504, f"The handler did not finish within {self.timeout:g} seconds")
        except (Exception, ControlFlow) as exc:
            return self._failed(exc, endpoint, state)
        finally:
            timeout.close()

    def _failed(self, exc: BaseException, endpoint: Endpoint, state: RequestState) -> Reply:
        """The handler raised: its error page; in a static build, the build fails instead.

        A build of a route on ``dynamic = "auto"`` that raises anything but an
        HTTP error (``abort()``, ``HTTPError``) is not rendered or logged here:
        the cache answers the request live (:class:`~microroute.cache.BuildFailed`).
        """
        state.failed = True
        if state.build == "auto" and status_of(exc) is None:
            raise BuildFailed(exc) from exc
        return self.errors.render(exc, state.environ, endpoint.source)


def _warn_unpatched(seconds: float | None) -> None:
    """Say once, at the first timed call, that *seconds* cannot bound a blocking handler here.

    It is checked then rather than in ``App()``: gunicorn's gevent worker patches
    after a ``--preload`` import, but always before its first request. Unpatched, a
    ``time.sleep()`` or a plain socket read holds the thread and the timer with it.
    """
    from gevent import monkey

    if monkey.is_module_patched("socket"):
        return
    logger.warning(
        "App(handler_timeout=%g) cannot interrupt a handler that blocks in this process:"
        " gevent has not monkey-patched it (a threaded server such as granian, or a test"
        " client), so a handler waiting on plain I/O or time.sleep() runs on past the limit"
        " with no 504; only waits on gevent's own calls are bounded. Serve with"
        " `microroute run` or a gevent gunicorn worker, or drop handler_timeout.",
        seconds,
    )
