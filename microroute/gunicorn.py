"""microroute's connection loop as a gunicorn worker: ``gunicorn -k microroute.gunicorn.Worker``.

gunicorn keeps what it is good at — the arbiter, worker processes, reloads,
signals, ``max_requests`` — and each worker serves its connections with
:class:`microroute.server.Connection` (llhttp parsing, one write a response)
instead of gunicorn's own pure-Python parser, as ``uvicorn.workers.UvicornWorker``
does for ASGI. It is gunicorn's gevent worker otherwise: monkey-patched, a
greenlet per connection, ``--worker-connections`` bounding them::

    gunicorn -k microroute.gunicorn.Worker -w 4 app:app

**Stopping** (SIGTERM, a reload's SIGHUP, ``--max-requests``) never drops a
request: from its first moment every response says ``Connection: close``;
the worker stops accepting (the arbiter's other workers take the new
connections), closes the keep-alive connections once they have been idle a
moment with nothing arrived, lets in-flight requests finish within
``--graceful-timeout``, then its ``after()`` work, and exits.

Needs the ``gunicorn`` extra: ``pip install "microroute[gunicorn]"``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from functools import partial
from typing import Any

import gevent
from gevent.pool import Pool
from gevent.server import StreamServer
from gunicorn.sock import ssl_context  # type: ignore[import-untyped]
from gunicorn.workers.ggevent import GeventWorker  # type: ignore[import-untyped]

from .after_response import drain
from .server import Connection, Connections, base_environ

__all__ = ["Worker"]

#: How often the worker looks whether a stop began (a signal, --max-requests).
_WATCH_SECONDS = 0.1


class Worker(GeventWorker):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's gevent worker, serving each connection with microroute's loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # gunicorn's --keep-alive (2 s by default) bounds idle connections, as in its own
        # workers; its --max-requests (with jitter: self.max_requests) begins a stop.
        self.connections = Connections(
            access_log=False,
            keepalive=float(self.cfg.keepalive),
            max_requests=self.max_requests,
        )

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM (also how the arbiter retires a worker on reload): a graceful stop."""
        super().handle_exit(sig, frame)
        self.connections.stop()  # only a flag: from now on, every response says close

    def run(self) -> None:
        ssl_args = {"ssl_context": ssl_context(self.cfg)} if self.cfg.is_ssl else {}
        servers, pools = [], []
        for listener in self.sockets:
            listener.setblocking(1)
            pool = Pool(self.worker_connections)
            server = StreamServer(
                listener, handle=partial(self.handle, listener), spawn=pool, **ssl_args
            )
            if self.cfg.workers > 1:
                server.max_accept = 1  # one at a time: the other workers get their share
            server.start()
            servers.append(server)
            pools.append(pool)
        gevent.spawn(self.connections.run_reaper)

        notified = 0.0
        while self.alive and not self.connections.stopping:  # type: ignore[has-type]
            if time.monotonic() - notified >= 1.0:
                self.notify()
                notified = time.monotonic()
            gevent.sleep(_WATCH_SECONDS)
        if self.alive:  # type: ignore[has-type]
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        self._stop(servers, pools)

    def _stop(self, servers: list[StreamServer], pools: list[Pool]) -> None:
        """Stop accepting, let the connections finish, then the after() work."""
        self.connections.stop()
        for server in servers:
            server.close()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while any(len(pool) for pool in pools):
            left = deadline - time.monotonic()
            if left <= 0:
                self.log.warning("Worker graceful timeout (pid:%s)", self.pid)
                for pool in pools:
                    pool.kill(block=True, timeout=1)
                return
            self.notify()
            for pool in pools:
                pool.join(timeout=min(left, 1.0))
        drain(max(0.0, deadline - time.monotonic()))

    def handle(self, listener: Any, client: socket.socket, addr: Any) -> None:
        client.setblocking(True)
        with contextlib.suppress(OSError):
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        scheme = "https" if self.cfg.is_ssl else "http"
        base = base_environ(client, addr, scheme)
        base["wsgi.multiprocess"] = self.cfg.workers > 1
        Connection(self.wsgi, client, base, self.connections).serve()
