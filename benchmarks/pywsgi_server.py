"""The server ``microroute run`` used before llhttp: gevent's pywsgi, tuned. A baseline.

Kept for ``python -m benchmarks http`` only, so the new server is measured
against the old one in the same run: pywsgi with ``TCP_NODELAY`` on every
connection, a 2048 listen backlog, and the old graceful stop. Not part of
the package.

    python -m benchmarks.pywsgi_server TARGET --port 8000
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

import gevent
from gevent.pool import Pool
from gevent.pywsgi import WSGIHandler, WSGIServer

from microroute.server import listening_url, make_listener

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = [
    "BACKLOG",
    "STOP_TIMEOUT",
    "MicrorouteHandler",
    "MicrorouteServer",
    "serve",
]

#: Connections the kernel may queue before we accept them. The kernel caps it
#: at ``net.core.somaxconn`` (4096 on current Linux), so asking for more is harmless.
BACKLOG = 2048

#: Seconds that in-flight requests get to finish after SIGTERM or SIGINT.
STOP_TIMEOUT = 5.0


#: Bytes the request's header section may take, all lines together.
MAX_HEADER_BYTES = 64 * 1024

_HEADERS_BODY = b'{"error":"Request header fields too large"}'
_HEADERS_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n"
    b"Content-Type: application/json\r\nContent-Length: "
    + str(len(_HEADERS_BODY)).encode()
    + b"\r\n\r\n"
    + _HEADERS_BODY
)


class HeaderSectionTooLarge(ValueError):
    """The request's headers, together, exceed :data:`MAX_HEADER_BYTES`."""


class _HeaderBudget:
    """Wraps the connection's reader while headers are parsed, counting bytes."""

    def __init__(self, rfile: Any, budget: int) -> None:
        self._rfile = rfile
        self._left = budget

    def readline(self, limit: int = -1) -> bytes:
        line: bytes = self._rfile.readline(limit)
        self._left -= len(line)
        if self._left < 0:
            raise HeaderSectionTooLarge(f"header section over {MAX_HEADER_BYTES} bytes")
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rfile, name)


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
        """Parse the request, holding the whole header section to :data:`MAX_HEADER_BYTES`.

        pywsgi limits each header line (64 KiB) and their number (100), but
        not their sum: 100 lines of 64 KiB would make every request hold 6 MiB.
        """
        rfile = self.rfile
        self.rfile = _HeaderBudget(rfile, MAX_HEADER_BYTES)  # type: ignore[assignment]
        try:
            return super().read_request(raw_requestline)
        finally:
            self.rfile = rfile

    def _handle_client_error(self, ex: BaseException) -> Any:
        if isinstance(ex, HeaderSectionTooLarge):
            return ("431", _HEADERS_TOO_LARGE)
        return super()._handle_client_error(ex)  # type: ignore[misc]

    def read_requestline(self) -> str:
        """Wait for the next request line, as an idle connection the stop may cut short."""
        server = self.server
        if self._served and server.stopping:
            return ""  # pywsgi reads "" as a closed connection
        self._served = True
        server.idle.add(self)
        try:
            line: str = super().read_requestline()
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
        print(f"microroute serving on {listening_url(listener)}", flush=True)
        if banner:
            print(banner, flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        server.serve_forever(stop_timeout=STOP_TIMEOUT)
    finally:
        for watcher in watchers:
            watcher.cancel()


def main() -> int:
    import argparse

    from gevent import monkey

    monkey.patch_all()
    from microroute.targets import load_app

    parser = argparse.ArgumentParser(prog="python -m benchmarks.pywsgi_server")
    parser.add_argument("target")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    serve(load_app(args.target), args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
