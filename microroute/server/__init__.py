"""The server behind ``microroute run``: gevent greenlets, llhttp parsing, one write a response.

gevent's ``pywsgi`` parses and writes in pure Python: ~55 µs a request, the
whole cost of serving a small JSON answer. This server keeps gevent's model —
a greenlet per connection, so plain synchronous handlers get concurrency once
the process is monkey-patched — and does the rest the way uvicorn's httptools
protocol does: requests are parsed by ``httptools`` (Node's llhttp, strict:
no obs-fold, no bare LF, conflicting framing refused), the WSGI environ is
built straight from its callbacks, and a response's status line, headers and
first body bytes leave in one ``sendall``.

One :class:`Connection` per socket::

    recv -> llhttp (on_url, on_header, on_headers_complete, on_body,
    on_message_complete) -> ready requests, in order -> app(environ,
    start_response) -> framing (Content-Length, chunked, or none for
    HEAD/204/304) -> sendall

Keep-alive and pipelining live in :meth:`Connection.serve` (responses in
request order); a request's body is pulled from the socket only when the app
reads ``wsgi.input`` (``Expect: 100-continue`` answered then). The limits —
request line 8 KiB (414), header section 64 KiB (431), 100 headers (400) —
are checked while parsing. ``gunicorn -k microroute.gunicorn.Worker`` runs
the same :class:`Connection` under gunicorn's process management.

>>> from microroute.server import serve          # doctest: +SKIP
>>> serve(app, host="0.0.0.0", port=8000)        # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import signal
import socket
import time
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import gevent
import httptools
from gevent.pool import Pool
from gevent.server import StreamServer

from ..disconnect import DISCONNECT, ClientGone, Disconnect
from ..responses import StreamAborted
from ..sse import HEARTBEAT_KEY as HEARTBEAT
from .accesslog import log_line
from .dates import http_date
from .environ import ENVIRON_KEYS, environ_key
from .environ import base_environ as base_environ
from .limits import (
    IO_TIMEOUT,
    KEEPALIVE_TIMEOUT,
    MAX_DRAIN,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    MAX_REQUEST_LINE,
    READ_SIZE,
)
from .reaper import Connections
from .request import Input, ParsedRequest
from .request import MalformedBody as MalformedBody
from .response import ResponseWriter

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = [
    "BACKLOG",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_REQUEST_LINE",
    "STOP_TIMEOUT",
    "Connection",
    "Connections",
    "Server",
    "listening_url",
    "make_listener",
    "serve",
]

logger = logging.getLogger("microroute.server")

#: Connections the kernel may queue before we accept them. The kernel caps it
#: at ``net.core.somaxconn`` (4096 on current Linux), so asking for more is harmless.
BACKLOG = 2048
#: Seconds that in-flight requests get to finish after SIGTERM or SIGINT.
STOP_TIMEOUT = 5.0

_HEADERS_TOO_LARGE = "431 Request Header Fields Too Large"
#: Header keys looked at before they go in the environ: framing, or no ``HTTP_`` prefix.
_SPECIAL_KEYS = frozenset(
    {"CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_TRANSFER_ENCODING", "HTTP_EXPECT"}
)


class _Reject(Exception):
    """A request the parser refused: answered with *status* and closed."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        #: The refused request was a HEAD: its answer has no body either.
        self.head = False
        #: It may have been: no body, and no Content-Length to promise one.
        self.unsized = False


