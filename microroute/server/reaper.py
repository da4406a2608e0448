"""The reaper: one greenlet a server that ends connections waiting too long and beats streams.

A connection notes the :attr:`Connections.tick` at which it began waiting for
its client (a read, or a write the socket would not take at once); once a
second, :meth:`Connections.reap` advances the clock and ends the connections
that waited too long — :data:`~.limits.KEEPALIVE_TIMEOUT` between requests
(but ``IO_TIMEOUT`` at most for a connection that has sent nothing yet),
:data:`~.limits.IO_TIMEOUT` within one, and ``IO_TIMEOUT`` in all for a
request's head, however slowly it trickles in, counted while the server
waits for it (not while it streams the answer to the request before). A
socket timeout would do the same at the price of a timer set and cancelled
around every read and write; noting a tick costs one attribute store.

The same pass writes heartbeats: a streamed response that asked for one
(:meth:`.connection.Connection.heartbeat`) gets its payload whenever it has
been idle that long, so an idle stream costs no greenlet and no timer. A
heartbeat the socket will not take (the client stopped reading) is not
written; once none has gone out for ``IO_TIMEOUT`` the connection is ended.

:class:`Connections` is shared by ``microroute run``'s
:class:`~.listener.Server` and the gunicorn worker; it is also where a stop
begins (:meth:`Connections.stop`). From then on every response says
``Connection: close``, and the reaper closes a connection waiting for its
next request only once it has waited :data:`~.limits.STOP_IDLE` with nothing
arrived: a keep-alive client (nginx's upstream pool) reuses first the
connection it released last, so closing that one at once would cross its
next request on the wire, a 502 at the proxy.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any, Protocol

import gevent

from .limits import IO_TIMEOUT, KEEPALIVE_TIMEOUT, STOP_IDLE, Limits

if TYPE_CHECKING:
    from .accesslog import AccessWriter

_LIMITS = Limits()
_LOGGER = logging.getLogger("microroute.server")

__all__ = ["Connections", "ErrorLog", "Parsing", "Watched"]


class Parsing(Protocol):
    """What the reaper reads of a connection's parser (:class:`.parser.RequestParser`)."""

    #: A request's head has begun and is not complete yet.
    in_head: bool
    #: The tick at which that head began.
    head_began: int


class Watched(Protocol):
    """What the reaper reads of a connection (:class:`.connection.Connection`)."""

    #: Between requests: :data:`KEEPALIVE_TIMEOUT` applies, and a stop's rule.
    idle: bool
    #: No byte has come from the client yet: ``IO_TIMEOUT`` at most.
    fresh: bool
    #: Blocked in a write the socket would not take.
    writing: bool
    #: The tick at which it began waiting for the client; 0 while it is not waiting.
    waiting: int
    #: (seconds, framed payload) while a response that asked for heartbeats streams.
    beat: tuple[float, bytes] | None
    #: The tick of its last write.
    last_write: int

    @property
    def parser(self) -> Parsing:
        """Its request parser: whether a head is arriving, and since when."""

    #: An event stream's body is going out: a stop ends it.
    events: bool

    def beat_now(self, tick: int) -> None:
        """Write the heartbeat now, if the socket takes it without waiting."""

    def end_events(self) -> None:
        """End the event stream being sent, cleanly (from the hub)."""

    def has_input(self) -> bool:
        """Whether the client sent bytes not read yet."""

    def shutdown(self) -> None:
        """End the connection: its blocked read or write fails."""


class ErrorLog(Protocol):
    """Where a server's errors go: a :class:`logging.Logger`, or gunicorn's error log."""

    def exception(self, msg: str, *args: Any) -> None:
        """Log *msg* at ERROR with the exception being handled."""


