"""The static cache: GET responses made as at build time, kept and reused.

Next.js makes a static route handler's response **at build time, with no
request at all**, so nothing a client sends can reach it. This module is that
one idea. The app hands :class:`RouteCache` a *build* function that runs a
handler on a synthetic request made from the path alone; the cache decides
when to call it and what to keep::

    App -> middleware -> RouteCache.serve(endpoint, path, ...)
        HIT    the stored response
        STALE  the stored response, and one background build replaces it
        MISS   one build per path (per process, and per cluster with a shared
               store), stored if it may be, then served

A build that proves the route dynamic (the handler called ``cookies()``,
streamed, or answered with ``Set-Cookie``/``Vary``/``Cache-Control: private``)
marks the route dynamic for good; the live request is then served by the
app's ordinary *run*. A store that fails (Redis down, a timeout, a failover,
bad data) is logged (:class:`~microroute.stores.FailSoft`) and the request is
served by a build without the store: never a 500.

Where entries live is :mod:`microroute.stores` (:class:`MemoryStore`,
:class:`RedisStore`, re-exported here); both invalidate by generation, so a
revalidation never races a build in flight, and a soft one (the default)
leaves the entry to be served STALE while one build replaces it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal, cast

from .flights import FLIGHT_TIMEOUT, POLL_SECONDS, Flight, Flights, in_background
from .handlers import Endpoint
from .responses import Headers, Reply, close_body
from .stores import (
    DEFAULT_MAX_BYTES,
    NO_LOCK,
    CacheStore,
    Entry,
    FailSoft,
    Lock,
    MemoryStore,
    RedisStore,
    VersionedStore,
)
from .table import Route

__all__ = [
    "DEFAULT_MAX_BYTES",
    "BuildFailed",
    "CacheStore",
    "DevCache",
    "Entry",
    "MemoryStore",
    "RedisStore",
    "RouteCache",
    "VersionedStore",
    "Warmed",
    "static_reason",
]

logger = logging.getLogger("microroute")

ONE_YEAR = 31_536_000
_NOT_MODIFIED_HEADERS = frozenset({"etag", "cache-control", "vary", "x-microroute-cache"})
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: What :meth:`RouteCache.warm` did for a path.
Warmed = Literal["built", "fresh", "dynamic", "not stored", "failed"]

#: ``build(endpoint, path, params)``: the handler's reply to a synthetic GET for
#: *path*, with whether the handler itself made it (False: an error handler's
#: fallback); ``None`` when the run called a dynamic helper and was abandoned.
Build = Callable[[Endpoint, str, dict[str, Any]], "tuple[Reply, bool] | None"]
#: ``run(endpoint, live, params)``: serve the live request normally. *live* is
#: the app's per-request state, opaque here.
Run = Callable[[Endpoint, Any, dict[str, Any]], Reply]


def static_reason(route: Route, endpoint: Endpoint, static_by_default: bool = True) -> str | None:
    """Why a GET handler is dynamic, as far as registration can tell; ``None`` if static.

    A build adds the reasons only a run can show (a helper call, a stream
    from a plain function, a ``Set-Cookie``).
    """
    config = endpoint.config
    if endpoint.unresolved is not None:  # the app cannot start (App.check() says why)
        return "cannot start"
    if config.dynamic in ("force-static", "error"):
        return None  # both force a static build; "error" makes dynamic calls raise
    if config.dynamic == "force-dynamic":
        return 'dynamic = "force-dynamic"'
    if config.revalidate == 0 and config.revalidate is not False:
        return "revalidate = 0"
    if endpoint.streams:
        return "streams its response"
    if endpoint.provided:  # a provider runs per request: a user, a DB session
        return f"takes {', '.join(endpoint.provided)}"
    if endpoint.needs_request:
        return "takes request"
    written = sorted(_WRITE_METHODS & set(route.endpoints))
    if written:
        return f"route also serves {', '.join(written)}"
    if not static_by_default and config.revalidate is False:
        return "static_by_default=False"
    return None


def dynamic_headers(headers: Headers) -> str | None:
    """Why a reply with *headers* may never be stored (and its route is dynamic)."""
    for name, value in headers:
        lower = name.lower()
        if lower == "set-cookie":
            return "sets a cookie"
        if lower == "vary":
            return "sends Vary"
        if lower == "cache-control":
            directives = {part.split("=", 1)[0].strip().lower() for part in value.split(",")}
            for directive in ("no-store", "private"):
                if directive in directives:
                    return f"Cache-Control: {directive}"
    return None


def cache_control(revalidate: float | bool) -> str:
    """The ``Cache-Control`` Next.js sends for a static route handler."""
    if revalidate is False:
        return f"s-maxage={ONE_YEAR}"
    seconds = int(revalidate)
    return f"s-maxage={seconds}, stale-while-revalidate={ONE_YEAR - seconds}"


class BuildFailed(Exception):
    """A static build raised: the request is run live instead (never a 500 of its own).

    Raised by the handler stage for a build of a route left on ``dynamic =
    "auto"``; the original exception is :attr:`error` (and ``__cause__``).
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error
        #: What the route table says of the route once it proved dynamic.
        self.reason = f"build failed: {type(error).__name__}: {error}"[:200]


