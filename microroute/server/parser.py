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

The limits (:class:`~.limits.Limits`) are checked as the head arrives:
``microroute run``'s are a request line of 8 KiB (414 past it), a header
section of 64 KiB and 100 header lines (431); the gunicorn worker takes
gunicorn's ``--limit-request-*`` settings. Beyond
llhttp's own rules (RFC 9112): a request line must have single spaces (a
proxy might read ``GET  /x`` otherwise); an HTTP/1.1 request needs exactly
one ``Host`` (400 otherwise), and an absolute-form target's host replaces it
(§3.2.2); ``Transfer-Encoding`` may only be ``chunked`` and only on
HTTP/1.1; trailing spaces and tabs are no part of a field value (§5); an
HTTP/1.0 client is never sent ``100 Continue`` (RFC 9110 §10.1.1); header
names with ``_`` are dropped, as gunicorn drops them (``X_Forwarded_For``
would pose as ``X-Forwarded-For``).

**Beyond llhttp's methods.** llhttp knows a fixed list of methods and refuses
any other, yet RFC 9110 §9.1 lets an origin define its own (``PURGE`` is on
the list, ``FROB`` is not). A method llhttp refuses that is a token of 3 to
20 characters, none lower case (gunicorn's default rule), is parsed by a
fresh llhttp given ``GET`` in its place, and the app sees the real one.
**Upgrade offers** (``Upgrade: h2c`` from ``curl --http2``, a WebSocket
handshake) are ignored, as RFC 9110 §7.8 allows: llhttp stops after such a
head and takes the request for body-less, so a body it has is handed to
llhttp behind a made-up head that frames it, and parsing goes on. A
``CONNECT`` ends the connection after its answer.

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

import re
from collections import deque
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools

from .limits import MAX_PIPELINED, Limits
from .reaper import Connections
from .request import ParsedRequest

__all__ = ["Reject", "RequestParser"]

_HEADERS_TOO_LARGE = "431 Request Header Fields Too Large"
#: microroute run's limits, for a parser with no server.
_DEFAULT_LIMITS = Limits()
#: The bytes of the empty lines a client may send before a request line (llhttp skips them).
_EMPTY_LINE_BYTES = (b"\r", b"\n")
#: Header keys looked at before they go in the environ: framing, or no ``HTTP_`` prefix.
_SPECIAL_KEYS = frozenset(
    {"CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING", "HTTP_EXPECT", "HTTP_HOST"}
)
#: A method llhttp does not know that is served all the same: gunicorn's default rule
#: (an RFC 9110 token of 3 to 20 characters, no lower case, no ``#``).
_EXTENSION_METHOD = re.compile(rb"[!$%&'*+\-.^_`|~0-9A-Z]{3,20}").fullmatch
#: What llhttp is given in place of an extension method: framing does not depend on it.
_STAND_IN = b"GET"


#: The methods' texts (``REQUEST_METHOD``), made once.
_METHODS = {
    m: m.decode() for m in (b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS")
}
#: llhttp's HTTP version -> (``SERVER_PROTOCOL``, the request line's end): the versions served.
_PROTOCOLS = {"1.1": ("HTTP/1.1", b" HTTP/1.1"), "1.0": ("HTTP/1.0", b" HTTP/1.0")}


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


def _bad_request(message: str) -> Reject:
    return Reject("400 Bad Request", message)


class RequestParser:
    """One connection's requests: bytes in (:meth:`feed`), parsed requests out (:attr:`ready`)."""

    def __init__(self, base: dict[str, Any], server: Connections | None = None) -> None:
        #: The environ keys every request on the connection shares: each starts as a copy.
        self.base = base
        #: Its clock (:attr:`Connections.tick`) times how long a head takes to arrive.
        self.server = server
        limits = server.limits if server is not None else _DEFAULT_LIMITS
        self._max_line = limits.request_line
        self._max_fields = limits.fields
        self._max_field = limits.field_size
        self._max_header_bytes = limits.header_bytes
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
        #: Where in the piece the current message began, if it began in this piece.
        self._began_at = -1
        #: The last bytes of the previous read, for a CRLF CRLF cut in two.
        self._tail = b""
        #: Bytes of a Content-Length body still to come (-1: not in one).
        self._body_left = -1
        #: The current message's request line, without its CRLF.
        self._request_line = b""
        #: The request line while it arrives in pieces (None once whole).
        self._line: bytearray | None = None
        #: The extension method llhttp parses as _STAND_IN, for the current message.
        self._extension = b""
        #: llhttp refused a method that has not ended yet: it is fed again once it has.
        self._method_pending = False
        #: The request whose body follows a made-up head (see :meth:`_upgrade_ignored`).
        self._continuing: ParsedRequest | None = None
        self._url = b""
        #: The method of the message being parsed, once its request target began.
        self._method = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0

    # -- llhttp's callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._continuing is not None:
            return  # the made-up head in front of a body: nothing of it is kept
        # The message begins at the start of the piece, after the empty lines
        # RFC 9112 §2.2 lets a client send first: its request line is there.
        piece = self._piece
        start = 0
        while piece[start : start + 1] in _EMPTY_LINE_BYTES:
            start += 1
        self._began_at = start
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
        if self._continuing is not None:
            return
        if not self._url:  # the method is read by now: a refusal of a HEAD sends no body
            self._method = self._extension or self._llhttp.get_method()
        self._url += url
        if len(self._url) > self._max_line:
            raise Reject("414 URI Too Long", "URI too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._continuing is not None:
            return
        self._headers.append((name, value))
        size = len(name) + len(value) + 4  # name: value CRLF
        self._header_bytes += size
        if self._header_bytes > self._max_header_bytes or size > self._max_field:
            raise Reject(_HEADERS_TOO_LARGE, "Request header fields too large")
        if len(self._headers) > self._max_fields:
            raise Reject(_HEADERS_TOO_LARGE, f"More than {self._max_fields} header fields")

    def on_headers_complete(self) -> None:
        continuing = self._continuing
        if continuing is not None:  # the made-up head: its body is that request's
            self._continuing = None
            self.parsing = continuing
            length = continuing.environ.get("CONTENT_LENGTH", "")
            chunked = "HTTP_TRANSFER_ENCODING" in continuing.environ
            self._body_left = int(length) if length.isdigit() and not chunked else -1
            return
        self.in_head = False
        parser = self._llhttp
        environ = self.base.copy()
        method = self._method or self._extension or parser.get_method()  # read at on_url
        self._extension = b""
        environ["REQUEST_METHOD"] = _METHODS.get(method) or method.decode("ascii")
        url = self._url
        environ["RAW_URI"] = environ["REQUEST_URI"] = url.decode("latin-1")
        target_host = ""
        if url[:1] == b"/":
            path, _, query = url.partition(b"?")
            if b"#" in url:
                path = path.partition(b"#")[0]
                query = query.partition(b"#")[0]
        elif url == b"*":
            path, query = b"*", b""
        else:  # absolute-form: GET http://host/path HTTP/1.1
            try:
                # Any: httptools' stubs say bytes and int where each may be None
                # (compiled with mypyc, a value is checked against its declared type).
                parsed: Any = httptools.parse_url(url)
            except httptools.HttpParserInvalidURLError:
                raise _bad_request("Invalid request target") from None
            path, query = parsed.path or b"/", parsed.query or b""
            target_host = _host_of(parsed.host, parsed.port)
        environ["PATH_INFO"] = (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1")
        environ["QUERY_STRING"] = query.decode("latin-1")
        version = parser.get_http_version()
        protocol = _PROTOCOLS.get(version)
        if protocol is None:
            raise _bad_request(f"Unsupported HTTP version {version}")
        # llhttp takes "GET  /x" as "GET /x": a proxy might not. One space each, exactly,
        # in the bytes of the request line itself.
        line = self._request_line
        if line != method + b" " + url + protocol[1]:
            raise _bad_request("Malformed request line")
        if len(line) > self._max_line:
            raise Reject("414 URI Too Long", "URI too long")
        environ["SERVER_PROTOCOL"] = protocol[0]
        chunked = False
        hosts = 0
        request = ParsedRequest(environ, parser.should_keep_alive(), version)
        for name, value in self._headers:
            key = _ENVIRON_KEYS.get(name) or _environ_key(name)
            if not key:
                continue  # X_Forwarded_For would pose as X-Forwarded-For: dropped, as gunicorn does
            text = value.rstrip(b" \t").decode("latin-1")  # OWS is no part of a value
            if key in _SPECIAL_KEYS:
                if key == "HTTP_HOST":
                    hosts += 1
                    if target_host:
                        continue  # the absolute-form target's host wins (RFC 9112 §3.2.2)
                elif key == "HTTP_TRANSFER_ENCODING":
                    # llhttp decodes chunked; anything else would hand the app coded bytes,
                    # and HTTP/1.0 has no chunked at all (RFC 9112 §6.1).
                    if text.strip().lower() != "chunked" or chunked or version == "1.0":
                        raise _bad_request("Unsupported Transfer-Encoding")
                    chunked = True
                elif key == "HTTP_EXPECT":
                    # An HTTP/1.0 client does not know 100 Continue (RFC 9110 §10.1.1).
                    request.continue_ = version == "1.1" and text.lower() == "100-continue"
                else:  # CONTENT_TYPE, CONTENT_LENGTH: no HTTP_ prefix (PEP 3333)
                    environ[key] = text
                    continue
            if key in environ:
                environ[key] += ("; " if key == "HTTP_COOKIE" else ",") + text
            else:
                environ[key] = text
        if hosts > 1:
            raise _bad_request("More than one Host header")  # RFC 9112 §3.2
        if not hosts and version == "1.1":
            raise _bad_request("Missing Host header")
        if target_host:
            environ["HTTP_HOST"] = target_host
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
            elif len(line) > self._max_line + 2:
                self._refuse(Reject("414 URI Too Long", "URI too long"))
                return False
        if self.in_head:
            # httptools holds a header line until it ends: bound the head before it grows.
            self._head_bytes += len(piece)
            if self._head_bytes > self._max_header_bytes + self._max_line:
                self._refuse(Reject(_HEADERS_TOO_LARGE, "Request header fields too large"))
                return False
        if self._body_left >= 0:
            self._body_left -= len(piece)
        self._began_at = -1
        if self._method_pending:  # llhttp waits for the whole extension method
            return self._extension_method(piece)
        return self._parse(piece, piece)

    def _parse(self, piece: bytes, given: bytes) -> bool:
        """Give llhttp *given* (*piece*, or it with a stand-in method); False to end."""
        self._piece = piece
        try:
            self._llhttp.feed_data(given)
        except httptools.HttpParserUpgrade as upgrade:
            if not self._upgrade_ignored():
                return False
            rest = piece[upgrade.args[0] :]
            if rest:  # never, a piece ending with the head; but should it not, parse it too
                return self._parse(rest, rest)
        except httptools.HttpParserInvalidMethodError:
            if self.in_head and given is piece:  # not yet given a stand-in for this one
                return self._extension_method(piece)
            self._refuse(_bad_request("Invalid method encountered"))
            return False
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, Reject):
                self._refuse(cause)
            else:
                self._refuse(_bad_request(f"Bad Request: {exc}"))
            return False
        finally:
            self._piece = b""
        return True

    def _extension_method(self, piece: bytes) -> bool:
        """Parse a message whose method llhttp does not know, with a stand-in for it.

        llhttp refused the method, so it is in error: a fresh one is given
        the message from its start (the request line, then the rest of this
        piece), with :data:`_STAND_IN` for the method, once the method has
        ended (a space). What llhttp was fed of the message is its request
        line, already kept whole or in part.
        """
        line = self._request_line if self._line is None else bytes(self._line)
        method, space, _ = line.partition(b" ")
        if not space:
            # A whole line with no space is no request line; a line still arriving
            # may be an extension method that goes on in the next read.
            prefix = method + b"AAA"[: max(0, 3 - len(method))]
            if self._line is None or _EXTENSION_METHOD(prefix) is None:
                self._refuse(_bad_request("Invalid method encountered"))
                return False
            self._method_pending = True
            return True
        self._method_pending = False
        if _EXTENSION_METHOD(method) is None:
            self._refuse(_bad_request("Invalid method encountered"))
            return False
        if self._line is None:  # the whole line is in hand: with what follows it in this piece
            start = self._began_at if self._began_at >= 0 else 0
            message = line + b"\r\n" + piece[piece.index(b"\n", start) + 1 :]
        else:
            message = line
        self._llhttp = httptools.HttpRequestParser(self)
        self._extension = method
        return self._parse(message, _STAND_IN + message[len(method) :])

    def _upgrade_ignored(self) -> bool:
        """Whether parsing goes on after a request offering an upgrade (see the module).

        llhttp stops after the head and took the request for body-less: a
        body it has is given to llhttp behind a made-up head with the same
        framing, whose callbacks hand that body to the request.
        """
        request = self.ready[-1]
        assert isinstance(request, ParsedRequest)
        environ = request.environ
        if environ["REQUEST_METHOD"] == "CONNECT":
            request.keep_alive = False  # a tunnel's bytes follow: its answer says close
            return False
        length = environ.get("CONTENT_LENGTH", "0")
        if "HTTP_TRANSFER_ENCODING" in environ:
            framing = b"Transfer-Encoding: chunked"
        elif length not in ("", "0"):
            framing = b"Content-Length: " + length.encode()
        else:
            return True
        request.complete = False
        request.continue_ = request.version == "1.1" and (
            environ.get("HTTP_EXPECT", "").lower() == "100-continue"
        )
        self._continuing = request
        made_up = b"PUT / HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n"
        return self._parse(b"", made_up)

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


def _host_of(host: bytes | None, port: int | None) -> str:
    """The ``Host`` an absolute-form target names: ``a``, ``a:8080``, ``[::1]:8080``."""
    if not host:
        raise _bad_request("Invalid request target")
    text = host.decode("latin-1")
    if ":" in text:
        text = f"[{text}]"
    return text if port is None else f"{text}:{port}"
