"""The production server behind ``microroute run``: gevent's WSGI server, tuned.

gevent's ``pywsgi`` serves each connection in its own greenlet, so plain
synchronous handlers get concurrency for free once the process is
monkey-patched (``microroute run`` does that first). Out of the box it has two
costly defaults, which :func:`serve` fixes:

* **Listen backlog.** gevent listens with a backlog of 128 at most; a burst of
  new connections beyond that overflows the kernel's accept queue and the
  client's SYN is retried after a full second. We create the listening socket
  ourselves, with ``SO_REUSEADDR`` and a backlog of :data:`BACKLOG`.
* **Nagle's algorithm.** pywsgi writes the status line and headers, then the
  body, in separate ``send`` calls. On a keep-alive connection the second small
  write waits for the client's delayed ACK (~40 ms on Linux): measured
  1.1k req/s stock against 11k req/s with ``TCP_NODELAY`` set on every
  accepted socket.

>>> from microroute.server import serve          # doctest: +SKIP
>>> serve(app, host="0.0.0.0", port=8000)        # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

import gevent
from gevent import pywsgi
from gevent.pool import Pool
from gevent.pywsgi import Input, WSGIHandler, WSGIServer

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = [
    "BACKLOG",
    "STOP_TIMEOUT",
    "MicrorouteHandler",
    "MicrorouteServer",
    "make_listener",
    "serve",
]

#: Connections the kernel may queue before we accept them. The kernel caps it
#: at ``net.core.somaxconn`` (4096 on current Linux), so asking for more is harmless.
BACKLOG = 2048

#: Seconds that in-flight requests get to finish after SIGTERM or SIGINT.
STOP_TIMEOUT = 5.0


#: Bytes the request's header section may take, all lines together.
MAX_HEADER_BYTES = 64 * 1024


def _error_response(status: str, message: str) -> bytes:
    """A whole JSON error response that closes the connection, as raw bytes."""
    body = json.dumps({"error": message}).encode()
    return (
        f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


_HEADERS_TOO_LARGE = _error_response(
    "431 Request Header Fields Too Large", "Request header fields too large"
)

# RFC 9112 §3: method SP request-target SP HTTP-version CRLF, one space each.
_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^\x00-\x20\x7f]+ HTTP/1\.[0-9]\r\n")
# RFC 9112 §5: field-name ":" OWS field-value OWS; no space before the colon.
_FIELD_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[^\x00\r\n]*\r\n")


class HeaderSectionTooLarge(ValueError):
    """The request's headers, together, exceed :data:`MAX_HEADER_BYTES`."""


class BadFraming(ValueError):
    """A request whose start or framing two parsers could read differently (RFC 9112)."""


class _HeaderReader:
    """Wraps the connection's reader while headers are parsed: counts and checks each line.

    ``http.client`` (which pywsgi parses headers with) is lenient where a
    front proxy may not be: it takes a bare CR or LF as a line end, unfolds
    obs-fold lines and skips lines that are no header at all. Each of those
    lets a proxy and this server see different headers, the root of request
    smuggling, so each is refused here, line by line, before it is parsed.
    The names and values seen are kept for :func:`_check_framing`.
    """

    def __init__(self, rfile: Any, budget: int) -> None:
        self._rfile = rfile
        self._left = budget
        self.fields: list[tuple[bytes, bytes]] = []

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self._rfile.readline(limit)
        self._left -= len(line)
        if self._left < 0:
            raise HeaderSectionTooLarge(f"header section over {MAX_HEADER_BYTES} bytes")
        if not line.endswith(b"\n") or line == b"\r\n":
            return line  # end of headers, end of input, or a line too long: pywsgi says
        match = _FIELD_LINE.fullmatch(line)
        if match is None:
            raise BadFraming(f"Malformed header line: {_describe(line)}")
        name = match.group(1).lower()
        self.fields.append((name, line[len(name) + 1 : -2].strip(b" \t")))
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rfile, name)