class ScopedEntry(Entry):
    """The entry of a route with scoped middleware: never a bare fast-path HIT.

    The app's HIT fast path answers before routing, so it could not run the
    route's own middleware; such an entry is served by the cache after
    routing instead, inside that middleware. Deciding it by class keeps
    every other HIT's test as it was.
    """

    __slots__ = ()

    def servable(self, environ: dict[str, Any]) -> bool:
        return False


class RouteCache:
    """Serves static GETs from a store: HIT, STALE (and rebuild), or MISS (build).

    *build* runs a handler as at build time (see :data:`Build`); *run* serves a
    live request normally, for a route whose build proved it dynamic.
    """

    def __init__(self, store: CacheStore, build: Build, run: Run, build_id: str = "") -> None:
        self.store = store
        self._build = build
        self._run = run
        self._flights = Flights()
        self._health = FailSoft(store)
        store.bind(build_id)
        #: The memory store's dict, for the app's HIT fast path (None for shared
        #: stores). It holds ``@cached`` values too, under keys no path equals.
        self.fast: OrderedDict[str, Entry] | None = (
            cast("OrderedDict[str, Entry]", store.entries)
            if isinstance(store, MemoryStore)
            else None
        )

    def serve(
        self,
        endpoint: Endpoint,
        path: str,
        params: dict[str, Any],
        live: Any,
        if_none_match: str | None,
    ) -> Reply:
        """The response to a GET (or HEAD) of *path*, a static route."""
        entry = self._get(path, endpoint)
        if entry is None:
            with self._flights.lead(path) as (leader, flight):
                if leader:
                    return self._lead(endpoint, path, params, live, if_none_match, flight)
            # Another request of this process built it: share what it made.
            if flight.entry is not None:
                return _reply(flight.entry, flight.entry.hit, if_none_match)
            if flight.result is not None:  # in memory, but not to be stored (a 404, say)
                return cast(Reply, flight.result)
            if endpoint.dynamic_reason is not None:  # the leader's build proved it dynamic
                return self._run(endpoint, live, params)
            # Nothing to share (a stream, or the leader timed out): build our own.
            return self._fresh(endpoint, path, params, live, if_none_match, Flight(), keep=False)
        if entry.is_stale(time.time()):
            if self._flights.start(path):
                in_background(lambda: self._rebuild(endpoint, path, params))
            return _reply(entry, entry.stale, if_none_match)
        return _reply(entry, entry.hit, if_none_match)

    def _lead(
        self,
        endpoint: Endpoint,
        path: str,
        params: dict[str, Any],
        live: Any,
        if_none_match: str | None,
        flight: Flight,
    ) -> Reply:
        """This process's one build of *path*, once no other process is building it."""
        lock = self._lock(path)
        deadline = time.monotonic() + FLIGHT_TIMEOUT
        while lock is None and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)  # gevent's sleep in a patched server
            entry = self._get(path, endpoint)
            if entry is not None:  # another worker built it
                flight.entry = entry
                return _reply(entry, entry.hit, if_none_match)
            lock = self._lock(path)
        try:
            entry = self._get(path, endpoint) if lock is not None else None
            if entry is not None:  # built and stored just before the lock was ours
                flight.entry = entry
                return _reply(entry, entry.hit, if_none_match)
            return self._fresh(endpoint, path, params, live, if_none_match, flight, keep=True)
        finally:
            if lock is not None:
                lock.release()

    def _fresh(
        self,
        endpoint: Endpoint,
        path: str,
        params: dict[str, Any],
        live: Any,
        if_none_match: str | None,
        flight: Flight,
        keep: bool,
    ) -> Reply:
        """Build *path* now and serve the result, stored when *keep* and it may be.

        What it made goes on *flight* too, for the requests that waited for it.
        """
        generations = None
        if keep:
            # Read before the build: a revalidation that lands while it runs
            # moves a generation, and the entry it stores is never served fresh.
            generations = self._generations(path, endpoint)
            keep = generations is not None
        try:
            built = self._build(endpoint, path, params)
        except BuildFailed as failed:
            return self._after_failed_build(endpoint, live, params, failed)
        if built is None:  # the build called cookies(), headers() or session()
            return self._run(endpoint, live, params)
        reply = built[0]
        entry = self._judge(endpoint, *built)
        if entry is None or not keep:
            if type(reply[2]) is list and endpoint.dynamic_reason is None:
                flight.result = reply  # made with no request: the waiters may have it too
            return reply
        entry.generations = generations
        flight.entry = entry
        self._set(path, entry)
        return _reply(entry, entry.miss, if_none_match)

    def _after_failed_build(
        self, endpoint: Endpoint, live: Any, params: dict[str, Any], failed: BuildFailed
    ) -> Reply:
        """The build raised: answer this request live, as a dynamic route is.

        Most often the handler needs what only a live request has (a value its
        middleware set, a DB session): it works live, and the route is dynamic
        from now on, with the reason. A handler that fails live too is broken
        either way (a database down): it gets its 500 and stays static, so the
        next request builds again.
        """
        reply = self._run(endpoint, live, params)
        if not live.failed and endpoint.dynamic_reason is None:
            endpoint.dynamic_reason = failed.reason
            logger.warning(
                "The static build of %s raised %s; it worked as a live request, so it is"
                " dynamic from now on. A static GET runs as at build time: once, for the"
                " path alone, with no request and outside middleware; a handler that needs"
                " something per request (a value middleware set, a DB session) should say"
                ' dynamic = "force-dynamic".',
                endpoint.source,
                failed,
            )
        return reply

    def _rebuild(self, endpoint: Endpoint, path: str, params: dict[str, Any]) -> None:
        """Replace a stale entry, off the request; on failure the stale copy stays."""
        try:
            if self.warm(endpoint, path, params, quiet=True) == "not stored":
                logger.warning("Revalidating %s gave no 200; keeping the stale copy", path)
        except Exception:
            logger.exception("Revalidating %s failed; keeping the stale copy", path)
        finally:
            self._flights.finish(path)

    def warm(
        self, endpoint: Endpoint, path: str, params: dict[str, Any], quiet: bool = False
    ) -> Warmed:
        """Build *path* and store it, unless a fresh entry is there already.

        For a stale entry in the background, and for ``microroute warm``: no
        live request, so a build that proves the route dynamic or fails stores
        nothing (a stale copy stays). *quiet* leaves a build's error to the
        caller's log. Takes the store's lock; another worker building it counts
        as ``"fresh"``.
        """
        lock = self._lock(path)
        if lock is None:
            return "fresh"  # another worker is building it
        try:
            entry = self._get(path, endpoint)
            if entry is not None and not entry.is_stale(time.time()):
                return "fresh"  # another worker built it just now
            generations = self._generations(path, endpoint)
            if generations is None:
                return "failed"  # the store is failing: a build could not be kept
            try:
                built = self._build(endpoint, path, params)
            except BuildFailed:
                if quiet:
                    raise
                logger.exception("Building %s for the cache failed", path)
                return "failed"
            if built is None:
                return "dynamic"  # its entries are no longer served
            entry = self._judge(endpoint, *built)
            if entry is not None:
                entry.generations = generations
                self._set(path, entry)
                return "built"
            close_body(built[0][2])
            return "dynamic" if endpoint.dynamic_reason is not None else "not stored"
        finally:
            lock.release()

    def _judge(self, endpoint: Endpoint, reply: Reply, made_by_handler: bool) -> Entry | None:
        """The entry a build's *reply* makes, or None; marks the route dynamic if it proves so.

        A stream, or ``Set-Cookie``/``Vary``/``Cache-Control: no-store, private``,
        makes the route dynamic; anything but the handler's own 200 is simply
        not stored.
        """
        status, headers, body = reply
        if type(body) is not list:
            endpoint.dynamic_reason = "streams its response"
            return None
        reason = dynamic_headers(headers)
        if reason is not None:
            endpoint.dynamic_reason = reason
            return None
        if not (made_by_handler and status.startswith("200 ")):
            return None
        return self._entry(endpoint, reply)

    @staticmethod
    def _entry(endpoint: Endpoint, reply: Reply) -> Entry:
        status, headers, body = reply
        config = endpoint.config
        if not any(name.lower() == "cache-control" for name, _ in headers):
            headers = [*headers, ("Cache-Control", cache_control(config.revalidate))]
        revalidate = None if config.revalidate is False else float(config.revalidate)
        kind = Entry if endpoint.layers is None else ScopedEntry
        entry = kind(status, headers, b"".join(body), time.time(), revalidate, tags=config.tags)
        entry.endpoint = endpoint
        return entry

    # -- the store, failing soft ------------------------------------------------

    def _get(self, path: str, endpoint: Endpoint) -> Entry | None:
        if self._health.down():
            return None
        try:
            return self.store.get(path, endpoint.config.tags)
        except Exception:
            self._health.failed("read", path)
            return None

    def _generations(self, path: str, endpoint: Endpoint) -> tuple[int, ...] | None:
        """What a build of *path* starts from (see :class:`CacheStore`); None on failure."""
        if self._health.down():
            return None
        try:
            return self.store.generations(path, endpoint.config.tags)
        except Exception:
            self._health.failed("read the generations of", path)
            return None

    def _set(self, path: str, entry: Entry) -> None:
        if self._health.down():
            return
        try:
            self.store.set(path, entry)
        except Exception:
            self._health.failed("store", path)

    def _lock(self, path: str) -> Lock | None:
        if self._health.down():
            return NO_LOCK
        try:
            return self.store.lock(path)
        except Exception:
            self._health.failed("lock", path)
            return NO_LOCK  # no store to coordinate through: build here

    def delete_path(self, path: str, subtree: bool, expire: bool) -> int:
        return self.store.delete_path(path, subtree, expire)

    def delete_tag(self, tag: str, expire: bool) -> int:
        return self.store.delete_tag(tag, expire)


