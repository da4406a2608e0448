"""The access log: one line on stderr a request, when ``microroute run --access-log`` asks.

::

    2024-05-01 12:00:00 127.0.0.1 "GET /x HTTP/1.1" 200 27 0.4ms

local time, client address, request line, status, body bytes sent, and the
milliseconds from the request's start to its last byte. A request refused
while parsing logs ``"-"`` as its line and ``0.0ms``.
"""

from __future__ import annotations

import sys
import time

from .dates import EverySecond

__all__ = ["log_line", "log_stamp"]

#: The access log's local timestamp.
log_stamp = EverySecond("%Y-%m-%d %H:%M:%S", time.localtime)


def log_line(remote: str, line: str, status: str, sent: int, took: float) -> None:
    """Print one access-log line: *remote* ``"-"`` when the client's address is unknown."""
    print(
        f'{log_stamp()} {remote} "{line}" {status} {sent} {took:.1f}ms',
        file=sys.stderr,
        flush=True,
    )
