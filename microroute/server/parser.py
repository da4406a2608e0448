"""The request parser: llhttp's callbacks, bytes in, parsed requests (or refusals) out, in order.

The parsing half of a connection, with no socket in it, on uvicorn's
``httptools_impl`` model: :meth:`RequestParser.feed` hands bytes to llhttp
(Node's parser, strict: no obs-fold, no bare LF, conflicting framing
refused), whose callbacks — ``on_message_begin``, ``on_url``, ``on_header``,
``on_headers_complete``, ``on_body``, ``on_message_complete`` — build each
request's WSGI environ straight from the wire. A request whose head is
complete joins :attr:`RequestParser.ready`; several may, when a client
pipelines. A head that breaks a rule becomes a :class:`Reject` in that queue
instead, answered in turn, after which the connection ends; a body whose
framing breaks marks its request ``broken`` (the app reading it gets
:class:`~.request.MalformedBody`), and the connection ends after its answer.

The limits (:mod:`.limits`) are checked as the head arrives: request target
8 KiB (414), header section 64 KiB (431), 100 header lines (400). Beyond
llhttp's own rules, a request line must have single spaces (a proxy might
read ``GET  /x`` otherwise), ``Transfer-Encoding`` may only be ``chunked``
and only on HTTP/1.1, and header names with ``_`` are dropped, as gunicorn
drops them (``X_Forwarded_For`` would pose as ``X-Forwarded-For``).

**Pieces.** llhttp reports no positions, yet the single-space rule needs the
request line's own bytes, and nothing else should be kept: a read may end
anywhere, in the middle of the next request's head. So :meth:`RequestParser.feed`
hands llhttp each read in pieces cut where a message can end (after a
``CRLF CRLF``, or where a ``Content-Length`` body ends): every message then
begins at the start of a piece, where :meth:`~RequestParser.on_message_begin`
takes its request line. What a connection holds is bounded by the limits
whatever the client's segmentation: the request line, the header section
llhttp has not finished, one read, and :data:`~.limits.MAX_PIPELINED`
requests parsed ahead (the rest of a read waits unparsed in
:attr:`~RequestParser.backlog`, and nothing more is read until they are
answered).
"""

from __future__ import annotations

from collections import deque
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools

from .limits import MAX_HEADER_BYTES, MAX_HEADERS, MAX_PIPELINED, MAX_REQUEST_LINE
from .reaper import Connections
from .request import ParsedRequest

__all__ = ["Reject", "RequestParser"]

_HEADERS_TOO_LARGE = "431 Request Header Fields Too Large"
#: What a request line holds beside its target: the method, two spaces, HTTP/1.1.
_METHOD_AND_VERSION = 64
#: The bytes of the empty lines a client may send before a request line (llhttp skips them).
_EMPTY_LINE_BYTES = (b"\r", b"\n")
#: Header keys looked at before they go in the environ: framing, or no ``HTTP_`` prefix.
_SPECIAL_KEYS = frozenset(
    {"CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING", "HTTP_EXPECT"}
)


#: Header name -> environ key (``b"X-Id"`` -> ``"HTTP_X_ID"``), learnt as names come.
_ENVIRON_KEYS: dict[bytes, str] = {}
#: Names learnt at most: a client inventing names cannot grow the table without bound.
_ENVIRON_KEYS_MAX = 1024


def _environ_key(name: bytes) -> str:
    """The environ key of header *name*; ``""`` for a name with ``_`` (dropped)."""
    if b"_" in name:
        return ""
    key = name.decode("latin-1").upper().replace("-", "_")
    if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        key = "HTTP_" + key
    if len(_ENVIRON_KEYS) < _ENVIRON_KEYS_MAX:
        _ENVIRON_KEYS[name] = key
    return key


