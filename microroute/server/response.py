"""The response writer: what the app says through ``start_response``, framed for the wire.

One :class:`ResponseWriter` a request. It turns the app's status and headers
into a head with the framing the response needs — ``Content-Length`` when the
length is known (the app's, or that of a body given as a one-item list),
``chunked`` for an HTTP/1.1 stream, no body at all for HEAD, 1xx, 204 and
304 — and sends the head with the first body bytes in one write.

``Connection: close`` goes on every response after which the connection will
end, because a client (a proxy's keep-alive pool above all) that is not told
sends its next request into a closing socket: when the request asks for it,
when an HTTP/1.0 body has no length, when the request body still to come
cannot be discarded (a client waiting for ``100 Continue``, a chunked body,
more than :data:`~.limits.MAX_DRAIN`), once the server is stopping, and
always when keep-alive is off (gunicorn's ``--keep-alive 0``). The
app's ``Transfer-Encoding`` and ``Connection`` headers are the server's to
write: dropped (a ``close`` is honoured). A header that cannot go on the wire
(CR, LF, NUL, beyond latin-1) is a ``ValueError`` naming it, raised before
any byte is sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .dates import http_date
from .limits import MAX_DRAIN
from .reaper import Connections
from .request import ParsedRequest

__all__ = ["ResponseWriter", "Wire"]

_NO_BODY_STATUSES = frozenset({"204", "304"})
#: The lengths of the names the server frames with itself: Connection, Content-Length,
#: Transfer-Encoding (any other name goes out as the app wrote it, unlowered).
_FRAMING_LENGTHS = frozenset({10, 14, 17})
_LAST_CHUNK = b"0\r\n\r\n"


class Wire(Protocol):
    """What a :class:`ResponseWriter` writes through (:class:`.connection.Connection`)."""

    #: (seconds, payload) the app asked to have written whenever the response is idle.
    beat_wanted: tuple[float, bytes] | None
    #: Set once a streamed head is out: (seconds, payload framed for this response).
    beat: tuple[float, bytes] | None
    #: The server's connections (``stopping`` once a graceful stop began), or None.
    server: Connections | None
    #: Set once the head of a ``text/event-stream`` stream is out: a stop may end it.
    events: bool

    def send(self, data: bytes) -> None:
        """Write *data* to the client."""


class ResponseWriter:
    """What the app said through ``start_response``, and how it goes on the wire."""

    __slots__ = (
        "_head",
        "chunked",
        "connection",
        "headers",
        "headers_sent",
        "length",
        "request",
        "sent",
        "status",
    )  # fmt: skip

    def __init__(self, connection: Wire, request: ParsedRequest) -> None:
        self.connection = connection
        self.request = request
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.headers_sent = False
        self.chunked = False
        self.length: int | None = None
        self.sent = 0
        self._head = False

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status:
            raise AssertionError("start_response() called twice without exc_info")
        if not isinstance(status, str) or len(status) < 4 or not status[:3].isdigit():
            raise ValueError(f"invalid status line {status!r}")
        self.status = status
        self.headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable of PEP 3333: sent at once."""
        if not self.headers_sent:
            self._send_head(data, last=False)
        elif data:
            self._send_body(data)

    def _head_bytes(self, first: bytes | None, last: bool) -> bytes:
        """Status line and headers, with the framing this response needs."""
        if not self.status:
            raise AssertionError("the application returned without calling start_response()")
        request = self.request
        status = self.status
        length: int | None = None
        server = self.connection.server
        close = (
            not request.keep_alive
            or not (request.complete or request.rest_fits(MAX_DRAIN))
            or (server is not None and server.close_every)
        )
        lines = []
        for name, value in self.headers:
            if len(name) not in _FRAMING_LENGTHS:  # most names: not one the server frames with
                lines.append(f"{name}: {value}\r\n")
                continue
            lower = name.lower()
            if lower == "content-length":
                length = int(value) if value.isdigit() else -1
                if length < 0:
                    raise ValueError(f"invalid Content-Length header {value!r}")
                continue  # added back below, once, where the body has one
            elif lower == "connection":
                if "close" in value.lower():
                    close = True
                continue
            elif lower == "transfer-encoding":
                continue  # the server frames the body itself
            lines.append(f"{name}: {value}\r\n")
        no_body = request.head or status[:3] in _NO_BODY_STATUSES or status[0] == "1"
        if no_body:
            self._head = True
            if length is not None:
                lines.append(f"Content-Length: {length}\r\n")
        elif length is not None:
            lines.append(f"Content-Length: {length}\r\n")
        elif last:  # the whole body is known: its length too
            length = len(first) if first else 0
            lines.append(f"Content-Length: {length}\r\n")
        elif request.version == "1.1":
            self.chunked = True
            lines.append("Transfer-Encoding: chunked\r\n")
        else:
            close = True  # HTTP/1.0 without a length: the body ends when the connection does
        self.length = None if no_body else length
        if close:
            lines.append("Connection: close\r\n")
            request.keep_alive = False
        elif request.version == "1.0":
            lines.append("Connection: keep-alive\r\n")
        text = "".join(lines)
        count = len(lines)
        if text.count("\r") != count or text.count("\n") != count or "\x00" in text:
            raise ValueError(_bad_header(self.headers))
        try:
            return (f"HTTP/1.1 {status}\r\n{text}Date: {http_date()}\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(_bad_header(self.headers)) from None

    def _send_head(self, first: bytes | None, last: bool) -> None:
        head = self._head_bytes(first, last)
        self.headers_sent = True
        connection = self.connection
        wanted = connection.beat_wanted
        if wanted is not None and not self._head and not last and self.length is None:
            payload = wanted[1]
            framed = b"%x\r\n%b\r\n" % (len(payload), payload) if self.chunked else payload
            connection.beat = (wanted[0], framed)
        if not last and not self._head:  # a stream: an event stream's may be ended at a stop
            for name, value in self.headers:
                if name.lower() == "content-type":
                    connection.events = value[:17].lower() == "text/event-stream"
                    break
        if first and not self._head:
            first = self._frame(first)
            self.connection.send(head + first)
        else:
            self.connection.send(head)

    def _frame(self, data: bytes) -> bytes:
        if self.length is not None:
            if self.sent + len(data) > self.length:
                # More than the app promised: sending it would desync the connection.
                data = data[: self.length - self.sent]
            self.sent += len(data)
            return data
        self.sent += len(data)
        if self.chunked:
            return b"%x\r\n%b\r\n" % (len(data), data)
        return data

    def _send_body(self, data: bytes) -> None:
        if self._head:
            return
        framed = self._frame(data)
        if framed:
            self.connection.send(framed)

    def send_all(self, result: Iterable[bytes]) -> bool:
        """Send the app's body; True if the connection stays usable."""
        if type(result) is list and len(result) <= 1:  # the common case: one write in all
            first = result[0] if result else b""
            if not self.headers_sent:
                self._send_head(first, last=True)
            elif first:
                self._send_body(first)
        else:
            for chunk in result:
                if not chunk:
                    continue
                if not self.headers_sent:
                    self._send_head(chunk, last=False)
                else:
                    self._send_body(chunk)
            if not self.headers_sent:
                self._send_head(b"", last=True)
            elif self.chunked and not self._head:
                self.connection.send(_LAST_CHUNK)
        if self.length is not None and self.sent < self.length:
            return False  # fewer bytes than Content-Length: only closing tells the client
        return self.request.keep_alive

    def end_early(self) -> bool:
        """End a stream the server is ending (a stop): its last chunk; True to keep going.

        Only a chunked body can end before the app's last chunk and still be
        whole; an HTTP/1.0 stream ends when the connection does.
        """
        if not self.chunked:
            return False
        if not self._head:
            self.connection.send(_LAST_CHUNK)
        return self.request.keep_alive

    def fail(self) -> None:
        """Answer 500 when the app failed before any byte went out."""
        body = b'{"error":"Internal Server Error"}'
        self.request.keep_alive = False
        self.status = "500 Internal Server Error"
        with contextlib.suppress(OSError):
            self.connection.send(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\nDate: %b\r\n\r\n%b"
                % (len(body), http_date().encode(), body)
            )


def _bad_header(headers: list[tuple[str, str]]) -> str:
    """The error naming the header that cannot go on the wire."""
    for name, value in headers:
        text = f"{name}{value}"
        if any(c in text for c in "\r\n\x00"):
            return f"response header {name!r} holds CR, LF or NUL"
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            return f"response header {name!r} is not latin-1: encode it (RFC 9110 §5.5)"
    return "invalid response headers"
