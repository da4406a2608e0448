"""One HTTP/1.1 connection: requests read in order, the app run for each, responses written.

A greenlet per connection, so plain synchronous handlers get concurrency once
the process is monkey-patched::

    recv -> RequestParser.feed (llhttp's callbacks) -> ready requests, in order
    -> app(environ, start_response) -> ResponseWriter (framing) -> sendall

**Keep-alive and pipelining** live in :meth:`Connection.serve`: the requests
a client sent ahead wait in the parser's queue and are answered in order;
after each response the body the app left unread is discarded (up to
:data:`~.limits.MAX_DRAIN`) to reach the next request. The connection ends
after a response that says ``Connection: close`` (the response writer says
it whenever the connection cannot go on: see :mod:`.response`), after the
answer to a request the parser refused, or when the client closes.

**Stopping** never cuts a request: once the server stops, every response
says ``Connection: close``, and a connection waiting for its next request is
closed by the reaper only when it has been idle :data:`~.limits.STOP_IDLE`
and nothing has arrived on it. An event stream (``text/event-stream``) is
ended cleanly, its last chunk sent: :class:`StreamEnded` is thrown where its
generator waits, its ``finally:`` runs, and the browser's EventSource
reconnects, to another instance, with ``Last-Event-ID``. Other streams run
on within the grace period: ending them early would pass a cut body for a
whole one. **Closing** with bytes the client sent still
unread (a body the app ignored, a pipelined request) would make the kernel
answer them with a reset, which can destroy the response before the client
reads it: the connection first shuts its side and discards what comes, for
:data:`~.limits.LINGER` seconds at most.

**Reads and writes** go straight to a plain TCP socket's own ``recv`` and
``send`` (gevent's are Python loops around them), waiting on gevent's read
event or falling back to ``sendall`` only when the socket would block; the
:class:`~.reaper.Connections` clock is noted while waiting, so the reaper can
end a client that stalls.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any

import gevent
from gevent import GreenletExit

from ..disconnect import DISCONNECT, ClientGone, Disconnect
from ..responses import StreamAborted
from ..sse import HEARTBEAT_KEY as HEARTBEAT
from ..stopping import STOPPING
from .dates import http_date
from .limits import LINGER, MAX_DRAIN, READ_SIZE
from .parser import Reject, RequestParser
from .reaper import Connections, ErrorLog
from .request import Input, ParsedRequest
from .response import ResponseWriter

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["Connection", "StreamEnded"]

logger = logging.getLogger("microroute.server")


class StreamEnded(GreenletExit):
    """Thrown into an event stream's generator, where it waits, when the server stops.

    A ``GreenletExit``, as :class:`~microroute.disconnect.ClientGone` is: the
    app lets it through and the generator's ``finally:`` runs; the server then
    sends the stream's last chunk.
    """


class Connection:
    """One client connection: bytes through its parser, WSGI responses out, in order."""

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
        #: Where errors go: the server's error log (gunicorn's, under its worker).
        self.log: ErrorLog = server.log if server is not None else logger
        #: What the app asked: write *payload* whenever the response is this many seconds idle.
        self.beat_wanted: tuple[float, bytes] | None = None
        #: (seconds, framed payload) while a response that asked for heartbeats streams.
        self.beat: tuple[float, bytes] | None = None
        #: The :attr:`Connections.tick` of the last write.
        self.last_write = 0
        #: Blocked in a write: nothing else may write now.
        self.writing = False
        #: An event stream's head is out and its body going: a stop ends it (see end_events).
        self.events = False
        #: The greenlet serving the connection.
        self._greenlet: Any = None
        #: Bytes of a heartbeat the socket could not take at once, sent before anything else.
        self._pending_out = b""
        #: The requests read from this connection: bytes in, parsed requests out.
        self.parser = RequestParser(base, server)
        # Bound once, as the socket's calls below are: a body read costs no extra lookup.
        self._feed = self.parser.feed
        # gevent's recv() and sendall() are Python loops around the real socket's
        # calls; a plain TCP socket (never TLS, whose bytes must be encrypted) is
        # driven directly, waiting on gevent's own read event as recv() does.
        plain = type(sock) is gevent.socket.socket and hasattr(sock, "_read_event")
        self._raw_recv = sock._sock.recv if plain else None  # type: ignore[attr-defined]
        self._raw_send = sock._sock.send if plain else None  # type: ignore[attr-defined]
        if plain and server is not None:  # the reaper writes heartbeats with that send
            base[HEARTBEAT] = self.heartbeat
        if server is not None:  # /readyz reads whether a stop began
            base[STOPPING] = server
        #: How the disconnect watch looks at the socket: peeking at a plain one; a TLS
        #: one's bytes are records to decrypt (a close_notify is one).
        self._probe = None if plain or not hasattr(sock, "_sslobj") else self._tls_probe
        self.open = True
        #: Waiting for its next request (the reaper's keep-alive timeout and stop rule apply).
        self.idle = False
        #: Nothing has come from the client yet (a silent connection gets IO_TIMEOUT).
        self.fresh = True
        #: The server is ending the connection: what the client still sends is discarded first.
        self.linger = False
        #: The :attr:`Connections.tick` at which it began waiting for the client (0: not).
        self.waiting = 0

    # -- reading -------------------------------------------------------------------------

    def _recv(self, answered: bool = False) -> bytes:
        """The next bytes from the client (``b""``: it has gone).

        *answered*: the connection has just answered everything the client
        sent. A keep-alive client sends its next request only once it has read
        that answer, so the bytes are not there yet: wait for them first,
        rather than make a read bound to fail (a system call, and an exception).
        """
        server = self.server
        if server is not None:
            self.waiting = server.tick
        try:
            raw_recv = self._raw_recv
            if raw_recv is None:
                return self.sock.recv(READ_SIZE)
            sock = self.sock
            if answered:
                sock._wait(sock._read_event)  # type: ignore[attr-defined]
            while True:
                try:
                    return raw_recv(READ_SIZE)  # type: ignore[no-any-return]
                except BlockingIOError:
                    sock._wait(sock._read_event)  # type: ignore[attr-defined]
        except OSError:  # reset, or shut down by the reaper: either way the client is gone
            return b""
        finally:
            self.waiting = 0

    def read_body(self) -> bool:
        """More of the body being read by the app; False if none will come."""
        if not self.open:
            return False
        data = self._recv()
        if not data or not self._feed(data):
            self.open = False
            return False
        return True

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

        The reaper does it (:meth:`.reaper.Connections.reap`), so an idle stream
        costs no greenlet and no timer of its own. The payload must be harmless
        in the body at any point between chunks (SSE's comment line is).
        """
        self.beat_wanted = (seconds, payload)

    def beat_now(self, tick: int) -> None:
        """Write the heartbeat, if the socket takes it without waiting (from the reaper).

        One it does not take is not written (the client is not reading, or is
        gone); the reaper ends a connection whose heartbeats stop going out.
        """
        beat, raw_send = self.beat, self._raw_send
        if beat is None or raw_send is None or self.writing or self._pending_out:
            return
        try:
            sent: int = raw_send(beat[1])
        except OSError:
            return
        self.last_write = tick
        if sent < len(beat[1]):
            self._pending_out = beat[1][sent:]  # the connection sends it before its next bytes

    def end_events(self) -> None:
        """End the event stream being sent, if any, cleanly (a stop; from the hub).

        Not while the connection is blocked in a write (the chunk must go out
        whole): the reaper asks again on its next pass.
        """
        greenlet = self._greenlet
        if self.events and not self.writing and greenlet is not None and not greenlet.dead:
            self.events = False
            greenlet.throw(StreamEnded("the server is stopping"))

    def shutdown(self) -> None:
        """End the connection from another greenlet: its blocked read or write fails."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def _tls_probe(self) -> bytes | None:
        """For the disconnect watch on a TLS socket: what the client sent (None: nothing yet).

        ``b""`` when it has gone, a TLS ``close_notify`` included; bytes of a
        request it pipelined are read, and parsed at once, as any read is.
        """
        try:
            data: bytes = self.sock._sslobj.read(READ_SIZE)  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            return None
        except (ssl.SSLError, OSError, AttributeError):  # reset, or unwrapped already
            return b""
        if data and not self._feed(data):
            self.open = False
        return data

    def has_input(self) -> bool:
        """Whether the client sent bytes not read yet (a request may be in them)."""
        sock = self.sock
        pending = getattr(sock, "pending", None)  # TLS: bytes the SSL layer has decrypted
        if pending is not None and pending():
            return True
        raw = getattr(sock, "_sock", sock)
        try:
            return bool(raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except OSError:  # nothing yet (BlockingIOError), or reset: no request to serve
            return False

    # -- the loop ------------------------------------------------------------------------

    def serve(self) -> None:
        """Serve requests until the client closes, an error, or a stop."""
        server = self.server
        parser = self.parser
        ready = parser.ready
        self._greenlet = gevent.getcurrent()
        if server is not None:
            server.all.add(self)
        answered = False  # everything read so far is answered (see _recv)
        try:
            while True:
                if not ready:
                    if not self.open:
                        return
                    if parser.backlog:  # read already: requests pipelined past the bound
                        if not parser.resume():
                            self.open = False
                        continue
                    # Between requests (a stop closes it once it has been idle a while).
                    self.idle = idle = parser.parsing is None and not parser.in_head
                    data = self._recv(answered and idle)
                    self.idle = self.fresh = False
                    if not data:
                        return
                    if not parser.feed(data):
                        self.open = False  # refused, or a tunnel (CONNECT): nothing more to parse
                    continue
                item = ready.popleft()
                # Until it is answered, the server may end the connection with bytes unread.
                self.linger = True
                if isinstance(item, Reject):
                    self._answer_error(item)
                    return
                if server is not None:
                    server.served += 1
                    if server.served >= server.max_requests:
                        server.stop()  # gunicorn's --max-requests: this response says close
                if not self._respond(item):
                    return
                if not item.complete and not self._drain(item):
                    return
                self.linger = False
                answered = not ready
                if parser.in_head and server is not None:
                    # Part of the next head came while this answer went out: its
                    # deadline runs from now, when the server reads for it again.
                    parser.head_began = server.tick
        except BaseException:
            self.linger = False  # killed (a stop's grace period ran out) or failed: no waiting
            raise
        finally:
            if server is not None:
                server.all.discard(self)
            self.close()

    def close(self) -> None:
        """Close the socket, discarding first what the client may still be sending."""
        self.open = False
        sock = self.sock
        try:
            parser = self.parser
            unread = parser.ready or parser.backlog or parser.parsing is not None or parser.in_head
            if self.linger and (unread or self.has_input()):
                sock.shutdown(socket.SHUT_WR)  # the client reads our answer, then its EOF
                self._discard_input(LINGER)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def _discard_input(self, seconds: float) -> None:
        """Read and drop what the client sends until it closes, or *seconds* pass."""
        timeout = gevent.Timeout(seconds)
        timeout.start()
        try:
            while self._recv():
                pass
        except gevent.Timeout as fired:
            if fired is not timeout:
                raise
        finally:
            timeout.close()

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

    def _answer_error(self, reject: Reject) -> None:
        body = json.dumps({"error": reject.message}, separators=(",", ":")).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        head = (
            f"HTTP/1.1 {reject.status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\nDate: {http_date()}\r\n\r\n"
        )
        if reject.unsized:
            head = head.replace(f"Content-Length: {len(body)}\r\n", "")
            del headers[1]
        no_body = reject.head or reject.unsized
        with contextlib.suppress(OSError):
            self.send(head.encode() if no_body else head.encode() + body)
        access = self.server.access if self.server is not None else None
        if access is not None:  # the line of a refused request is "-"
            access(self.base, reject.status, headers, 0 if no_body else len(body), 0.0)

    def _respond(self, request: ParsedRequest) -> bool:
        """Run the app for *request* and send its response; True to keep the connection."""
        access = self.server.access if self.server is not None else None
        started = time.perf_counter() if access is not None else 0.0
        environ = request.environ
        environ["wsgi.input"] = Input(self, request)
        response = ResponseWriter(self, request)
        watch = environ[DISCONNECT] = Disconnect(self.sock, probe=self._probe)
        try:
            result = self.app(environ, response.start_response)
        except ClientGone:  # interrupted while priming a stream: nobody to answer
            watch.stop()
            return False
        except Exception:
            watch.stop()
            self.log.exception("The application failed before it started a response")
            response.fail()
            if access is not None:
                access(environ, response.status, [], 0, time.perf_counter() - started)
            return False
        try:
            if type(result) is not list:  # a stream: the client's leaving interrupts it
                watch.watch(interrupt=True)
            keep = response.send_all(result)
        except StreamEnded:  # a stop ended an event stream: its last chunk, and go on
            self.events = False
            keep = response.end_early()
        except (OSError, ClientGone):  # the client went away
            keep = False
        except StreamAborted:  # logged by the app with its route: the body is cut, as it must be
            keep = False
        except Exception:
            self.log.exception(
                "Error while sending the response to %s %s",
                environ["REQUEST_METHOD"],
                environ["PATH_INFO"],
            )
            if not response.headers_sent:
                response.fail()
            keep = False
        finally:
            watch.stop()
            self.events = False
            self.beat = self.beat_wanted = None
            close = None if type(result) is list else getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    self.log.exception("The response's close() failed")
        if access is not None:
            seconds = time.perf_counter() - started
            access(environ, response.status, response.headers, response.sent, seconds)
        return keep and request.keep_alive