class Connection:
    """One client connection: llhttp's callbacks in, WSGI responses out, in order."""

    def __init__(
        self,
        app: WSGIApplication,
        sock: socket.socket,
        base: dict[str, Any],
        server: Connections | None = None,
    ) -> None:
        self.app = app
        self.sock = sock
        self.base = base
        self.server = server
        #: What the app asked: write *payload* whenever the response is this many seconds idle.
        self.beat_wanted: tuple[float, bytes] | None = None
        #: (seconds, framed payload) while a response that asked for heartbeats streams.
        self.beat: tuple[float, bytes] | None = None
        #: The :attr:`Connections.tick` of the last write.
        self.last_write = 0
        #: Blocked in a write: nothing else may write now.
        self.writing = False
        #: Bytes of a heartbeat the socket could not take at once, sent before anything else.
        self._pending_out = b""
        self.parser = httptools.HttpRequestParser(self)
        # gevent's recv() and sendall() are Python loops around the real socket's
        # calls; a plain TCP socket (never TLS, whose bytes must be encrypted) is
        # driven directly, waiting on gevent's own read event as recv() does.
        plain = type(sock) is gevent.socket.socket and hasattr(sock, "_read_event")
        self._raw_recv = sock._sock.recv if plain else None  # type: ignore[attr-defined]
        self._raw_send = sock._sock.send if plain else None  # type: ignore[attr-defined]
        if plain and server is not None:  # the reaper writes heartbeats with that send
            base[HEARTBEAT] = self.heartbeat
        #: Requests parsed through their headers, waiting to be served, in order.
        self.ready: deque[ParsedRequest | _Reject] = deque()
        #: The request llhttp is in the middle of (its body may still arrive).
        self.parsing: ParsedRequest | None = None
        self.open = True
        #: Between requests: a stop ends the connection at once.
        self.idle = False
        #: The :attr:`Connections.tick` at which it began waiting for the client (0: not).
        self.waiting = 0
        #: The tick at which the request being parsed began: its head has IO_TIMEOUT in all.
        self.head_began = 0
        #: Bytes fed since the current message began, while its head was incomplete.
        self._head_bytes = 0
        #: The bytes fed since the current message's head began (its request line in them).
        self._raw: bytes | bytearray = b""
        self.in_head = False
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
            self._method = self.parser.get_method()
        self._url += url
        if len(self._url) > MAX_REQUEST_LINE:
            raise _Reject("414 URI Too Long", "URI too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > MAX_HEADER_BYTES:
            raise _Reject(_HEADERS_TOO_LARGE, "Request header fields too large")
        if len(self._headers) > MAX_HEADERS:
            raise _Reject("400 Bad Request", f"More than {MAX_HEADERS} header fields")

    def on_headers_complete(self) -> None:
        self.in_head = False
        parser = self.parser
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
                raise _Reject("400 Bad Request", "Invalid request target") from None
            path, query = parsed.path or b"/", parsed.query or b""
        environ["PATH_INFO"] = (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1")
        environ["QUERY_STRING"] = query.decode("latin-1")
        version = parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise _Reject("400 Bad Request", f"Unsupported HTTP version {version}")
        # llhttp takes "GET  /x" as "GET /x": a proxy might not. One space each, exactly.
        line = b"%b %b HTTP/%b\r\n" % (method, url, version.encode())
        if line not in self._raw:
            raise _Reject("400 Bad Request", "Malformed request line")
        environ["SERVER_PROTOCOL"] = "HTTP/" + version
        chunked = False
        request = ParsedRequest(environ, parser.should_keep_alive(), version)
        for name, value in self._headers:
            key = ENVIRON_KEYS.get(name) or environ_key(name)
            if not key:
                continue  # X_Forwarded_For would pose as X-Forwarded-For: dropped, as gunicorn does
            text = value.decode("latin-1")
            if key in _SPECIAL_KEYS:
                if key == "HTTP_TRANSFER_ENCODING":
                    # llhttp decodes chunked; anything else would hand the app coded bytes,
                    # and HTTP/1.0 has no chunked at all (RFC 9112 §6.1).
                    if text.strip().lower() != "chunked" or chunked or version == "1.0":
                        raise _Reject("400 Bad Request", "Unsupported Transfer-Encoding")
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
        environ["wsgi.input"] = Input(self, request)
        self.parsing = request
        self.ready.append(request)

    def on_body(self, body: bytes) -> None:
        if self.parsing is not None:
            self.parsing.body += body

    def on_message_complete(self) -> None:
        if self.parsing is not None:
            self.parsing.complete = True
            self.parsing.continue_ = False
            self.parsing = None

    # -- reading -------------------------------------------------------------------------

    def _feed(self, data: bytes) -> bool:
        """Parse *data*; False once the connection can parse no more."""
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
                self._refuse(
                    _Reject(
                        "431 Request Header Fields Too Large", "Request header fields too large"
                    )
                )
                return False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Upgrade (WebSocket, h2c) is not offered: the request is answered as
            # plain HTTP/1.1, and nothing after it on this connection can be parsed.
            self.open = False
            return False
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, _Reject):
                self._refuse(cause)
            else:
                self._refuse(_Reject("400 Bad Request", f"Bad Request: {exc}"))
            return False
        finally:
            if not self.in_head:
                self._raw = b""
        return True

    def _refuse(self, reject: _Reject) -> None:
        self.open = False
        # A client that wrote "HEAD /..." reads the answer as one to a HEAD: no body.
        # Refused before its target, the method may be unknown (llhttp keeps the
        # last one it read): then no body and no length, which reads the same
        # either way on a connection that closes at once.
        if self.in_head and self._method:
            reject.head = self._method == b"HEAD"
        elif self.parser.get_method() == b"HEAD":
            reject.unsized = True
        request = self.parsing
        if request is not None:
            # Broken in its body (its head was fine, so it is answered in turn):
            # the app reading it gets MalformedBody, a 400; then the connection ends.
            request.complete = True
            request.broken = reject.message
            self.parsing = None
            return
        self.ready.append(reject)

    def _recv(self) -> bytes:
        server = self.server
        if server is not None:
            self.waiting = server.tick
        try:
            raw_recv = self._raw_recv
            if raw_recv is None:
                return self.sock.recv(READ_SIZE)
            while True:
                try:
                    return raw_recv(READ_SIZE)  # type: ignore[no-any-return]
                except BlockingIOError:
                    self.sock._wait(self.sock._read_event)  # type: ignore[attr-defined]
        except OSError:  # reset, or shut down by the reaper: either way the client is gone
            return b""
        finally:
            self.waiting = 0

    def read_body(self) -> bool:
        """More of the body being read by the app; False if none will come."""
        if not self.open:
            return False
        data = self._recv()
        if not data:
            self.open = False
            return False
        return self._feed(data)

    # -- writing -------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        server = self.server
        if server is not None:
            self.last_write = server.tick
        if self._pending_out:
            data, self._pending_out = self._pending_out + data, b""
        raw_send = self._raw_send
        if raw_send is not None:  # most responses fit the socket buffer: one call
            try:
                sent: int = raw_send(data)
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                return
            data = memoryview(data)[sent:]  # type: ignore[assignment]
        if server is not None:
            self.waiting = server.tick  # a client that stops reading is reaped too
        self.writing = True
        try:
            self.sock.sendall(data)
        finally:
            self.writing = False
            self.waiting = 0

    def heartbeat(self, seconds: float, payload: bytes) -> None:
        """For the app: write *payload* into this response whenever it is *seconds* idle.

        The reaper does it (:meth:`Connections.reap`), so an idle stream costs
        no greenlet and no timer of its own. The payload must be harmless in
        the body at any point between chunks (SSE's comment line is).
        """
        self.beat_wanted = (seconds, payload)

    def beat_now(self, tick: int) -> None:
        """Write the heartbeat, if the socket takes it without waiting (from the reaper)."""
        beat, raw_send = self.beat, self._raw_send
        if beat is None or raw_send is None or self.writing or self._pending_out:
            return
        try:
            sent: int = raw_send(beat[1])
        except OSError:  # full (the client is not reading) or gone: no heartbeat due
            return
        self.last_write = tick
        if sent < len(beat[1]):
            self._pending_out = beat[1][sent:]  # the connection sends it before its next bytes

    def shutdown(self) -> None:
        """End the connection from another greenlet: its blocked read or write fails."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    # -- the loop ------------------------------------------------------------------------

    def serve(self) -> None:
        """Serve requests until the client closes, an error, or a stop."""
        server = self.server
        if server is not None:
            server.all.add(self)
        try:
            while True:
                if not self.ready:
                    if not self.open:
                        return
                    # Between requests, a stop ends the connection at once.
                    self.idle = self.parsing is None and not self.in_head
                    if self.idle and server is not None and server.stopping:
                        return
                    data = self._recv()
                    self.idle = False
                    if not data:
                        return
                    self._feed(data)
                    continue
                item = self.ready.popleft()
                if isinstance(item, _Reject):
                    self._answer_error(item)
                    return
                if server is not None:
                    server.served += 1
                if not self._respond(item):
                    return
                if not item.complete and not self._drain(item):
                    return
                if server is not None and server.stopping:
                    return
        finally:
            if server is not None:
                server.all.discard(self)
            self.close()

    def close(self) -> None:
        self.open = False
        with contextlib.suppress(OSError):
            self.sock.close()

    def _drain(self, request: ParsedRequest) -> bool:
        """Discard the body the app did not read, to reach the next request; or give up."""
        if request.continue_:
            # The client waits for "100 Continue" before it sends the body, and
            # got a final answer instead (a 413, say): it may never send it, so
            # waiting to discard it would hold the connection for nothing.
            return False
        left = MAX_DRAIN
        while not request.complete:
            left -= len(request.body)
            request.body.clear()
            if left < 0 or not self.read_body():
                return False
        request.body.clear()
        return True

    def _answer_error(self, reject: _Reject) -> None:
        body = json.dumps({"error": reject.message}, separators=(",", ":")).encode()
        head = (
            f"HTTP/1.1 {reject.status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\nDate: {http_date()}\r\n\r\n"
        )
        if reject.unsized:
            head = head.replace(f"Content-Length: {len(body)}\r\n", "")
        with contextlib.suppress(OSError):
            self.send(head.encode() if reject.head or reject.unsized else head.encode() + body)
        if self.server is not None and self.server.access_log:
            log_line(self.base.get("REMOTE_ADDR") or "-", "-", reject.status[:3], len(body), 0.0)

    def _respond(self, request: ParsedRequest) -> bool:
        """Run the app for *request* and send its response; True to keep the connection."""
        logging_on = self.server is not None and self.server.access_log
        started = time.perf_counter() if logging_on else 0.0
        environ = request.environ
        response = ResponseWriter(self, request)
        watch = environ[DISCONNECT] = Disconnect(self.sock)
        try:
            result = self.app(environ, response.start_response)
        except ClientGone:  # interrupted while priming a stream: nobody to answer
            watch.stop()
            return False
        except Exception:
            watch.stop()
            logger.exception("The application failed before it started a response")
            response.fail()
            self._access(request, response, started)
            return False
        try:
            if type(result) is not list:  # a stream: the client's leaving interrupts it
                watch.watch(interrupt=True)
            keep = response.send_all(result)
        except (OSError, ClientGone):  # the client went away
            keep = False
        except StreamAborted:  # logged by the app with its route: the body is cut, as it must be
            keep = False
        except Exception:
            logger.exception(
                "Error while sending the response to %s %s",
                environ["REQUEST_METHOD"],
                environ["PATH_INFO"],
            )
            if not response.headers_sent:
                response.fail()
            keep = False
        finally:
            watch.stop()
            self.beat = self.beat_wanted = None
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    logger.exception("The response's close() failed")
        self._access(request, response, started)
        return keep and request.keep_alive

    def _access(self, request: ParsedRequest, response: ResponseWriter, started: float) -> None:
        if self.server is not None and self.server.access_log:
            environ = request.environ
            line = f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} {environ['SERVER_PROTOCOL']}"
            took = (time.perf_counter() - started) * 1000
            remote = self.base.get("REMOTE_ADDR") or "-"
            log_line(remote, line, response.status[:3] or "000", response.sent, took)


class Server:
    """Accepts connections and runs a :class:`Connection` for each, in its own greenlet.

    **Stopping.** :meth:`close` stops accepting and ends the connections that
    wait for their next request at once (as Go's ``Server.Shutdown`` does); a
    connection finishing a request during the stop is closed instead of waiting
    for another. In-flight requests, streams included, get the grace period.
    """

    def __init__(
        self,
        listener: socket.socket,
        app: WSGIApplication,
        access_log: bool = False,
        keepalive: float = KEEPALIVE_TIMEOUT,
        io_timeout: float = IO_TIMEOUT,
    ) -> None:
        self.app = app
        self.connections = Connections(access_log, keepalive, io_timeout)
        # A pool, even unbounded, lets stop() wait for in-flight requests.
        self._server = StreamServer(listener, self.handle, spawn=Pool())

    def handle(self, sock: socket.socket, address: Any) -> None:
        # OSError: not TCP (a UNIX socket), or already reset: nothing to tune.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        Connection(self.app, sock, base_environ(sock, address), self.connections).serve()

    def start(self) -> None:
        self._server.start()
        gevent.spawn(self.connections.run_reaper)

    def close(self) -> None:
        """Stop accepting, and end the connections that are between requests."""
        self._server.close()
        self.connections.stop()

    def serve_forever(self, stop_timeout: float = STOP_TIMEOUT) -> None:
        self._server.serve_forever(stop_timeout=stop_timeout)


def make_listener(host: str, port: int, backlog: int = BACKLOG) -> socket.socket:
    """Bind and listen on *host*:*port* with ``SO_REUSEADDR`` and a deep backlog.

    gevent's own listener is capped at a backlog of 128; a burst beyond it
    overflows the kernel's accept queue and the client's SYN is retried after a
    full second. ``SO_REUSEADDR`` lets a restarted server (``--reload``, a
    deploy) bind again while old connections sit in ``TIME_WAIT``.

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


def listening_url(sock: socket.socket) -> str:
    """``http://HOST:PORT`` of a listening socket (IPv6 hosts in brackets)."""
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
    keepalive: float = KEEPALIVE_TIMEOUT,
    io_timeout: float = IO_TIMEOUT,
) -> None:
    """Serve *app* on *host*:*port* until SIGTERM or SIGINT, then return.

    Prints ``microroute serving on http://HOST:PORT`` once the socket listens
    (``port=0`` prints the port the kernel chose), so scripts and tests can wait
    for that line, then *banner* (``microroute run`` passes the route table).
    On SIGTERM or SIGINT the server stops accepting, gives in-flight requests
    and then their ``after()`` work :data:`STOP_TIMEOUT` seconds in all, and
    returns; the caller then exits 0.

    An idle keep-alive connection is closed after *keepalive* seconds; a
    client that stalls within a request for *io_timeout* seconds (or takes
    that long to send a request's head) is disconnected.
    With *access_log*, one line per request goes to stderr:
    ``2024-05-01 12:00:00 127.0.0.1 "GET /x HTTP/1.1" 200 27 0.4ms``.

    Call it from a monkey-patched process (``microroute run`` does) so that
    blocking calls in handlers yield to other requests.
    """
    listener = make_listener(host, port)
    server = Server(
        listener, app, access_log=access_log, keepalive=keepalive, io_timeout=io_timeout
    )

    stopped: list[float] = []  # when the stop began: the grace period runs from then

    def shutdown() -> None:
        # Runs in the hub, which must not block: close() only stops
        # accepting and wakes serve_forever(), whose exit drains the pool.
        stopped.append(time.monotonic())
        server.close()

    watchers = [gevent.signal_handler(sig, shutdown) for sig in (signal.SIGTERM, signal.SIGINT)]
    try:
        server.start()
        print(f"microroute serving on {listening_url(listener)}", flush=True)
        if banner:
            print(banner, flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        server.serve_forever(stop_timeout=STOP_TIMEOUT)
    finally:
        for watcher in watchers:
            watcher.cancel()
    # The responses are out (or STOP_TIMEOUT ran out): after() work gets what is left.
    from ..after_response import drain

    began = stopped[0] if stopped else time.monotonic()
    drain(max(0.0, STOP_TIMEOUT - (time.monotonic() - began)))