def _describe(line: bytes) -> str:
    """Why a header line is malformed, in words a client's developer can act on."""
    if not line.endswith(b"\r\n"):
        return "it ends in a bare LF, not CRLF"
    if line[:1] in (b" ", b"\t"):
        return "obs-fold (a line starting with whitespace) is not accepted"
    if b"\r" in line[:-2]:
        return "it holds a bare CR"
    if b"\x00" in line:
        return "it holds a NUL"
    name, colon, _ = line.partition(b":")
    if not colon:
        return "it has no colon"
    if name != name.rstrip(b" \t"):
        return "whitespace between the field name and the colon"
    return "the field name is not a token"


def _check_framing(version: str, fields: list[tuple[bytes, bytes]]) -> None:
    """Refuse a body whose length two parsers could disagree on (RFC 9112 §6).

    Only ``Transfer-Encoding: chunked`` (once, alone) or one all-digit
    ``Content-Length`` frames a body; both together, a coding list, a repeated
    or odd Content-Length, or Transfer-Encoding in HTTP/1.0 are each a 400
    and the connection is closed, instead of guessing which one a proxy used.
    """
    codings = [value for name, value in fields if name == b"transfer-encoding"]
    lengths = [value for name, value in fields if name == b"content-length"]
    if codings:
        if version == "HTTP/1.0":
            raise BadFraming("Transfer-Encoding is not allowed in an HTTP/1.0 request")
        if len(codings) > 1 or codings[0].lower() != b"chunked":
            raise BadFraming("Transfer-Encoding must be exactly 'chunked'")
        if lengths:
            raise BadFraming("Transfer-Encoding and Content-Length together are not allowed")
    if len(lengths) > 1:
        raise BadFraming("Content-Length must appear once")
    if lengths and not (lengths[0].isdigit() and lengths[0].isascii()):
        raise BadFraming("Content-Length must be digits only")


# gevent raises this for a malformed chunked body, and closes the connection
# for it when the app did not read the body; private, hence looked up.
_InvalidClientInput: type[Exception] = getattr(pywsgi, "_InvalidClientInput", OSError)


class _StrictInput(Input):
    """pywsgi's request body, flagging every malformed chunk as broken framing.

    An empty chunk-size line makes pywsgi's ``int()`` raise a bare
    ``ValueError`` without marking the input broken, so the connection would
    go on to read the rest of the body as the next request.
    """

    def read(self, length: int | None = None) -> bytes:
        try:
            data: bytes = super().read(length)
        except ValueError as exc:
            self._chunked_input_error = True
            raise _InvalidClientInput(f"Invalid chunk size: {exc}") from None
        return data

    def readline(self, size: int | None = None) -> bytes:
        try:
            line: bytes = super().readline(size)
        except ValueError as exc:
            self._chunked_input_error = True
            raise _InvalidClientInput(f"Invalid chunk size: {exc}") from None
        return line


