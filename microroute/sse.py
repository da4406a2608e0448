"""Server-Sent Events: a generator of events, sent as ``text/event-stream``.

::

    from microroute import Event, EventStream, route

    @route.get("/clock")
    def clock():
        def ticks():
            while True:
                yield {"now": time.time()}                # data: {"now":...}
                time.sleep(1)
        return EventStream(ticks())

    @route.get("/feed")
    def feed():
        since = EventStream.last_event_id()               # None on the first connect
        def events():
            for row in rows_after(since):
                yield Event(row.text, event="post", id=row.id)
        return EventStream(events(), heartbeat=5)

A handler returns :class:`EventStream` like any other body (a ``(stream,
status, headers)`` tuple works too); it is streamed as a generator is: primed
before headers, sent event by event, closed when the client goes away.

**Who writes the heartbeats.** Proxies and load balancers drop a connection
that has been silent for a while (often 30-60 s), so an idle stream must send
something: a comment line, which every EventSource ignores. But a generator
blocked in ``time.sleep()`` or a socket read cannot write one from its own
greenlet. Under ``microroute run`` and ``gunicorn -k microroute.gunicorn.Worker``
the server writes it: the stream hands its heartbeat to the server
(:meth:`EventStream.hand_heartbeats_to`) and the generator runs inline, and the
server's once-a-second reaper writes ``: heartbeat`` into any such response
idle for ``heartbeat`` seconds (to the second) — no greenlet or timer per
stream. Elsewhere (``gunicorn -k gevent``), the generator runs in a greenlet
of its own and hands each encoded event over through a one-event slot; the
greenlet that writes the response waits on that slot with a timeout, and every
timeout becomes a ``: heartbeat`` comment. The generator waits only when the
slot is still full, so a slow client never lets it run more than one event
ahead. The slot is two ``Waiter`` objects rather than a ``gevent.queue.Queue``
(a queue costs ~2.5 KiB per stream, see ``benchmarks/README-sse.md``).
Closing the stream kills that greenlet, which raises ``GreenletExit`` where
the generator is blocked, so its ``finally:`` runs.
``EventStream(gen, heartbeat=None)`` runs the generator inline everywhere.

Heartbeats fire while the generator waits cooperatively (under ``microroute
run`` or ``gunicorn -k gevent``, where ``time.sleep`` and sockets are
gevent's). A generator blocking the whole thread blocks them too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .context import headers as _request_headers
from .responses import close_body, encode_json

if TYPE_CHECKING:
    from gevent.event import Event as _GeventEvent
    from gevent.hub import Waiter
    from greenlet import greenlet

    from .requests import Request

__all__ = ["HEARTBEAT", "Event", "EventStream", "encode_event"]

#: What an idle stream sends every ``heartbeat`` seconds: an SSE comment.
HEARTBEAT = b": heartbeat\n\n"
#: The environ key under which a server offers to write heartbeats itself:
#: ``environ[HEARTBEAT_KEY](seconds, payload)`` (``microroute run`` and the
#: microroute gunicorn worker do).
HEARTBEAT_KEY = "microroute.heartbeat"

#: Seconds :meth:`EventStream.close` waits for the generator's ``finally:``.
CLOSE_TIMEOUT = 5.0

# The only line breaks SSE knows. str.splitlines() would also split on \x1c,
# \u2028 and others, altering the data the client receives.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Event:
    """One server-sent event, for when plain data is not enough.

    :param data: a ``str``, sent as is (line breaks become several ``data:``
        lines, which the browser joins back with ``\\n``), or a ``dict`` /
        ``list``, sent as compact JSON.
    :param event: the event type; the browser dispatches it to
        ``source.addEventListener(event, ...)`` instead of ``onmessage``.
    :param id: the event id; a reconnecting browser sends the last one back in
        the ``Last-Event-ID`` header (see :meth:`EventStream.last_event_id`).
    :param retry: the reconnection delay the browser should use, in
        **milliseconds** (as on the wire and in the EventSource spec).

    >>> Event({"n": 1}, event="tick", id=1).encode()
    b'id: 1\\nevent: tick\\ndata: {"n":1}\\n\\n'
    """

    data: Any
    event: str | None = None
    id: str | int | None = None
    retry: int | None = None

    def __post_init__(self) -> None:
        # A line break in a field would let its value forge further fields.
        for name in ("event", "id"):
            value = getattr(self, name)
            if value is not None and ("\n" in str(value) or "\r" in str(value)):
                raise ValueError(f"Event {name} must not contain a line break: {value!r}")
        if self.id is not None and "\0" in str(self.id):
            raise ValueError("Event id must not contain a NUL character (browsers ignore it)")
        retry = self.retry
        whole = isinstance(retry, int) and not isinstance(retry, bool)
        if retry is not None and not (whole and retry >= 0):
            raise ValueError(f"Event retry is a whole number of milliseconds, got {retry!r}")

    def encode(self) -> bytes:
        """The event framed for the wire, ending with the blank line that dispatches it."""
        head = ""
        if self.id is not None:
            head += f"id: {self.id}\n"
        if self.event is not None:
            head += f"event: {self.event}\n"
        if self.retry is not None:
            head += f"retry: {self.retry}\n"
        if self.data is None and head:
            return (head + "\n").encode()
        return head.encode() + _data_lines(self.data)


def _data_lines(data: Any) -> bytes:
    if isinstance(data, str):
        text = data
    elif isinstance(data, (dict, list)):
        return b"data: " + encode_json(data) + b"\n\n"  # JSON never holds a raw line break
    else:
        raise TypeError(
            f"event data must be a str, or a dict or list (sent as JSON), got {type(data).__name__}"
        )
    if "\n" not in text and "\r" not in text:
        return f"data: {text}\n\n".encode()
    return "".join(f"data: {line}\n" for line in _LINE_BREAK.split(text)).encode() + b"\n"


def encode_event(item: Any) -> bytes:
    """Frame one item of an event stream: a ``str``, a ``dict``/``list`` or an :class:`Event`."""
    if type(item) is Event:
        return item.encode()
    if isinstance(item, (str, dict, list)):
        return _data_lines(item)
    if isinstance(item, Event):
        return item.encode()
    raise TypeError(
        f"an EventStream yielded a {type(item).__name__}; yield a str, a dict or list"
        " (sent as JSON), or an Event"
    )


class _Failure:
    """The generator raised: carried across to the reader, raised there."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


