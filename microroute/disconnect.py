"""Clients that leave: ``request.disconnected``, ``on_disconnect()``, streams closed at once.

An LLM relay that keeps calling its upstream after the browser tab closed pays
for every token nobody reads. A WSGI server only notices a gone client when a
write fails — after a normal close, the *second* write — so a generator waiting
30 s for its next chunk would run 30 s (or a minute) too long. Here the
server watches the connection itself while a response is in flight: a gevent
read watcher on the socket, which *peeks* (``MSG_PEEK``) so a pipelined
request's bytes stay where they are. End of file or a reset means the client
is gone:

* :attr:`Disconnect.disconnected` turns true (``request.disconnected``);
* every ``on_disconnect(callback)`` runs, each in a greenlet of its own;
* a streamed response's generator is interrupted where it blocks (``time.sleep``,
  a socket read, a queue) with :class:`ClientGone`, so its ``finally:`` runs
  within the same loop iteration, not at the next write.

The server hands the app one :class:`Disconnect` per request in
``environ["microroute.disconnect"]`` (``microroute run`` and
``gunicorn -k microroute.gunicorn.Worker``); under ``gunicorn -k gevent`` the
app builds it from ``environ["gunicorn.socket"]``. Watching starts only when
someone asks (a stream about to be primed, ``request.disconnected``,
``on_disconnect``), so an ordinary request pays nothing.
"""

from __future__ import annotations

import contextvars
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Any

from gevent import GreenletExit

from .responses import ClosingBody

__all__ = ["DISCONNECT", "ClientGone", "Disconnect"]

logger = logging.getLogger("microroute")

#: The environ key of the request's :class:`Disconnect`.
DISCONNECT = "microroute.disconnect"


class ClientGone(GreenletExit):
    """Raised in a streaming generator, where it blocks, when its client has gone.

    A ``GreenletExit`` (a ``BaseException``): a handler's ``except Exception:``
    does not swallow it, servers treat it as a clean end, and the generator's
    ``finally:`` runs.
    """


class Disconnect:
    """One request's view of its client: gone or not, and what to do when it goes.

    *sock* is the connection's socket (``None``: nothing to watch, as in the
    TestClient, which calls :meth:`fire` itself when a test closes a stream
    early). Callbacks run in greenlets of their own when *spawn* is true (in a
    server, where :meth:`fire` runs in gevent's hub), else at once.
    """

    __slots__ = (
        "_callbacks",
        "_probe",
        "_sock",
        "_spawn",
        "_target",
        "_watcher",
        "active",
        "disconnected",
    )

    def __init__(
        self,
        sock: socket.socket | None,
        spawn: bool = True,
        probe: Callable[[], bytes | None] | None = None,
    ) -> None:
        self._sock = sock
        self._spawn = spawn
        #: Looks at the socket without blocking: ``b""`` when the client has gone,
        #: None when nothing came, else what came (see :meth:`_look`).
        self._probe = probe
        self._watcher: Any = None
        #: The greenlet to interrupt while it streams (see :meth:`watch`).
        self._target: Any = None
        self._callbacks: list[tuple[contextvars.Context, Callable[[], Any]]] = []
        #: The response is still in flight: a disconnect now matters.
        self.active = True
        self.disconnected = False

    def watch(self, interrupt: bool = False) -> None:
        """Start watching the socket (idempotent); with *interrupt*, this greenlet
        is the one streaming the response, and is interrupted when the client goes."""
        if interrupt and self._target is None and self._sock is not None:
            import gevent

            self._target = gevent.getcurrent()
        if self._watcher is not None or self._sock is None or not self.active:
            return
        try:
            import gevent

            fileno = self._sock.fileno()
            if fileno < 0:
                return
            self._watcher = gevent.get_hub().loop.io(fileno, 1)  # 1: readable
            self._watcher.start(self._readable)
        except (OSError, ValueError):  # closed already
            self._watcher = None

    def _look(self) -> bytes | None:
        """What the client sent, left where it is: ``b""`` if it has gone, None if nothing.

        A peek at the socket by default. A server whose sockets need more (TLS,
        where a ``close_notify`` is an encrypted record like any other) gives a
        *probe* of its own, which may read what came and keep it for itself.
        """
        if self._probe is not None:
            return self._probe()
        sock = self._sock
        raw = getattr(sock, "_sock", sock)
        try:
            data: bytes = raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)  # type: ignore[union-attr]
        except BlockingIOError:
            return None
        except OSError:
            return b""  # reset
        return data

    def _readable(self) -> None:
        if self._sock is None:
            return
        data = self._look()
        if data is None:
            return  # woken for nothing
        if data:
            # The client sent more (a pipelined request): it is there. Its bytes
            # stay queued for the server; watching further would spin on them.
            self._stop_watcher()
            return
        self.fire()

    def check(self) -> bool:
        """Look at the socket now (for ``request.disconnected``); True if the client is gone."""
        if not self.disconnected and self._sock is not None and self.active:
            self.watch()
            if self._look() == b"":
                self.fire()
        return self.disconnected

    def on_disconnect(self, callback: Callable[[], Any]) -> None:
        """Run *callback* (no arguments) once, when the client goes; at once if it has."""
        context = contextvars.copy_context()
        if self.disconnected:
            self._run(context, callback)
            return
        self._callbacks.append((context, callback))
        self.watch()

    def fire(self) -> None:
        """The client is gone: flag it, run the callbacks, interrupt the stream."""
        if self.disconnected or not self.active:
            return
        self.disconnected = True
        self._stop_watcher()
        callbacks, self._callbacks = self._callbacks, []
        for context, callback in callbacks:
            self._run(context, callback)
        if self._target is not None:
            import gevent

            # Delivered from the hub's next callback, and only if the response
            # is still in flight then: never into the connection's next request.
            gevent.get_hub().loop.run_callback(self._interrupt)

    def _interrupt(self) -> None:
        target = self._target
        if self.active and target is not None and not target.dead:
            target.throw(ClientGone("the client closed the connection"))

    def _run(self, context: contextvars.Context, callback: Callable[[], Any]) -> None:
        if self._spawn:
            import gevent

            gevent.spawn(context.run, _logged, callback)
        else:
            context.run(_logged, callback)

    def _stop_watcher(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
            watcher.close()

    def stop(self) -> None:
        """The response is over: stop watching, interrupt nothing any more."""
        self.active = False
        self._target = None
        if self._callbacks:
            self._callbacks = []
        if self._watcher is not None:
            self._stop_watcher()

    def until_closed(self, body: Iterable[bytes]) -> Iterable[bytes]:
        """*body*, stopping this watch when the server closes it (after the last byte)."""
        if self._watcher is None and self._target is None and not self._callbacks:
            self.stop()  # nobody asked: nothing to undo later
            return body
        return ClosingBody(body, self.stop)


def _logged(callback: Callable[[], Any]) -> None:
    try:
        callback()
    except Exception:
        logger.exception("on_disconnect callback %r failed", callback)