class MicrorouteHandler(WSGIHandler):
    """pywsgi's connection handler, with a graceful stop and a cheaper access log.

    **Stopping.** pywsgi's stop waits for every connection's greenlet, and a
    keep-alive connection waiting for its next request would hold SIGTERM for
    the whole grace period. So a connection between requests registers itself
    as idle; :meth:`MicrorouteServer.close` shuts idle ones down at once (as Go's
    ``Server.Shutdown`` does), and a connection that finishes a request during
    the stop is closed instead of waiting for another. In-flight requests,
    streams included, get the full grace period.

    **Access log.** ``2024-05-01 12:00:00 127.0.0.1 "GET /x HTTP/1.1" 200 27 0.4ms``:
    pywsgi formats a ``datetime`` for every request; here the timestamp is
    formatted once per second and reused.
    """

    server: MicrorouteServer
    _served = False
    _second = -1
    _stamp = ""

    def read_request(self, raw_requestline: str) -> Any:
        """Parse the request strictly, holding its header section to :data:`MAX_HEADER_BYTES`.

        pywsgi limits each header line (64 KiB) and their number (100), but
        not their sum: 100 lines of 64 KiB would make every request hold 6 MiB.
        A malformed request line or header line, and ambiguous framing (see
        :func:`_check_framing`), are a JSON 400 with ``Connection: close``.
        """
        if not _REQUEST_LINE.fullmatch(raw_requestline.encode("latin-1")):
            raise BadFraming("Malformed request line: expected 'METHOD /target HTTP/1.1' + CRLF")
        rfile = self.rfile
        reader = _HeaderReader(rfile, MAX_HEADER_BYTES)
        self.rfile = reader  # type: ignore[assignment]
        try:
            parsed = super().read_request(raw_requestline)
        except HeaderSectionTooLarge:
            raise
        except ValueError:
            # pywsgi's int() failed on a Content-Length: say why, in JSON.
            _check_framing(self.request_version or "", reader.fields)
            raise
        finally:
            self.rfile = rfile
        _check_framing(self.request_version or "", reader.fields)
        return parsed

    def _handle_client_error(self, ex: BaseException) -> Any:
        if isinstance(ex, HeaderSectionTooLarge):
            status, response = "431", _HEADERS_TOO_LARGE
        elif isinstance(ex, BadFraming):
            status, response = "400", _error_response("400 Bad Request", str(ex))
        else:
            return super()._handle_client_error(ex)  # type: ignore[misc]
        if (self.requestline or "").startswith("HEAD "):
            # A response to HEAD carries no content (RFC 9110 §9.3.2).
            response = response.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
        return status, response

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        body = self.wsgi_input
        if body is None:
            return environ
        # Made as pywsgi made it, from the same state (its class is not a setting).
        strict = _StrictInput(body.rfile, body.content_length, body.socket, body.chunked_input)
        if environ["wsgi.input"] is body:
            environ["wsgi.input"] = strict
        self.wsgi_input = strict
        return environ

    def handle_one_response(self) -> Any:
        """Serve one request; a body whose framing broke ends the connection.

        pywsgi closes it when the app left such a body unread, but not when
        the app read it and answered (a 400): the rest of the body would then
        be parsed as the next request.
        """
        result = super().handle_one_response()
        if getattr(self.wsgi_input, "_chunked_input_error", False):
            self.close_connection = True
        return result

    def finalize_headers(self) -> None:
        super().finalize_headers()
        if self.command == "HEAD":
            self.response_use_chunked = False  # no body, so no last chunk either

    def _write(self, data: bytes) -> None:
        # A response to HEAD carries no content (RFC 9110 §9.3.2), whichever
        # reply the app made (a 404, a 405, middleware's own): drop it here.
        if self.command != "HEAD":
            super()._write(data)  # type: ignore[misc]

    def read_requestline(self) -> str:
        """Wait for the next request line, as an idle connection the stop may cut short."""
        server = self.server
        if self._served and server.stopping:
            return ""  # pywsgi reads "" as a closed connection
        self._served = True
        server.idle.add(self)
        try:
            line: str = super().read_requestline()
            if line in ("\r\n", "\n"):
                # RFC 9112 §2.2: ignore an empty line before a request line
                # (some clients send CRLF after a POST body).
                line = super().read_requestline()
            return line
        finally:
            server.idle.discard(self)

    def format_request(self) -> str:
        """One line: time, client, request line, status, bytes sent, duration."""
        now = time.time()
        second = int(now)
        if second != MicrorouteHandler._second:
            MicrorouteHandler._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            MicrorouteHandler._second = second
        client = self.client_address
        host = client[0] if isinstance(client, tuple) else client
        # _orig_status: the native-str status pywsgi keeps (its own format uses it).
        status = (getattr(self, "_orig_status", None) or self.status or "000").split()[0]
        finish = self.time_finish or now
        took = (finish - self.time_start) * 1000 if self.time_start else 0.0
        return (
            f'{MicrorouteHandler._stamp} {host or "-"} "{self.requestline or ""}" {status} '
            f"{self.response_length or 0} {took:.1f}ms"
        )


