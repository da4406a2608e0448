"""The listener: a listening socket, a greenlet per connection, and a graceful stop on a signal.

:func:`serve` is ``microroute run``'s server: it binds with
:func:`make_listener` (a deep backlog, ``SO_REUSEADDR``), prints
``microroute serving on`` :func:`listening_url`, and runs a :class:`Server`
until SIGTERM or SIGINT. The stop is graceful and drops nothing: from its
first moment ``/readyz`` answers 503 and every response says ``Connection:
close``; new connections are still accepted for ``drain_delay`` seconds (a
load balancer polling readiness needs that long to stop sending); then no
new ones, keep-alive connections closed once idle a moment, event streams
ended cleanly, in-flight requests given :data:`STOP_TIMEOUT` seconds, then
``after()`` work what is left of it.

The gunicorn worker (``microroute.gunicorn``) uses none of this: gunicorn
listens, forks and handles signals, and the worker runs a
:class:`~.connection.Connection` per socket with its own
:class:`~.reaper.Connections`.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
import time
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import Event
from gevent.pool import Pool
from gevent.server import StreamServer

from .accesslog import write_record
from .connection import Connection
from .environ import base_environ
from .limits import IO_TIMEOUT, KEEPALIVE_TIMEOUT
from .reaper import Connections

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = ["BACKLOG", "STOP_TIMEOUT", "Server", "listening_url", "make_listener", "serve"]

#: Connections the kernel may queue before we accept them. The kernel caps it
#: at ``net.core.somaxconn`` (4096 on current Linux), so asking for more is harmless.
BACKLOG = 2048
#: Seconds that in-flight requests get to finish after SIGTERM or SIGINT.
STOP_TIMEOUT = 5.0


class Server:
    """Accepts connections and runs a :class:`Connection` for each, in its own greenlet.

    **Stopping.** :meth:`close` stops accepting; from then on every response
    says ``Connection: close``, and the reaper closes the connections waiting
    for a request once they have been idle a moment (see :mod:`.reaper`).
    In-flight requests, streams included, get the grace period.
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
        self.connections = Connections(write_record if access_log else None, keepalive, io_timeout)
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
        """Begin the graceful stop (responses say ``Connection: close``) and stop accepting."""
        self.connections.stop()
        self._server.close()

    def stop(self, drain_delay: float = 0.0, timeout: float = STOP_TIMEOUT) -> None:
        """The graceful stop: still accept for *drain_delay* seconds, then give the
        connections *timeout* seconds to finish, and end what is left."""
        self.connections.stop()
        if drain_delay > 0:
            gevent.sleep(drain_delay)
        self._server.close()
        pool = self._server.pool
        if pool is not None and not pool.join(timeout=timeout):
            pool.kill(block=True, timeout=1)


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
    drain_delay: float = 0.0,
) -> None:
    """Serve *app* on *host*:*port* until SIGTERM or SIGINT, then return.

    Prints ``microroute serving on http://HOST:PORT`` once the socket listens
    (``port=0`` prints the port the kernel chose), so scripts and tests can wait
    for that line, then *banner* (``microroute run`` passes the route table).
    On SIGTERM or SIGINT the stop begins (``/readyz`` turns 503, responses say
    ``Connection: close``); the server still accepts for *drain_delay* seconds,
    then stops accepting, gives in-flight requests and then their ``after()``
    work :data:`STOP_TIMEOUT` seconds in all, and returns; the caller then
    exits 0.

    An idle keep-alive connection is closed after *keepalive* seconds; a
    client that stalls within a request for *io_timeout* seconds (or takes
    that long to send a request's head) is disconnected.
    With *access_log*, each request the app does not log itself (another WSGI
    app's, one refused while parsing) gets a ``microroute.access`` record:
    ``127.0.0.1 "GET /x HTTP/1.1" 200 27 0.4ms`` (a microroute ``App`` writes
    its own, with the route and request id).

    Call it from a monkey-patched process (``microroute run`` does) so that
    blocking calls in handlers yield to other requests.
    """
    listener = make_listener(host, port)
    server = Server(
        listener, app, access_log=access_log, keepalive=keepalive, io_timeout=io_timeout
    )

    signalled = Event()

    def shutdown() -> None:
        # Runs in the hub, which must not block: the stop's first step is a
        # flag (/readyz, Connection: close); the main greenlet does the rest.
        server.connections.stop()
        signalled.set()

    watchers = [gevent.signal_handler(sig, shutdown) for sig in (signal.SIGTERM, signal.SIGINT)]
    try:
        server.start()
        print(f"microroute serving on {listening_url(listener)}", flush=True)
        if banner:
            print(banner, flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        signalled.wait()
        grace_began = time.monotonic() + drain_delay  # the grace period follows the drain
        server.stop(drain_delay, STOP_TIMEOUT)
    finally:
        for watcher in watchers:
            watcher.cancel()
    # The responses are out (or STOP_TIMEOUT ran out): after() work gets what is left.
    from ..after_response import drain

    drain(max(0.0, STOP_TIMEOUT - (time.monotonic() - grace_began)))
