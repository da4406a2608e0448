"""The lifecycle seam: one place where a component watches a request's life.

A request goes::

    server -> App -> request scope -> middleware -> cache -> dispatch -> handler
           -> reply -> wire -> body end (after() work, disconnect, stream close)

An :class:`Observer` sees four moments of it, each with the request's own
context active (so a ``ContextVar`` it sets at the start, a trace span say, is
current in the handler, in every chunk of its stream, in its ``after()`` work
and in its ``on_disconnect`` callbacks):

1. :meth:`~Observer.request_started`: before anything else runs;
2. :meth:`~Observer.route_matched`: the route's template (``/api/posts/[id]``) is known;
3. :meth:`~Observer.response_started`: the status and headers are about to go out
   (an observer may add headers: a request id);
4. :meth:`~Observer.response_ended`: the body ended, at its last byte, on an error,
   or because the client left.

Two more pairs, for what a request causes beyond its response:

* :meth:`~Observer.after_scheduled` and :meth:`~Observer.after_done`: the
  request's ``after()`` work was handed to the pool, and all of it ran;
* :meth:`~Observer.build_started` and :meth:`~Observer.build_ended`: a static
  build the request caused (a MISS, a stale entry's rebuild), seen as an
  exchange of its own (``build.cause`` is the request's), with each hook run
  in the build's own context.

Access logs, request ids, traces, metrics and readiness plug in here, and no
other module needs to know they exist. With no observer, the app takes none of
these steps: one attribute test per request is all the seam costs.

::

    class Timing(Observer):
        def response_ended(self, exchange):
            print(exchange.method, exchange.route, exchange.duration_ms)

    app.observe(Timing())
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from greenlet import GreenletExit

__all__ = ["Exchange", "ObservedBody", "Observer", "Observers"]

Headers = list[tuple[str, str]]


class Observer:
    """A component that watches requests; override the moments you need.

    Each hook runs in the request's context. A hook must not raise: what it
    raises is the request's error (the reply is already decided by the time
    the last two run, so there it would cut the response).
    """

    watching: Callable[[], bool] | None = None
    # (A watching observer's response_ended is wanted for the requests whose
    # start it watched: its body is then watched to its end, and only then.)

    def request_started(self, exchange: Exchange) -> None:
        """A request arrived: nothing of the app has run for it yet."""

    def route_matched(self, exchange: Exchange) -> None:
        """``exchange.route`` now holds the matched route's template."""

    def response_started(self, exchange: Exchange, headers: Headers) -> None:
        """``exchange.status`` is decided; *headers* may still be added to."""

    def response_ended(self, exchange: Exchange) -> None:
        """The body is done: read ``bytes_sent``, ``error``, ``disconnected``."""

    def after_scheduled(self, exchange: Exchange) -> None:
        """The request's ``after()`` work was handed on (its response is closing)."""

    def after_done(self, exchange: Exchange) -> None:
        """The request's ``after()`` work all ran (in a copy of its context)."""

    def build_started(self, build: Exchange) -> None:
        """A static build begins, in its own fresh context; ``build.cause`` caused it."""

    def build_ended(self, build: Exchange) -> None:
        """The build is over: ``build.status`` is its reply's, or None when the
        build was abandoned (the route proved dynamic); ``build.error`` is what it
        raised, if it failed."""


_NO_HEADERS: Headers = []


class Observers:
    """The observers of one app, sorted by moment: only the hooks they override are called.

    An observer that only adds a header (request ids) costs no body wrapper:
    the body is watched to its end only when some observer wants that moment.
    """

    __slots__ = (
        "active",
        "after_done",
        "after_scheduled",
        "always",
        "build_ended",
        "build_started",
        "builds",
        "end_if",
        "ended",
        "matched",
        "responding",
        "started",
        "wanted",
        "watch_end",
    )

    def __init__(self, observers: Iterable[Observer]) -> None:
        def overriding(name: str) -> tuple[Any, ...]:
            base = getattr(Observer, name)
            return tuple(getattr(o, name) for o in observers if getattr(type(o), name) is not base)

        observers = list(observers)
        #: Some observer watches every request: each one is an Exchange.
        self.always = any(o.watching is None for o in observers)
        #: Otherwise, what says whether this request is watched (all must be cheap).
        self.wanted = tuple(o.watching for o in observers if o.watching is not None)
        #: Whether the next request is observed at all, when not :attr:`always`:
        #: the one observer's own question when there is one (a call less).
        self.active: Callable[[], bool] = (
            self.wanted[0] if len(self.wanted) == 1 and not self.always else self._any_wanted
        )
        self.started = overriding("request_started")
        self.matched = overriding("route_matched")
        self.responding = overriding("response_started")
        self.ended = overriding("response_ended")
        self.after_scheduled = overriding("after_scheduled")
        self.after_done = overriding("after_done")
        self.build_started = overriding("build_started")
        self.build_ended = overriding("build_ended")
        #: Whether any observer watches static builds (else none is an Exchange).
        self.builds = bool(self.build_started or self.build_ended)
        ending = [o for o in observers if type(o).response_ended is not Observer.response_ended]
        #: Whether every body is watched to its end (an observer of every request wants it).
        self.watch_end = any(o.watching is None for o in ending)
        #: Otherwise, the questions that say whether this request's body is.
        self.end_if = tuple(o.watching for o in ending if o.watching is not None)

    def _any_wanted(self) -> bool:
        for wanted in self.wanted:
            if wanted():
                return True
        return self.always


