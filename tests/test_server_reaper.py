"""The reaper (``microroute.server.reaper``): which waits end a connection, and when.

Ticks are driven by hand (:meth:`Connections.reap` is what the reaper's greenlet
calls once a second), on stand-in connections; the last test drives a real
:class:`~microroute.server.Connection` on a socket pair.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.socket

from microroute import App, EventStream, Router
from microroute.server import Connection, Connections, base_environ


@dataclass
class Head:
    in_head: bool = False
    head_began: int = 0


@dataclass(eq=False)
class Stub:
    """What the reaper reads of a connection, and what it does to one."""

    idle: bool = False
    events: bool = False
    fresh: bool = False
    writing: bool = False
    waiting: int = 0
    beat: tuple[float, bytes] | None = None
    last_write: int = 0
    parser: Head = field(default_factory=Head)
    pending: bool = False
    beats: list[int] = field(default_factory=list)
    shut_at: int | None = None
    clock: Any = None

    def beat_now(self, tick: int) -> None:
        self.beats.append(tick)

    def has_input(self) -> bool:
        return self.pending

    def shutdown(self) -> None:
        if self.shut_at is None:
            self.shut_at = self.clock.tick


def reaped(stub: Stub, *, ticks: int = 200, **settings: Any) -> int | None:
    """The tick at which the reaper ends *stub*, or None within *ticks*."""
    connections = Connections(**settings)
    stub.clock = connections
    connections.all.add(stub)  # type: ignore[arg-type]
    for _ in range(ticks):
        connections.reap()
        if stub.shut_at is not None:
            return stub.shut_at
    return None


def test_an_idle_keep_alive_connection_gets_the_keep_alive_timeout() -> None:
    assert reaped(Stub(idle=True, waiting=1), keepalive=65, io_timeout=30) == 67


def test_a_connection_that_never_sent_a_byte_gets_the_io_timeout() -> None:
    """Issue 21: 10,000 silent connections used to hold 10,000 fds for the keep-alive 65 s."""
    silent = Stub(idle=True, fresh=True, waiting=1)
    assert reaped(silent, keepalive=65, io_timeout=30) == 32
    # gunicorn's --keep-alive 2 is shorter: the worker closes a silent one after it, as -k gevent
    assert reaped(Stub(idle=True, fresh=True, waiting=1), keepalive=2, io_timeout=30) == 4


def test_a_head_in_part_waits_while_the_answer_before_it_streams() -> None:
    """Issue 21: a pipelined head that arrived in part while a long stream went out made the
    reaper cut the stream: the server, not the client, had stopped reading."""
    streaming = Stub(parser=Head(in_head=True, head_began=1))  # not waiting: the app runs
    assert reaped(streaming, io_timeout=30) is None
    # Once the server reads for it, the head gets IO_TIMEOUT in all (slowloris).
    reading = Stub(waiting=5, parser=Head(in_head=True, head_began=5))
    assert reaped(reading, io_timeout=30) == 36


def test_a_heartbeat_only_stream_whose_client_stopped_reading_is_ended() -> None:
    """Issue 21: heartbeats the socket would not take were dropped quietly, so a stream
    that sends nothing else never counted as stalled."""
    stalled = Stub(beat=(5.0, b": heartbeat\n\n"), last_write=1)  # beat_now never writes
    assert reaped(stalled, io_timeout=30) == 37
    assert stalled.beats[0] == 6


def test_a_stop_closes_an_idle_connection_only_once_it_waited_and_nothing_came() -> None:
    connections = Connections()
    waiting = Stub(idle=True, waiting=1, clock=connections)
    arrived = Stub(idle=True, waiting=1, pending=True, clock=connections)
    for stub in (waiting, arrived):
        connections.all.add(stub)  # type: ignore[arg-type]
    connections.stop()
    connections.reap()  # tick 2: waited less than STOP_IDLE, perhaps
    assert waiting.shut_at is None
    connections.reap()
    assert waiting.shut_at == 3
    assert arrived.shut_at is None  # a request is in it: it is served, with a close


def test_a_real_heartbeat_stream_to_a_full_socket_is_ended() -> None:
    """The same on a real connection: the client reads the first event, then nothing;
    once the socket is full, heartbeats stop going out and the stream is ended."""
    finished = []
    api = Router()

    @api.get("/reaper/events", dynamic="force-dynamic")
    def events() -> EventStream:
        def ticks() -> Any:
            try:
                yield "first"
                gevent.sleep(3600)  # then heartbeats only
            finally:
                finished.append(True)

        return EventStream(ticks(), heartbeat=1)

    app = App(api)
    server_side, client = gevent.socket.socketpair()
    connections = Connections(io_timeout=2)
    connection = Connection(app, server_side, base_environ(server_side, ("t", 1)), connections)
    serving = gevent.spawn(connection.serve)
    client.sendall(b"GET /reaper/events HTTP/1.1\r\nHost: t\r\n\r\n")
    received = b""
    while b"data: first" not in received:
        received += client.recv(65536)
    raw = server_side._sock  # type: ignore[attr-defined]
    try:  # what the client does not read fills the socket
        while True:
            raw.send(b"x" * 65536, socket.MSG_DONTWAIT)
    except BlockingIOError:
        pass
    for _ in range(8):
        connections.reap()
        gevent.sleep(0.01)
    serving.join(timeout=5)
    assert serving.dead
    assert finished == [True]
    client.close()
