"""microroute's connection loop as a gunicorn worker: ``gunicorn -k microroute.gunicorn.Worker``.

gunicorn keeps what it is good at — the arbiter, worker processes, reloads,
signals, ``max_requests`` — and each worker serves its connections with
:class:`microroute.server.Connection` (llhttp parsing, one write a response)
instead of gunicorn's own pure-Python parser, as ``uvicorn.workers.UvicornWorker``
does for ASGI. It is gunicorn's gevent worker otherwise: monkey-patched, a
greenlet per connection, ``--worker-connections`` bounding them::

    gunicorn -k microroute.gunicorn.Worker -w 4 app:app

Needs the ``gunicorn`` extra: ``pip install "microroute[gunicorn]"``.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventWorker  # type: ignore[import-untyped]

from .server import Connection, Connections, base_environ

__all__ = ["Worker"]

#: How often the worker looks whether gunicorn asked it to stop.
_WATCH_SECONDS = 0.1


class Worker(GeventWorker):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's gevent worker, serving each connection with microroute's loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # gunicorn's --keep-alive (2 s by default) bounds idle connections, as in its own workers.
        self.connections = Connections(access_log=False, keepalive=float(self.cfg.keepalive))

    def run(self) -> None:
        gevent.spawn(self._watch)
        gevent.spawn(self.connections.run_reaper)
        super().run()

    def _watch(self) -> None:
        """Close idle keep-alive connections as soon as the worker is told to stop.

        gunicorn's gevent worker then waits for its pool to empty: without this,
        every idle keep-alive connection would hold a graceful stop to its end.
        """
        while self.alive:  # type: ignore[has-type]
            if self.max_requests and self.connections.served >= self.max_requests:
                self.log.info("Autorestarting worker after current request.")
                self.alive = False
                break
            gevent.sleep(_WATCH_SECONDS)
        self.connections.stop()

    def handle(self, listener: Any, client: socket.socket, addr: Any) -> None:
        client.setblocking(True)
        with contextlib.suppress(OSError):
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        scheme = "https" if self.cfg.is_ssl else "http"
        base = base_environ(client, addr, scheme)
        base["wsgi.multiprocess"] = self.cfg.workers > 1
        Connection(self.wsgi, client, base, self.connections).serve()
