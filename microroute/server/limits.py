"""What a client may send and how long it may take: every limit the server enforces.

The parser checks the sizes while it reads a request's head (a 414 or 431
answers a head past them, and the connection closes): :class:`Limits`,
``microroute run``'s by default, gunicorn's ``--limit-request-line``,
``--limit-request-fields`` and ``--limit-request-field_size`` under its
worker. The reaper ends a connection that waits past a timeout.
``microroute run --timeout-keep-alive`` and ``--timeout-io`` override the two
timeouts; gunicorn's ``--keep-alive`` sets the first for its worker.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "IO_TIMEOUT",
    "KEEPALIVE_TIMEOUT",
    "LINGER",
    "MAX_DRAIN",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_PIPELINED",
    "MAX_REQUEST_LINE",
    "READ_SIZE",
    "STOP_IDLE",
    "Limits",
]

#: Bytes the request's header section may take, all lines together (431 past it).
MAX_HEADER_BYTES = 64 * 1024
#: Header lines a request may have (431 past it).
MAX_HEADERS = 100
#: Bytes the request line may take, its CRLF aside (414 past it).
MAX_REQUEST_LINE = 8 * 1024
#: Bytes asked of the socket at a time.
READ_SIZE = 64 * 1024
#: Pipelined requests parsed ahead of their answers; the rest of a read waits
#: unparsed, and nothing more is read until they are answered.
MAX_PIPELINED = 16
#: Unread request body a connection discards to stay open; past it, it closes.
MAX_DRAIN = 1024 * 1024
#: Seconds a keep-alive connection may wait for its next request: longer than
#: the idle timeouts of nginx's upstream pools and cloud load balancers (60 s),
#: so a proxy never sends a request on a connection we are closing.
KEEPALIVE_TIMEOUT = 65.0
#: Seconds a read or write may wait in the middle of a request or response.
IO_TIMEOUT = 30.0
#: Seconds a keep-alive connection must have been idle before a graceful stop
#: closes it. A proxy reuses first the connection it released last: that one
#: gets its next request soon, answered with ``Connection: close``, instead of
#: a close that could cross that request on the wire (a 502 at the proxy).
STOP_IDLE = 1.0
#: Seconds a connection the server closes keeps discarding what the client
#: still sends (a body it did not read, a pipelined request): closing with
#: unread bytes makes the kernel send a reset, which can destroy the answer
#: before the client reads it.
LINGER = 2.0


@dataclass(frozen=True)
class Limits:
    """What one request's head may hold: past ``request_line``, a 414; past the others, a 431.

    >>> Limits(request_line=4094, fields=100, field_size=8190)  # gunicorn's defaults
    Limits(request_line=4094, fields=100, field_size=8190, header_bytes=65536)
    """

    #: Bytes of the request line, its CRLF aside.
    request_line: int = MAX_REQUEST_LINE
    #: Header lines.
    fields: int = MAX_HEADERS
    #: Bytes of one header line (name, colon, value, CRLF).
    field_size: int = MAX_HEADER_BYTES
    #: Bytes of all header lines together.
    header_bytes: int = MAX_HEADER_BYTES