class MicrorouteServer(WSGIServer):
    """A ``gevent.pywsgi.WSGIServer`` that sets ``TCP_NODELAY`` on each connection.

    Without it, the body write of every keep-alive response waits for the
    client's delayed ACK of the header write (see the module docstring).
    Its :meth:`close` also ends idle keep-alive connections (see
    :class:`MicrorouteHandler`).
    """

    handler_class = MicrorouteHandler

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Connections waiting for their next request.
        self.idle: set[MicrorouteHandler] = set()
        #: Set by close(): connections end after their current request.
        self.stopping = False

    def close(self) -> None:
        """Stop accepting, and end the connections that are between requests."""
        self.stopping = True
        super().close()
        for handler in list(self.idle):
            sock = getattr(handler, "socket", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    # *address* is typed Any: it is the peer's (host, port), while gevent's
    # stubs declare it a str.
    def handle(self, sock: socket.socket, address: Any) -> None:
        """Disable Nagle on *sock*, then serve its requests as pywsgi does."""
        # OSError: not TCP (a UNIX socket), or already reset by the peer;
        # nothing to tune then, and pywsgi copes with the rest.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)


def make_listener(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """Bind and listen on *host*:*port* with ``SO_REUSEADDR`` and a deep backlog.

    ``SO_REUSEADDR`` lets a restarted server (``--reload``, a deploy) bind
    again while old connections sit in ``TIME_WAIT``. Uses gevent's socket, so
    it cooperates whether or not the process is monkey-patched.

    Raises :class:`~microroute.errors.StartupError` when the address is busy
    or cannot be bound, with one line saying which address and why.
    """
    from microroute.errors import StartupError

    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on {host}:{port}: unknown host ({exc})") from None
    family, _, _, _, sockaddr = infos[0]
    sock = gevent.socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            reason = "the port is already in use (is another server running? try --port)"
        else:
            reason = exc.strerror or str(exc)
        raise StartupError(f"cannot listen on {host}:{port}: {reason}") from None
    sock.setblocking(False)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serve(
    app: WSGIApplication,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    access_log: bool = False,
    banner: str = "",
) -> None:
    """Serve *app* on *host*:*port* until SIGTERM or SIGINT, then return.

    Prints ``microroute serving on http://HOST:PORT`` once the socket listens
    (``port=0`` prints the port the kernel chose), so scripts and tests can wait
    for that line, then *banner* (``microroute run`` passes the route table).
    On SIGTERM or SIGINT the server stops accepting, gives in-flight requests
    :data:`STOP_TIMEOUT` seconds, and returns; the caller then exits 0.

    With *access_log*, one line per request goes to stderr (see
    :class:`MicrorouteHandler`); a benchmark should leave it off, since writing
    the line costs about as much as routing a small request.

    Call it from a monkey-patched process (``microroute run`` does) so that
    blocking calls in handlers yield to other requests.
    """
    listener = make_listener(host, port)
    # A pool, even unbounded, lets stop() wait for in-flight requests.
    server = MicrorouteServer(
        listener,
        app,
        spawn=Pool(),
        log=sys.stderr if access_log else None,
    )

    def shutdown() -> None:
        # Runs in the hub, which must not block: close() only stops
        # accepting and wakes serve_forever(), whose exit drains the pool.
        server.close()

    watchers = [gevent.signal_handler(sig, shutdown) for sig in (signal.SIGTERM, signal.SIGINT)]
    try:
        server.start()
        print(f"microroute serving on {_url(listener)}", flush=True)
        if banner:
            print(banner, flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        server.serve_forever(stop_timeout=STOP_TIMEOUT)
    finally:
        for watcher in watchers:
            watcher.cancel()
