"""A parsed request, and its body as the app reads it: ``wsgi.input``.

The parser makes a :class:`ParsedRequest` once a request's head is complete;
llhttp's decoded body bytes (chunked or not) are appended to its ``body`` as
they arrive. The connection hands the app an :class:`Input` over it, which
pulls more from the socket only when the app reads (a client that sent
``Expect: 100-continue`` is told to go on only then); what the app leaves
unread is discarded after the response, to reach the next request.

A body whose framing breaks (a bad chunk size) is reported to the app as
:class:`~.malformed.MalformedBody` on read, not when it is parsed: its head was fine, so
it is answered in turn (a 400), and then the connection closes.
"""

from __future__ import annotations

from typing import Any, Protocol

from .malformed import MalformedBody

__all__ = ["BodySource", "Input", "ParsedRequest"]

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class ParsedRequest:
    """One parsed request: its environ, body as it arrives, and how it framed itself."""

    __slots__ = (
        "body", "broken", "complete", "continue_", "environ", "head", "keep_alive", "received",
        "version",
    )  # fmt: skip

    def __init__(self, environ: dict[str, Any], keep_alive: bool, version: str) -> None:
        self.environ = environ
        #: The connection may serve another request after this one's response.
        self.keep_alive = keep_alive
        self.version = version
        self.head = environ["REQUEST_METHOD"] == "HEAD"
        self.body = bytearray()
        #: Body bytes parsed so far, read by the app or not.
        self.received = 0
        self.complete = False
        self.continue_ = False
        #: Why the body could not be parsed (a bad chunk size...), once it could not.
        self.broken: str | None = None

    def rest_fits(self, limit: int) -> bool:
        """Whether the body still to come can be discarded (*limit* bytes at most) to
        reach the next request; if not, the connection must close after the response.

        Only a ``Content-Length`` says how much is left. A chunked body may run on,
        or break, after the answer went out; a client waiting for ``100 Continue``
        may never send its body at all.
        """
        if self.complete:
            return True
        if self.continue_:
            return False
        length = self.environ.get("CONTENT_LENGTH", "")
        return length.isdigit() and int(length) - self.received <= limit


class BodySource(Protocol):
    """Where :class:`Input` gets more body from (:class:`.connection.Connection`)."""

    def send(self, data: bytes) -> None:
        """Write *data* to the client (``100 Continue``)."""

    def read_body(self) -> bool:
        """Read and parse more of the body; False if none will come."""


class Input:
    """``wsgi.input``: the body, pulled from the socket only as the app reads it."""

    __slots__ = ("_connection", "_request")

    def __init__(self, connection: BodySource, request: ParsedRequest) -> None:
        self._connection = connection
        self._request = request

    def _fill(self, size: int) -> None:
        request = self._request
        if request.continue_:
            request.continue_ = False
            self._connection.send(_CONTINUE)
        while not request.complete and (size < 0 or len(request.body) < size):
            if not self._connection.read_body():
                break  # the client went away: a short read
        if request.broken is not None:
            raise MalformedBody(f"Malformed request body: {request.broken}")

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        self._fill(size)
        body = self._request.body
        if size < 0 or size >= len(body):
            data = bytes(body)
            body.clear()
            return data
        data = bytes(body[:size])
        del body[:size]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        body = self._request.body
        while True:
            end = body.find(b"\n")
            if end >= 0 or self._request.complete or (0 <= size <= len(body)):
                break
            before = len(body)
            self._fill(before + 1)
            if len(body) == before:
                break
        cut = end + 1 if end >= 0 else len(body)
        if size >= 0:
            cut = min(cut, size)
        data = bytes(body[:cut])
        del body[:cut]
        return data

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")