_EMPTY: Any = object()  # the hand-off slot holds nothing
_END: Any = object()  # the generator is exhausted


class EventStream:
    """A ``text/event-stream`` response body built from a generator.

    The generator yields ``str`` (one event's data), ``dict`` or ``list``
    (data as JSON) or :class:`Event` (data plus ``event``, ``id``, ``retry``).
    Return the stream from a handler::

        return EventStream(events())                  # 200, heartbeat every 15 s
        return EventStream(events(), heartbeat=5)     # a chattier heartbeat
        return EventStream(events(), heartbeat=None)  # none (and no extra greenlet)

    The response carries ``Content-Type: text/event-stream``,
    ``Cache-Control: no-cache`` and ``X-Accel-Buffering: no`` (so nginx does
    not buffer it). Like any streamed body it is primed before headers are
    sent (an error or a ``redirect()`` before the first event is a proper
    response, whatever the heartbeat) and closed when the client disconnects, which runs the
    generator's ``finally:`` (on ``microroute run`` and both gunicorn
    workers, within a second, even while it blocks: see
    :mod:`microroute.disconnect`).

    :param source: an iterable of events, typically a generator.
    :param heartbeat: seconds of silence after which a ``: heartbeat`` comment
        is sent, or ``None`` for no heartbeat.
    """

    __slots__ = (
        "_closing",
        "_cooperative",
        "_heartbeat",
        "_iterator",
        "_pump",
        "_reader",
        "_slot",
        "_writer",
    )

    #: Headers every event stream is sent with; they replace the stream defaults.
    headers: ClassVar[list[tuple[str, str]]] = [
        ("Content-Type", "text/event-stream"),
        ("Cache-Control", "no-cache"),
        ("X-Accel-Buffering", "no"),
    ]

    def __init__(self, source: Iterable[Any], *, heartbeat: float | None = 15.0) -> None:
        if callable(source) and not isinstance(source, Iterable):
            raise TypeError(
                "EventStream() takes an iterable of events: call the generator function,"
                " EventStream(events()) not EventStream(events)"
            )
        if heartbeat is not None and (isinstance(heartbeat, bool) or not heartbeat > 0):
            raise ValueError(f"heartbeat must be seconds > 0, or None; got {heartbeat!r}")
        self._iterator: Iterator[Any] = iter(source)
        self._heartbeat = heartbeat
        self._pump: greenlet | None = None  # the generator's greenlet, once started
        self._slot: Any = _EMPTY  # an encoded event handed over, _END or a _Failure
        self._reader: Waiter[Any] | None = None  # the response's greenlet, waiting
        self._writer: Waiter[Any] | None = None  # the generator's greenlet, waiting
        self._closing: _GeventEvent | None = None
        #: Whether blocking calls yield to other greenlets (a monkey-patched process).
        self._cooperative = True

    def hand_heartbeats_to(self, register: Callable[[float, bytes], Any]) -> None:
        """Let the server write the heartbeats: the generator then runs inline.

        A server that watches its idle streams (``microroute run``'s reaper)
        writes the ``: heartbeat`` comment itself, so the stream needs no
        greenlet or timer of its own. Called by the app before the stream is
        primed; a server without that offer keeps the greenlet.
        """
        if self._heartbeat is not None and self._pump is None:
            register(self._heartbeat, HEARTBEAT)
            self._heartbeat = None

    def inline(self) -> Iterator[Any] | None:
        """The events themselves, when this stream runs them inline (no heartbeat greenlet).

        The app then pulls and encodes them in the response's own iteration,
        one frame less on a parked stream's stack than going through
        ``__next__``; ``None`` when a greenlet of its own must run them.
        """
        if self._heartbeat is None and self._pump is None:
            return self._iterator
        return None

    @property
    def heartbeat(self) -> float | None:
        """Seconds of silence between heartbeats this stream sends itself (``None``: none)."""
        return self._heartbeat

    @staticmethod
    def last_event_id(request: Request | None = None) -> str | None:
        """The ``Last-Event-ID`` a reconnecting EventSource sent, or ``None``.

        Browsers reconnect on their own after a dropped stream and send the
        ``id`` of the last event they received, so a stream can resume where
        it stopped. With no argument it reads the current request (like
        ``headers()``); pass *request* to read another.

        >>> since = EventStream.last_event_id()          # doctest: +SKIP
        """
        found = (request.headers if request is not None else _request_headers()).get(
            "Last-Event-ID"
        )
        return found or None

    # -- the WSGI body -------------------------------------------------------

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> bytes:
        if self._heartbeat is None:
            return encode_event(next(self._iterator))
        primed = self._pump is not None
        if not primed:
            self._start()
        item = self._slot
        if item is _EMPTY:
            # The first call primes the stream before headers go out: it waits
            # for the first real event (or error, or redirect()), however long,
            # so that an abort() there is still a proper response. Heartbeats
            # start once headers are out.
            item = self._wait(self._heartbeat if primed else None)
            if item is _EMPTY:
                return HEARTBEAT
        if type(item) is bytes:
            self._slot = _EMPTY
            writer = self._writer
            if writer is not None:  # the generator may make the next event now
                self._writer = None
                writer.hub.loop.run_callback(writer.switch, None)
            return item
        self._slot = _END  # stay exhausted if asked again
        if item is _END:
            raise StopIteration
        raise item.error

    def _wait(self, seconds: float | None) -> Any:
        """Park the response's greenlet until an event is handed over or *seconds* pass."""
        from gevent.hub import Waiter, get_hub

        hub = get_hub()
        reader: Waiter[Any] = Waiter(hub)
        self._reader = reader
        timer = hub.loop.timer(seconds) if seconds is not None else None
        if timer is not None:
            timer.start(reader.switch, None)
        try:
            reader.get()
        finally:
            if timer is not None:
                timer.close()
            self._reader = None
        return self._slot

    def _start(self) -> None:
        import gevent
        from gevent import monkey
        from greenlet import getcurrent

        pump = gevent.spawn_raw(self._run_source)
        # The request's own context, not a copy: cookies(), headers() and
        # session() work inside the generator, and what it sets there (an
        # after() call, a ContextVar) is the request's too. Set directly, it
        # costs no extra stack frame.
        pump.gr_context = getcurrent().gr_context
        # Unpatched (the TestClient, a threaded server), a time.sleep() or a
        # queue.get() in the generator blocks the whole thread: hand each
        # event to the response before going on, or it waits for that call.
        self._cooperative = monkey.is_module_patched("time")
        self._pump = pump

    def _hand_over(self, item: Any) -> None:
        """In the generator's greenlet: put *item* in the slot, once the last one was taken.

        The generator goes straight back to work after handing an event over:
        waiting for the response's greenlet to take it would delay its next
        ``time.sleep()`` by a whole scheduling round, and under load the gaps
        between events would stretch by that much (measured: 2 s instead of
        1 s with 10,000 streams).
        """
        from gevent.hub import Waiter, get_hub

        hub = get_hub()
        if self._slot is not _EMPTY:  # the client is slower than the generator: wait
            writer: Waiter[Any] = Waiter(hub)
            self._writer = writer
            writer.get()
        self._slot = item
        reader = self._reader
        if reader is not None:
            self._reader = None
            hub.loop.run_callback(reader.switch, None)
            if not self._cooperative:
                from gevent import sleep

                sleep(0)  # the response takes the event now, before the generator blocks

    def _run_source(self) -> None:
        """The generator's greenlet: encode each event and hand it over, one at a time."""
        from greenlet import GreenletExit

        iterator = self._iterator
        try:
            for item in iterator:
                self._hand_over(encode_event(item))
            self._hand_over(_END)
        except GreenletExit:
            pass  # close(): the generator's finally has run, or runs just below
        except BaseException as exc:
            self._hand_over(_Failure(exc))
        finally:
            close_body(iterator)
            if self._closing is not None:
                self._closing.set()

    def close(self) -> None:
        """Stop the generator and run its ``finally:`` (PEP 3333 ``close()``).

        Waits up to :data:`CLOSE_TIMEOUT` seconds for the generator's cleanup
        when it runs in its own greenlet, so resources are freed when this
        returns.
        """
        pump = self._pump
        if pump is None:
            close_body(self._iterator)
            return
        if pump.dead:
            return
        import gevent
        from gevent.event import Event as GeventEvent
        from greenlet import GreenletExit

        closing = self._closing = GeventEvent()
        gevent.kill(pump, GreenletExit)
        closing.wait(CLOSE_TIMEOUT)

    def __repr__(self) -> str:
        return f"<EventStream heartbeat={self._heartbeat}>"
