"""The server's access records: who writes the line for each request, and how.

A server's :class:`~.reaper.Connections` holds an :class:`AccessWriter`, or
None for no access log; the connection calls it once a response has ended
(and for a request refused while parsing, with ``-`` for its line). Two
writers exist:

* :func:`write_record`, ``microroute run``'s: a ``microroute.access`` record
  (:mod:`microroute.logs`) for what the app does not log itself — a
  microroute ``App`` writes its own, with the route and request id, and
  marks the environ so — such as another WSGI app, or a refusal::

      127.0.0.1 "GET /x HTTP/1.1" 200 27 0.4ms

* the gunicorn worker's, through gunicorn's own access logger
  (:meth:`microroute.gunicorn.Worker.write_access`), so ``--access-logfile``
  and ``--access-logformat`` work as under ``-k gevent``.

Neither writes a line for a request the app marked :data:`~microroute.logs.QUIET`
(health probes).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from ..logs import LOGGED, QUIET, access_logger

__all__ = ["LOGGED", "QUIET", "AccessWriter", "log_line", "write_record"]


class AccessWriter(Protocol):
    """Writes one request's access line, once its response has ended."""

    def __call__(
        self,
        environ: dict[str, Any],
        status: str,
        headers: list[tuple[str, str]],
        sent: int,
        seconds: float,
    ) -> None:
        """*status* is the status line's text (``"200 OK"``), *sent* the body's bytes."""


def write_record(
    environ: dict[str, Any],
    status: str,
    headers: list[tuple[str, str]],
    sent: int,
    seconds: float,
) -> None:
    """``microroute run``'s writer: a ``microroute.access`` record, unless the app wrote one."""
    if LOGGED in environ or QUIET in environ:
        return
    method = environ.get("REQUEST_METHOD")
    line = f"{method} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}" if method else "-"
    log_line(environ.get("REMOTE_ADDR") or "-", line, status[:3] or "000", sent, seconds * 1000)


def log_line(remote: str, line: str, status: str, sent: int, took: float) -> None:
    """One access record: *remote* ``"-"`` when the client's address is unknown."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    method, _, rest = line.partition(" ")
    path = rest.rsplit(" ", 1)[0].split("?", 1)[0] if rest else None
    access_logger.info(
        '%s "%s" %s %d %.1fms',
        remote,
        line,
        status,
        sent,
        took,
        extra={
            "method": method if rest else None,
            "path": path,
            "route": None,
            "status": int(status) if status.isdigit() else 0,
            "bytes": sent,
            "duration_ms": round(took, 3),
            "client": remote,
            "cache": None,
            "disconnected": False,
        },
    )
