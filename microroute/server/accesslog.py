"""The server's access records, for what the app does not log itself.

A microroute ``App`` writes each request's ``microroute.access`` record
(:mod:`microroute.logs`) and marks the environ so; the server writes one for
anything else it served: another WSGI app, and a request refused while
parsing (``"-"`` as its line). Same logger, same message::

    127.0.0.1 "GET /x HTTP/1.1" 200 27 0.4ms
"""

from __future__ import annotations

import logging

from ..logs import LOGGED, access_logger

__all__ = ["LOGGED", "log_line"]


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