class Reject(Exception):
    """A request the parser refused: answered with *status* and closed."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        #: The refused request was a HEAD: its answer has no body either.
        self.head = False
        #: It may have been: no body, and no Content-Length to promise one.
        self.unsized = False


class RequestParser:
    """One connection's requests: bytes in (:meth:`feed`), parsed requests out (:attr:`ready`)."""

    def __init__(self, base: dict[str, Any], server: Connections | None = None) -> None:
        #: The environ keys every request on the connection shares: each starts as a copy.
        self.base = base
        #: Its clock (:attr:`Connections.tick`) times how long a head takes to arrive.
        self.server = server
        self._llhttp = httptools.HttpRequestParser(self)
        #: Requests parsed through their headers, waiting to be served, in order.
        self.ready: deque[ParsedRequest | Reject] = deque()
        #: The request llhttp is in the middle of (its body may still arrive).
        self.parsing: ParsedRequest | None = None
        #: A request's head has begun and is not complete yet.
        self.in_head = False
        #: The tick at which the request being parsed began: its head has IO_TIMEOUT in all.
        self.head_began = 0
        #: Bytes fed since the current message began, while its head was incomplete.
        self._head_bytes = 0
        #: Bytes read but not parsed: requests pipelined beyond MAX_PIPELINED (one read at most).
        self.backlog = b""
        #: The piece llhttp is parsing (see :meth:`feed`): a message begins at its start.
        self._piece = b""
        #: The last bytes of the previous read, for a CRLF CRLF cut in two.
        self._tail = b""
        #: Bytes of a Content-Length body still to come (-1: not in one).
        self._body_left = -1
        #: The current message's request line, without its CRLF.
        self._request_line = b""
        #: The request line while it arrives in pieces (None once whole).
        self._line: bytearray | None = None
        self._url = b""
        #: The method of the message being parsed, once its request target began.
        self._method = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0

    # -- llhttp's callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        # The message begins at the start of the piece, after the empty lines
        # RFC 9112 §2.2 lets a client send first: its request line is there.
        piece = self._piece
        start = 0
        while piece[start : start + 1] in _EMPTY_LINE_BYTES:
            start += 1
        end = piece.find(b"\r\n", start)
        if end >= 0:
            self._request_line = piece[start:end]
            self._line = None
        else:
            self._request_line = b""
            self._line = bytearray(piece[start:])
        self._method = b""
        self.in_head = True
        if self.server is not None:
            self.head_began = self.server.tick
        self._head_bytes = 0
        self._url = b""
        self._headers = []
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        if not self._url:  # the method is read by now: a refusal of a HEAD sends no body
            self._method = self._llhttp.get_method()
        self._url += url
        if len(self._url) > MAX_REQUEST_LINE:
            raise Reject("414 URI Too Long", "URI too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > MAX_HEADER_BYTES:
            raise Reject(_HEADERS_TOO_LARGE, "Request header fields too large")
        if len(self._headers) > MAX_HEADERS:
            raise Reject("400 Bad Request", f"More than {MAX_HEADERS} header fields")

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self._llhttp
        environ = self.base.copy()
        method = parser.get_method()
        environ["REQUEST_METHOD"] = method.decode("ascii")
        url = self._url
        environ["RAW_URI"] = environ["REQUEST_URI"] = url.decode("latin-1")
        if url[:1] == b"/":
            path, _, query = url.partition(b"?")
            path = path.partition(b"#")[0]
            query = query.partition(b"#")[0]
        elif url == b"*":
            path, query = b"*", b""
        else:  # absolute-form: GET http://host/path HTTP/1.1
            try:
                parsed = httptools.parse_url(url)
            except httptools.HttpParserInvalidURLError:
                raise Reject("400 Bad Request", "Invalid request target") from None
            path, query = parsed.path or b"/", parsed.query or b""
        environ["PATH_INFO"] = (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1")
        environ["QUERY_STRING"] = query.decode("latin-1")
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise Reject("400 Bad Request", f"Unsupported HTTP version {version}")
        # llhttp takes "GET  /x" as "GET /x": a proxy might not. One space each, exactly,
        # in the bytes of the request line itself.
        if self._request_line != b"%b %b HTTP/%b" % (method, url, version.encode()):
            raise Reject("400 Bad Request", "Malformed request line")
        environ["SERVER_PROTOCOL"] = "HTTP/" + version
        chunked = False
        request = ParsedRequest(environ, parser.should_keep_alive(), version)
        for name, value in self._headers:
            key = _ENVIRON_KEYS.get(name) or _environ_key(name)
            if not key:
                continue  # X_Forwarded_For would pose as X-Forwarded-For: dropped, as gunicorn does
            text = value.decode("latin-1")
            if key in _SPECIAL_KEYS:
                if key == "HTTP_TRANSFER_ENCODING":
                    # llhttp decodes chunked; anything else would hand the app coded bytes,
                    # and HTTP/1.0 has no chunked at all (RFC 9112 §6.1).
                    if text.strip().lower() != "chunked" or chunked or version == "1.0":
                        raise Reject("400 Bad Request", "Unsupported Transfer-Encoding")
                    chunked = True
                elif key == "HTTP_EXPECT":
                    request.continue_ = text.strip().lower() == "100-continue"
                else:  # CONTENT_TYPE, CONTENT_LENGTH: no HTTP_ prefix (PEP 3333)
                    environ[key] = text
                    continue
            if key in environ:
                environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + text
            else:
                environ[key] = text
        length = environ.get("CONTENT_LENGTH", "")
        self._body_left = int(length) if length.isdigit() and not chunked else -1
        self.parsing = request
        self.ready.append(request)

    def on_body(self, body: bytes) -> None:
        request = self.parsing
        if request is not None:
            request.body += body
            request.received += len(body)

    def on_message_complete(self) -> None:
        self._body_left = -1
        if self.parsing is not None:
            self.parsing.complete = True
            self.parsing.continue_ = False
            self.parsing = None

    # -- bytes in ------------------------------------------------------------------------

    def feed(self, data: bytes) -> bool:
        """Parse *data*; False once nothing more can be parsed: the connection must end.

        Once :data:`~.limits.MAX_PIPELINED` requests wait to be answered, the
        rest of *data* is kept as :attr:`backlog` (see :meth:`resume`).
        """
        pos, size = 0, len(data)
        while pos < size:
            if len(self.ready) >= MAX_PIPELINED and self.parsing is None and not self.in_head:
                self.backlog = data[pos:]
                self._tail = b""
                return True
            left = self._body_left
            end = min(size, pos + left) if left >= 0 else self._next_end(data, pos)
            if not self._feed_piece(data[pos:end] if pos or end < size else data):
                return False
            pos = end
        self._tail = (self._tail + data[-3:])[-3:]  # a read may be shorter than 3 bytes
        return True

    def resume(self) -> bool:
        """Parse the :attr:`backlog` (the connection has answered what was queued)."""
        data, self.backlog = self.backlog, b""
        return self.feed(data)

    def _next_end(self, data: bytes, pos: int) -> int:
        """Where the piece from *pos* ends: just after the next ``CRLF CRLF``, or at the end.

        A head ends at its first ``CRLF CRLF`` (llhttp allows no bare CR or LF),
        and so does a chunked body (``0 CRLF``, trailers, ``CRLF``). Splitting
        at every one, and where a ``Content-Length`` body ends, makes every
        message end at the end of a piece; splitting more often changes nothing
        for llhttp, which parses a stream. The last bytes of the previous read
        (:attr:`_tail`) catch a ``CRLF CRLF`` cut in two.
        """
        tail = self._tail
        if pos == 0 and tail:
            found = (tail + data[:3]).find(b"\r\n\r\n")
            if found >= 0:
                return found + 4 - len(tail)
        found = data.find(b"\r\n\r\n", pos)
        return len(data) if found < 0 else found + 4

    def _feed_piece(self, piece: bytes) -> bool:
        """Hand one piece to llhttp; False once nothing more can be parsed."""
        line = self._line
        if line is not None:  # a request line arriving in pieces: up to its LF, bounded
            end = piece.find(b"\n")
            line += piece if end < 0 else piece[: end + 1]
            if end >= 0:
                self._request_line = bytes(line).removesuffix(b"\r\n")
                self._line = None
            elif len(line) > MAX_REQUEST_LINE + _METHOD_AND_VERSION:
                self._refuse(Reject("414 URI Too Long", "URI too long"))
                return False
        if self.in_head:
            # httptools holds a header line until it ends: bound the head before it grows.
            self._head_bytes += len(piece)
            if self._head_bytes > MAX_HEADER_BYTES + MAX_REQUEST_LINE:
                self._refuse(Reject(_HEADERS_TOO_LARGE, "Request header fields too large"))
                return False
        if self._body_left >= 0:
            self._body_left -= len(piece)
        self._piece = piece
        try:
            self._llhttp.feed_data(piece)
        except httptools.HttpParserUpgrade as upgrade:
            if not self._upgrade_ignored():
                return False
            rest = piece[upgrade.args[0] :]
            if rest:  # never, a piece ending with the head; but should it not, parse it too
                return self._feed_piece(rest)
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, Reject):
                self._refuse(cause)
            else:
                self._refuse(Reject("400 Bad Request", f"Bad Request: {exc}"))
            return False
        finally:
            self._piece = b""
        return True

    def _upgrade_ignored(self) -> bool:
        """Whether parsing goes on after a request offering an upgrade.

        llhttp stops after the head of a request with ``Upgrade`` (h2c,
        WebSocket) or a ``CONNECT``. Upgrades are not offered here, so the
        offer is ignored (RFC 9110 §7.8) and the next bytes are the next
        request, as on any keep-alive connection. After a ``CONNECT`` they
        would be a tunnel's: the connection ends after its answer.
        """
        request = self.ready[-1]
        assert isinstance(request, ParsedRequest)
        environ = request.environ
        with_body = "HTTP_TRANSFER_ENCODING" in environ or environ.get("CONTENT_LENGTH", "0") != "0"
        if environ["REQUEST_METHOD"] == "CONNECT" or with_body:
            request.keep_alive = False  # its answer says Connection: close
            return False
        return True

    def _refuse(self, reject: Reject) -> None:
        # A client that wrote "HEAD /..." reads the answer as one to a HEAD: no body.
        # Refused before its target, the method may be unknown (llhttp keeps the
        # last one it read): then no body and no length, which reads the same
        # either way on a connection that closes at once.
        if self.in_head and self._method:
            reject.head = self._method == b"HEAD"
        elif self._llhttp.get_method() == b"HEAD":
            reject.unsized = True
        request = self.parsing
        if request is not None:
            # Broken in its body (its head was fine, so it is answered in turn):
            # the app reading it gets MalformedBody, a 400; then the connection ends,
            # which its answer says unless it went out before the body was read.
            request.complete = True
            request.broken = reject.message
            request.keep_alive = False
            self.parsing = None
            return
        self.ready.append(reject)
