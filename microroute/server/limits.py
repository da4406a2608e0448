"""What a client may send and how long it may take: every limit the server enforces.

The parser checks the sizes while it reads a request's head (a 414, 431 or
400 answers a head past them, and the connection closes); the reaper ends a
connection that waits past a timeout. ``microroute run --timeout-keep-alive``
and ``--timeout-io`` override the two timeouts; gunicorn's ``--keep-alive``
sets the first for its worker.
"""

from __future__ import annotations

__all__ = [
    "IO_TIMEOUT",
    "KEEPALIVE_TIMEOUT",
    "MAX_DRAIN",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_REQUEST_LINE",
    "READ_SIZE",
]

#: Bytes the request's header section may take, all lines together (431 past it).
MAX_HEADER_BYTES = 64 * 1024
#: Header lines a request may have (400 past it).
MAX_HEADERS = 100
#: Bytes the request target may take (414 past it).
MAX_REQUEST_LINE = 8 * 1024
#: Bytes asked of the socket at a time.
READ_SIZE = 64 * 1024
#: Unread request body a connection discards to stay open; past it, it closes.
MAX_DRAIN = 1024 * 1024
#: Seconds a keep-alive connection may wait for its next request: longer than
#: the idle timeouts of nginx's upstream pools and cloud load balancers (60 s),
#: so a proxy never sends a request on a connection we are closing.
KEEPALIVE_TIMEOUT = 65.0
#: Seconds a read or write may wait in the middle of a request or response.
IO_TIMEOUT = 30.0