class Exchange:
    """One request and its response, as observers see them.

    Made for every observed request (request ids make that every request), so
    it is slotted: all of it set in one go, no instance dict.
    """

    __slots__ = (
        "_extra",
        "bytes_sent",
        "cause",
        "completed",
        "context",
        "environ",
        "error",
        "headers",
        "observers",
        "raised",
        "request_id",
        "route",
        "started",
        "status",
        "streaming",
        "watch_end",
    )

    def __init__(self, environ: dict[str, Any], observers: Observers) -> None:
        self.environ = environ
        self.observers = observers
        #: Whether the body is watched to its end (some observer wants that moment).
        self.watch_end: bool = observers.watch_end
        if observers.end_if and not self.watch_end:
            self.watch_end = any(wanted() for wanted in observers.end_if)
        self.started = time.perf_counter()
        #: The matched route's template, or None (no route matched, or not yet).
        self.route: str | None = None
        #: The request's id (``App(request_id_header=...)``), once one is known.
        self.request_id: str | None = None
        #: The status line (``"200 OK"``), once decided.
        self.status: str | None = None
        #: The body is a stream (a generator's chunks, an EventStream), once decided.
        self.streaming = False
        #: The response's headers, as sent, once decided.
        self.headers: Headers = _NO_HEADERS
        self.bytes_sent = 0
        #: The body reached its end (the last byte went to the server).
        self.completed = False
        #: What cut the body, if anything did after the headers went out.
        self.error: BaseException | None = None
        #: The request's context, where every hook runs.
        self.context: contextvars.Context | None = None
        #: The first exception the app rendered as this request's error page (a
        #: handler's, middleware's); never an ``abort()`` or ``HTTPError``.
        self.raised: BaseException | None = None
        #: For a static build: the exchange of the request that caused it.
        self.cause: Exchange | None = None
        self._extra: dict[str, Any] | None = None

    @property
    def method(self) -> str:
        return str(self.environ.get("REQUEST_METHOD", ""))

    @property
    def path(self) -> str:
        return str(self.environ.get("PATH_INFO", ""))

    @property
    def extra(self) -> dict[str, Any]:
        """Room for observers' own per-request values, keyed by their name."""
        extra = self._extra
        if extra is None:
            extra = self._extra = {}
        return extra

    @property
    def status_code(self) -> int:
        return int(self.status[:3]) if self.status else 0

    @property
    def disconnected(self) -> bool:
        """The body was closed before its end, with no error: the client left."""
        return not self.completed and self.error is None

    @property
    def duration_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0

    # The moments, called by the app's stages (each in the request's context).

    def start(self) -> None:
        for hook in self.observers.started:
            hook(self)

    def routed(self, template: str) -> None:
        """Set :attr:`route` and tell the observers (the stages test ``observers.matched``)."""
        self.route = template
        for hook in self.observers.matched:
            hook(self)

    def respond(self, status: str, headers: Headers) -> Headers:
        """Tell observers the reply; returns the headers to send (maybe added to)."""
        self.status = status
        hooks = self.observers.responding
        if hooks:
            headers = list(headers)
            for hook in hooks:
                hook(self, headers)
        self.headers = headers
        return headers

    def end(self) -> None:
        for hook in self.observers.ended:
            hook(self)

    def failed(self, exc: BaseException) -> None:
        """The app rendered *exc* as this request's error page (the first one is kept)."""
        if self.raised is None:
            self.raised = exc

    def after_handed_on(self) -> None:
        for hook in self.observers.after_scheduled:
            hook(self)

    def after_ran(self) -> None:
        for hook in self.observers.after_done:
            hook(self)

    def build_exchange(self, environ: dict[str, Any], template: str) -> Exchange:
        """The exchange of a static build this request causes (not started yet)."""
        build = Exchange(environ, self.observers)
        build.cause = self
        build.route = template
        return build

    def build_begins(self) -> None:
        for hook in self.observers.build_started:
            hook(self)

    def build_ends(self) -> None:
        for hook in self.observers.build_ended:
            hook(self)


class ObservedBody:
    """A response body that tells its exchange how it went, and when it ended.

    Counts the bytes the server takes; ``close()`` (PEP 3333: once, when the
    server is done, whether the body ended or the client left) closes the
    body it wraps (a generator's ``finally:``, ``after()`` work handed on),
    then runs :meth:`Exchange.end` in the request's context.
    """

    __slots__ = ("_body", "_closed", "_exchange", "_iterator")

    def __init__(self, body: Iterable[bytes], exchange: Exchange) -> None:
        self._body = body
        self._exchange = exchange
        self._iterator: Iterator[bytes] | None = None
        self._closed = False

    def __iter__(self) -> ObservedBody:
        return self

    def __next__(self) -> bytes:
        iterator = self._iterator
        if iterator is None:
            iterator = self._iterator = iter(self._body)
        try:
            chunk = next(iterator)
        except StopIteration:
            self._exchange.completed = True
            raise
        except (GeneratorExit, GreenletExit):
            raise  # the client left (ClientGone is a GreenletExit), or the server is closing
        except BaseException as exc:
            self._exchange.error = exc
            raise
        self._exchange.bytes_sent += len(chunk)
        return chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        exchange = self._exchange
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            context = exchange.context
            if context is None:
                exchange.end()
            else:
                context.run(exchange.end)
