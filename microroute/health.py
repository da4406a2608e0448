"""Liveness and readiness for load balancers and orchestrators: ``GET /healthz``, ``GET /readyz``.

::

    app = App(route, health=True)

    @app.ready_check
    def database():
        return db.ping()            # falsy, or raising: not ready

* ``/healthz`` answers 200 while the process serves: it is alive.
* ``/readyz`` answers 200 when it is ready for traffic, and 503 from the
  moment a graceful stop begins (SIGTERM, a gunicorn reload, ``--max-requests``)
  and while a check added with :meth:`Health.add` returns a falsy value or
  raises. A load balancer that polls it takes the instance out before the
  server stops accepting (``--drain-delay``).

A server tells the app its stop began through the environ
(:data:`~microroute.stopping.STOPPING`): ``microroute run`` and the gunicorn
worker do; ``gunicorn -k gevent`` does not, so there only the checks count.

The probes are answered before middleware, never cached (``Cache-Control:
no-store``), and never logged at INFO: the environ is marked
:data:`~microroute.logs.QUIET`, so servers write no access line, and a check
that fails is logged at DEBUG. Both paths are routes of the app's table
(``microroute routes`` lists them); only ``GET`` and ``HEAD`` are answered
early, anything else is the table's (a 405 with ``Allow``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from .logs import QUIET
from .responses import encode_json
from .routing import Router
from .stopping import STOPPING

__all__ = ["HEALTHZ", "READYZ", "Health"]

logger = logging.getLogger("microroute")

#: The liveness path: 200 while the process serves.
HEALTHZ = "/healthz"
#: The readiness path: 200 when ready, 503 once stopping or while a check fails.
READYZ = "/readyz"

Check = Callable[[], Any]
_PROBED_METHODS = ("GET", "HEAD")
_HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store")]


class Health:
    """The two probes of one app, and its readiness checks."""

    __slots__ = ("checks",)

    def __init__(self) -> None:
        #: Functions called for each ``/readyz``, in order; falsy or raising: not ready.
        self.checks: list[Check] = []

    def add(self, check: Check) -> Check:
        """Add a readiness check (``app.ready_check``); returns it, so it can decorate."""
        if not callable(check):
            raise TypeError(f"ready_check() takes a function, got {type(check).__name__}")
        self.checks.append(check)
        return check

    def router(self) -> Router:
        """The routes that put both probes in the app's table (and answer other methods)."""
        router = Router()
        router.add(HEALTHZ, healthz, methods=["GET"], dynamic="force-dynamic")
        router.add(READYZ, readyz, methods=["GET"], dynamic="force-dynamic")
        return router

    def answers(self, environ: dict[str, Any]) -> bool:
        """Whether this request is a probe answered here, before anything else runs."""
        return (
            environ.get("PATH_INFO") in (HEALTHZ, READYZ)
            and environ.get("REQUEST_METHOD") in _PROBED_METHODS
        )

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ[QUIET] = True
        if environ["PATH_INFO"] == HEALTHZ:
            status, body = "200 OK", {"status": "ok"}
        else:
            status, body = self._readiness(environ)
        data = encode_json(body)
        start_response(status, [*_HEADERS, ("Content-Length", str(len(data)))])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [data]

    def _readiness(self, environ: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        server = environ.get(STOPPING)
        if server is not None and server.stopping:
            return "503 Service Unavailable", {"status": "stopping"}
        failed = []
        for check in self.checks:
            name = getattr(check, "__qualname__", None) or repr(check)
            try:
                ok = check()
            except Exception:
                logger.debug("Readiness check %s raised", name, exc_info=True)
                ok = False
            if not ok:
                logger.debug("Readiness check %s failed", name)
                failed.append(name)
        if failed:
            return "503 Service Unavailable", {"status": "not ready", "failed": failed}
        return "200 OK", {"status": "ready"}


def healthz() -> dict[str, str]:
    """Liveness (the route-table entry; the probe itself is answered before middleware)."""
    return {"status": "ok"}


def readyz() -> dict[str, str]:
    """Readiness (the route-table entry; the probe itself is answered before middleware)."""
    return {"status": "ready"}
