"""Single-flight in one process, and work done off the request.

When many requests of one process want the same missing thing at once (a
cold static path, a ``@cached`` value), one of them makes it and the others
wait for it and share it (:class:`Flights`). Across processes a store's lock
does the same (:meth:`~microroute.stores.CacheStore.lock`). A stale entry is
replaced by one background task (:func:`in_background`) while the old copy
is served.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .stores import Entry

__all__ = ["FLIGHT_TIMEOUT", "POLL_SECONDS", "Flight", "Flights", "in_background"]

#: How long a caller waits for another one (or another worker) making the same thing.
FLIGHT_TIMEOUT = 30.0
#: How often a caller waiting for another worker's build looks for its entry.
POLL_SECONDS = 0.01


class Flight:
    """One build under way in this process, and what it made, for those who waited."""

    __slots__ = ("done", "entry", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        #: The entry the build stored.
        self.entry: Entry | None = None
        #: When it stored none, what it made in memory (a reply, a value), if shareable.
        self.result: Any = None


class Flights:
    """Single-flight in one process: one caller makes a key, the others share it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[object, Flight] = {}

    @contextmanager
    def lead(self, key: object) -> Iterator[tuple[bool, Flight]]:
        """Yields ``(True, flight)`` to the one caller that should make *key*.

        The others wait (at most :data:`FLIGHT_TIMEOUT`) until it is done and
        get ``(False, flight)``, holding what the leader made.
        """
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = Flight()
        if not leader:
            flight.done.wait(FLIGHT_TIMEOUT)
            yield False, flight
            return
        try:
            yield True, flight
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def start(self, key: object) -> bool:
        """Claim *key* for a background build; False if one is running."""
        with self._lock:
            if key in self._flights:
                return False
            self._flights[key] = Flight()
            return True

    def finish(self, key: object) -> None:
        with self._lock:
            flight = self._flights.pop(key, None)
        if flight is not None:
            flight.done.set()


def in_background(task: Callable[[], None]) -> None:
    """Run *task* off the request: a greenlet under gevent, else a daemon thread.

    In a monkey-patched process (``microroute run``, gunicorn's gevent worker)
    ``threading`` is gevent's, so the same call spawns a greenlet that runs
    when the hub gets time; without patching (the TestClient) it is a thread.
    It runs in a copy of the caller's context, so a rebuild knows the request
    that caused it (its observers see the build as that request's).
    """
    run = contextvars.copy_context().run
    threading.Thread(target=run, args=(task,), name="microroute-revalidate", daemon=True).start()