class DevCache(RouteCache):
    """``microroute dev``: every static GET built again for its request, and never kept.

    As ``next dev`` runs route handlers on each request: a save, a write to
    the database, and the next GET shows it. The build is still the static
    one (no query, no cookies, outside middleware), so what a route does in
    development is what it does in production; its reply says
    ``X-Microroute-Cache: DEV`` and ``Cache-Control: no-store``.
    """

    def __init__(self, build: Build, run: Run) -> None:
        super().__init__(MemoryStore(), build, run)
        self.fast = None  # nothing is kept: no HIT to look up

    def serve(
        self,
        endpoint: Endpoint,
        path: str,
        params: dict[str, Any],
        live: Any,
        if_none_match: str | None,
    ) -> Reply:
        try:
            built = self._build(endpoint, path, params)
        except BuildFailed as failed:
            return self._after_failed_build(endpoint, live, params, failed)
        if built is None:  # the build called cookies(), headers() or session()
            return self._run(endpoint, live, params)
        entry = self._judge(endpoint, *built)
        if entry is None:
            return built[0]
        # Nothing may keep it either: the next request shows the next change.
        kept = [h for h in entry.headers if h[0].lower() != "cache-control"]
        headers = [*kept, ("Cache-Control", "no-store"), ("X-Microroute-Cache", "DEV")]
        return _reply(entry, headers, None)


def _reply(entry: Entry, headers: Headers, if_none_match: str | None) -> Reply:
    if if_none_match and entry.matches(if_none_match):
        kept = [h for h in headers if h[0].lower() in _NOT_MODIFIED_HEADERS]
        return "304 Not Modified", kept, []
    return entry.status, headers, [entry.body]
