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
"""

from __future__ import annotations

from collections import deque
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools

from .limits import MAX_HEADER_BYTES, MAX_HEADERS, MAX_REQUEST_LINE, READ_SIZE
from .reaper import Connections
from .request import ParsedRequest

__all__ = ["Reject", "RequestParser"]

_HEADERS_TOO_LARGE = "431 Request Header Fields Too Large"
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
        #: The bytes fed since the current message's head began (its request line in them).
        self._raw: bytes | bytearray = b""
        self._url = b""
        #: The method of the message being parsed, once its request target began.
        self._method = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0

    # -- llhttp's callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
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
        # llhttp takes "GET  /x" as "GET /x": a proxy might not. One space each, exactly.
        line = b"%b %b HTTP/%b\r\n" % (method, url, version.encode())
        if line not in self._raw:
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
        self.parsing = request
        self.ready.append(request)

    def on_body(self, body: bytes) -> None:
        request = self.parsing
        if request is not None:
            request.body += body
            request.received += len(body)

    def on_message_complete(self) -> None:
        if self.parsing is not None:
            self.parsing.complete = True
            self.parsing.continue_ = False
            self.parsing = None

    # -- bytes in ------------------------------------------------------------------------

    def feed(self, data: bytes) -> bool:
        """Parse *data*; False once nothing more can be parsed: the connection must end."""
        while True:
            if self.in_head:  # a head arriving in pieces: keep them together, amortised
                raw = self._raw
                if type(raw) is bytes:
                    raw = self._raw = bytearray(raw)
                raw += data
            else:
                self._raw = data
            if self.in_head or self.parsing is None:
                self._head_bytes += len(data)
                # llhttp holds a partial header line in memory: bound it before it grows.
                if self._head_bytes > MAX_HEADER_BYTES + MAX_REQUEST_LINE + READ_SIZE:
                    self._refuse(Reject(_HEADERS_TOO_LARGE, "Request header fields too large"))
                    return False
            try:
                self._llhttp.feed_data(data)
            except httptools.HttpParserUpgrade as upgrade:
                rest = self._upgrade_ignored(data, upgrade.args[0])
                if rest is None:
                    return False
                data = rest
                if data:
                    continue
            except httptools.HttpParserError as exc:
                cause = exc.__context__
                if isinstance(cause, Reject):
                    self._refuse(cause)
                else:
                    self._refuse(Reject("400 Bad Request", f"Bad Request: {exc}"))
                return False
            finally:
                if not self.in_head:
                    self._raw = b""
            return True

    def _upgrade_ignored(self, data: bytes, offset: int) -> bytes | None:
        """The bytes after a request offering an upgrade, to parse as HTTP/1.1; None if none can be.

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
            return None
        return data[offset:]

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