class Connections:
    """What a server knows of its connections: which wait, for how long, and whether it stops.

    Shared by ``microroute run``'s :class:`~.listener.Server` and the gunicorn
    worker. A connection notes the :attr:`tick` at which it started waiting
    for the client; :meth:`reap`, run once a second, ends those that waited
    too long — :data:`KEEPALIVE_TIMEOUT` between requests, :data:`IO_TIMEOUT`
    within one.
    """

    def __init__(
        self,
        access: AccessWriter | None = None,
        keepalive: float = KEEPALIVE_TIMEOUT,
        io_timeout: float = IO_TIMEOUT,
        max_requests: int = sys.maxsize,
        limits: Limits = _LIMITS,
        log: ErrorLog = _LOGGER,
    ) -> None:
        #: Writes each request's access line (None: no access log).
        self.access = access
        #: What a request's head may hold.
        self.limits = limits
        #: Where errors go: the ``microroute.server`` logger, or gunicorn's error log.
        self.log = log
        #: Seconds an idle keep-alive connection is kept.
        self.keepalive = keepalive
        #: Seconds a client may stall within a request (or a request's head may take).
        self.io_timeout = io_timeout
        #: Set by :meth:`stop`: a graceful stop began.
        self.stopping = False
        #: Every response says ``Connection: close``: once stopping, or with no
        #: keep-alive at all (gunicorn's ``--keep-alive 0``).
        self.close_every = keepalive <= 0
        #: Every connection being served.
        self.all: set[Watched] = set()
        #: Seconds since start, advanced by :meth:`reap`.
        self.tick = 1
        #: Requests begun; at :attr:`max_requests` (gunicorn's ``--max-requests``) a stop begins.
        self.served = 0
        self.max_requests = max_requests

    def stop(self) -> None:
        """Begin the graceful stop: responses say ``Connection: close`` from now on.

        Idempotent, and it never blocks (a signal handler may call it). The
        connections waiting for a request are closed by :meth:`reap`; event
        streams are ended at once, from the hub.
        """
        if not self.stopping:
            gevent.get_hub().loop.run_callback(self._end_event_streams)
        self.stopping = self.close_every = True

    def _end_event_streams(self) -> None:
        """From the hub: end every event stream being sent (those blocked in a write, later)."""
        for connection in list(self.all):
            if connection.events:
                connection.end_events()

    def reap(self) -> None:
        """Advance the clock a second and end the connections that waited too long."""
        self.tick += 1
        tick = self.tick
        stopping = self.stopping
        if stopping:  # event streams that were blocked in a write at the stop's start
            gevent.get_hub().loop.run_callback(self._end_event_streams)
        keepalive, io_timeout = self.keepalive, self.io_timeout
        # For a connection that never sent a byte (with keep-alive off, the only idle kind).
        silent = min(keepalive, io_timeout) if keepalive > 0 else io_timeout
        for connection in list(self.all):
            since = connection.waiting
            head = connection.parser
            idle = connection.idle
            limit = (silent if connection.fresh else keepalive) if idle else io_timeout
            if since and tick - since > limit:
                connection.shutdown()
            elif stopping and idle and since and tick - since > STOP_IDLE:
                # Waited at least STOP_IDLE seconds (ticks are whole seconds) for a
                # request: one that has arrived meanwhile is served, with a close.
                if not connection.has_input():
                    connection.shutdown()
            elif (
                head.in_head
                and since
                and not connection.writing
                and tick - head.head_began > io_timeout
            ):
                # A head sent a byte at a time (slowloris) gets IO_TIMEOUT in all,
                # counted while the server reads it, not while it answers the last.
                connection.shutdown()
            beat = connection.beat
            if beat is not None:
                silence = tick - connection.last_write
                if silence > beat[0] + io_timeout:  # its heartbeats have not gone out
                    connection.shutdown()
                elif silence >= beat[0]:
                    connection.beat_now(tick)

    def run_reaper(self) -> None:
        """Reap once a second until stopped and every connection is gone (a greenlet)."""
        while not (self.stopping and not self.all):
            gevent.sleep(1.0)
            self.reap()
