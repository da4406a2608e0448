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
app's ordinary *run*. A store that fails (Redis down, a timeout, bad data) is
logged, at most every :data:`QUIET_SECONDS`, and the request is served by a
build without the store: never a 500.

Stores implement :class:`CacheStore`: :class:`MemoryStore` (the default, an
LRU bounded by bytes) and :class:`RedisStore` (shared by workers and
machines, keyed by namespace and build id, with a lock per path).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

from .handlers import Endpoint
from .responses import Headers, Reply, close_body
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
    "static_reason",
]

logger = logging.getLogger("microroute")

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: How long a request waits for another one (or another worker) building the same path.
FLIGHT_TIMEOUT = 30.0
#: How often a request waiting for another worker's build looks for its entry.
POLL_SECONDS = 0.01
#: A failing store is logged at most this often.
QUIET_SECONDS = 10.0
#: After a store failure, requests skip the store this long instead of each
#: waiting out its timeouts again.
DOWN_SECONDS = 1.0
ONE_YEAR = 31_536_000
WEEK = 7 * 24 * 3600
_NOT_MODIFIED_HEADERS = frozenset({"etag", "cache-control", "vary", "x-microroute-cache"})
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

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


class Entry:
    """One stored response, with the header lists for each way it is served."""

    __slots__ = (
        "body",
        "created",
        "endpoint",
        "etag",
        "headers",
        "hit",
        "miss",
        "revalidate",
        "size",
        "stale",
        "status",
        "tags",
    )

    def __init__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        body: bytes,
        created: float,
        revalidate: float | None,
        etag: str | None = None,
        tags: tuple[str, ...] = (),
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.created = created
        self.revalidate = revalidate
        self.tags = tags
        self.etag = etag or '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        # Precomputed: a HIT must cost little more than a dict lookup.
        self.hit = [*headers, ("ETag", self.etag), ("X-Microroute-Cache", "HIT")]
        self.stale = [*headers, ("ETag", self.etag), ("X-Microroute-Cache", "STALE")]
        self.miss = [*headers, ("ETag", self.etag), ("X-Microroute-Cache", "MISS")]
        self.size = len(body) + sum(len(k) + len(v) for k, v in headers) + 256
        #: The handler that made it, when made in this process: once that
        #: handler proves dynamic, its entries are no longer served.
        self.endpoint: Endpoint | None = None

    def servable(self, environ: dict[str, Any]) -> bool:
        """Whether the app may answer *environ* with this entry as a plain HIT.

        Only a fresh entry, for a GET without ``If-None-Match``, whose handler
        has not since proved dynamic; anything else takes the full path.
        """
        return (
            environ["REQUEST_METHOD"] == "GET"
            and (self.revalidate is None or time.time() - self.created < self.revalidate)
            and "HTTP_IF_NONE_MATCH" not in environ
            and (self.endpoint is None or self.endpoint.dynamic_reason is None)
        )

    def is_stale(self, now: float) -> bool:
        return self.revalidate is not None and now - self.created >= self.revalidate

    def matches(self, if_none_match: str) -> bool:
        """Whether an ``If-None-Match`` header names this entry's ETag."""
        if if_none_match.strip() == "*":
            return True
        tags = (tag.strip().removeprefix("W/") for tag in if_none_match.split(","))
        return self.etag in tags

    def dumps(self) -> bytes:
        """Serialize for a shared store: a JSON header line, then the body."""
        meta = {
            "status": self.status,
            "headers": self.headers,
            "created": self.created,
            "revalidate": self.revalidate,
            "etag": self.etag,
            "tags": self.tags,
        }
        return json.dumps(meta, separators=(",", ":")).encode() + b"\n" + self.body

    @classmethod
    def loads(cls, data: bytes) -> Entry:
        """The entry :meth:`dumps` wrote; ``ValueError`` for anything else."""
        meta_line, newline, body = data.partition(b"\n")
        try:
            meta = json.loads(meta_line)
            headers = [(str(k), str(v)) for k, v in meta["headers"]]
            revalidate = meta["revalidate"]
            entry = cls(
                str(meta["status"]),
                headers,
                body,
                float(meta["created"]),
                None if revalidate is None else float(revalidate),
                str(meta["etag"]),
                tuple(map(str, meta.get("tags", ()))),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"unreadable cache entry: {exc}") from None
        if not newline:
            raise ValueError("unreadable cache entry: no body separator")
        return entry


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


class Lock(Protocol):
    """A store's build lock on one path, held by this process."""

    def release(self) -> None: ...


@runtime_checkable
class CacheStore(Protocol):
    """Where entries live, keyed by path.

    A store shared by several processes also makes :meth:`lock` mean
    something: one build per path across all of them.
    """

    def bind(self, build_id: str) -> None:
        """Scope every key to *build_id* (a shared store); a local store ignores it."""
        ...

    def get(self, path: str) -> Entry | None: ...

    def set(self, path: str, entry: Entry) -> None: ...

    def lock(self, path: str) -> Lock | None:
        """Take the build lock on *path*; ``None`` while another process holds it."""
        ...

    def delete_path(self, path: str, subtree: bool = False) -> int:
        """Drop the entry of *path*; with *subtree*, every entry below it too."""
        ...

    def delete_tag(self, tag: str) -> int:
        """Drop every entry whose route carries *tag*."""
        ...

    def clear(self) -> None: ...


def _under(key: str, path: str, subtree: bool) -> bool:
    return key == path or (subtree and key.startswith(path.rstrip("/") + "/"))


class _NoLock:
    """The lock of a store no other process shares: always free."""

    def release(self) -> None:
        pass


_NO_LOCK = _NoLock()


class MemoryStore:
    """An in-process LRU bounded by bytes (64 MiB by default)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError(f"cache_max_bytes must be positive, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.used = 0
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def bind(self, build_id: str) -> None:
        pass  # one process, one build

    def get(self, path: str) -> Entry | None:
        entry = self.entries.get(path)
        if entry is not None:
            try:  # noqa: SIM105 - contextlib.suppress costs more than the lookup
                self.entries.move_to_end(path)
            except KeyError:  # evicted meanwhile by another thread
                pass
        return entry

    def set(self, path: str, entry: Entry) -> None:
        with self._lock:
            old = self.entries.pop(path, None)
            if old is not None:
                self.used -= old.size
            if entry.size > self.max_bytes:
                return  # larger than the whole cache: never stored, and the old copy goes
            self.entries[path] = entry
            self.used += entry.size
            while self.used > self.max_bytes:
                _, evicted = self.entries.popitem(last=False)
                self.used -= evicted.size

    def lock(self, path: str) -> Lock | None:
        return _NO_LOCK  # the cache's own single-flight covers one process

    def _drop(self, doomed: Callable[[str, Entry], bool]) -> int:
        with self._lock:
            # A snapshot: a HIT reorders the dict from other threads meanwhile.
            keys = [key for key, entry in list(self.entries.items()) if doomed(key, entry)]
            for key in keys:
                entry = self.entries.pop(key, None)
                if entry is not None:
                    self.used -= entry.size
        return len(keys)

    def delete_path(self, path: str, subtree: bool = False) -> int:
        return self._drop(lambda key, entry: _under(key, path, subtree))

    def delete_tag(self, tag: str) -> int:
        return self._drop(lambda key, entry: tag in entry.tags)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()
            self.used = 0

    def __len__(self) -> int:
        return len(self.entries)


class RedisStore:
    """Entries in Redis, shared by every worker and machine that points at it.

    >>> App(route, cache=RedisStore("redis://127.0.0.1:6379/0"))  # doctest: +SKIP

    Needs the ``redis`` package (``pip install microroute[redis]``). Every key
    starts with *prefix* (the namespace: give each app its own) and the app's
    build id, so a deploy of new code never serves the old code's entries and
    two apps never share them. Entries expire *ttl* seconds after their
    ``revalidate`` window (7 days by default), so old builds' keys go away by
    themselves. A build takes a lock (``SET NX PX``, *lock_seconds*) so N
    workers facing a cold or stale path run the handler once; a lock whose
    holder died expires. Every call is bounded by *timeout* seconds (waiting
    for one of *max_connections* pooled connections included); the cache
    treats a failure as a miss and serves the request uncached.
    """

    def __init__(
        self,
        url_or_client: Any = "redis://127.0.0.1:6379/0",
        prefix: str = "microroute:",
        *,
        ttl: float = WEEK,
        timeout: float = 0.25,
        lock_seconds: float = 10.0,
        max_connections: int = 64,
    ) -> None:
        if isinstance(url_or_client, str):
            try:
                import redis
            except ImportError:
                raise RuntimeError(
                    "RedisStore needs the redis package: pip install 'microroute[redis]'"
                ) from None
            # A blocking pool: under gevent every request in flight may want a
            # connection at once, and a plain pool past its size raises instead
            # of waiting (which would serve a burst uncached).
            pool = redis.BlockingConnectionPool.from_url(
                url_or_client,
                max_connections=max_connections,
                timeout=timeout,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
            )
            url_or_client = redis.Redis(connection_pool=pool)
        if not ttl > 0 or not lock_seconds > 0:
            raise ValueError("RedisStore: ttl and lock_seconds must be positive numbers of seconds")
        self.client = url_or_client
        self.prefix = prefix
        self.ttl = ttl
        self.lock_seconds = lock_seconds
        self.build_id: str | None = None
        self._base = prefix + "unbound:"

    def bind(self, build_id: str) -> None:
        if self.build_id is not None and self.build_id != build_id:
            raise ValueError(
                f"this RedisStore already serves build {self.build_id!r}; give each App its own"
                " RedisStore (with its own prefix for a different app)"
            )
        self.build_id = build_id
        self._base = f"{self.prefix}{build_id}:"

    def _key(self, path: str) -> str:
        return self._base + "p:" + path

    def get(self, path: str) -> Entry | None:
        data = self.client.get(self._key(path))
        return None if data is None else Entry.loads(data)

    def set(self, path: str, entry: Entry) -> None:
        key = self._key(path)
        lifetime = int(((entry.revalidate or 0) + self.ttl) * 1000)
        with self.client.pipeline() as pipe:
            pipe.set(key, entry.dumps(), px=lifetime)
            for tag in entry.tags:
                pipe.sadd(self._base + "t:" + tag, key)
                pipe.pexpire(self._base + "t:" + tag, lifetime, gt=True)
                pipe.pexpire(self._base + "t:" + tag, lifetime, nx=True)
            pipe.execute()

    def lock(self, path: str) -> Lock | None:
        # redis-py's Lock: SET NX PX with a token, released only by its owner.
        lock = self.client.lock(self._base + "l:" + path, timeout=self.lock_seconds, blocking=False)
        return _RedisLock(lock) if lock.acquire() else None

    def delete_path(self, path: str, subtree: bool = False) -> int:
        start = self._key(path.rstrip("/") if subtree else path)
        pattern = _glob_escape(start) + ("*" if subtree else "")
        skip = len(self._base) + 2
        doomed = [
            name
            for name in self.client.scan_iter(match=pattern, count=500)
            if _under(name.decode("utf-8", "replace")[skip:], path, subtree)
        ]
        if doomed:
            self.client.delete(*doomed)
        return len(doomed)

    def delete_tag(self, tag: str) -> int:
        members = list(self.client.smembers(self._base + "t:" + tag))
        deleted = int(self.client.delete(*members)) if members else 0
        self.client.delete(self._base + "t:" + tag)
        return deleted

    def clear(self) -> None:
        doomed = list(self.client.scan_iter(match=_glob_escape(self._base) + "*", count=500))
        if doomed:
            self.client.delete(*doomed)


class _RedisLock:
    def __init__(self, lock: Any) -> None:
        self._lock = lock

    def release(self) -> None:
        try:
            self._lock.release()
        except Exception:  # expired and perhaps taken by another worker: not ours to drop
            logger.debug("A build lock expired before its build finished", exc_info=True)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class Flight:
    """One build under way in this process, and what it made, for those who waited."""

    __slots__ = ("done", "entry", "reply")

    def __init__(self) -> None:
        self.done = threading.Event()
        #: The entry the build stored, or, when it stored none, its in-memory reply.
        self.entry: Entry | None = None
        self.reply: Reply | None = None


class Flights:
    """Single-flight in one process: one request builds a path, the others share it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, Flight] = {}

    @contextmanager
    def lead(self, key: str) -> Iterator[tuple[bool, Flight]]:
        """Yields ``(True, flight)`` to the one caller that should build *key*.

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

    def start(self, key: str) -> bool:
        """Claim *key* for a background build; False if one is running."""
        with self._lock:
            if key in self._flights:
                return False
            self._flights[key] = Flight()
            return True

    def finish(self, key: str) -> None:
        with self._lock:
            flight = self._flights.pop(key, None)
        if flight is not None:
            flight.done.set()


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
        self._quiet_until = 0.0
        self._down_until = 0.0
        store.bind(build_id)
        #: The memory store's dict, for the app's HIT fast path (None for shared stores).
        self.fast: OrderedDict[str, Entry] | None = (
            store.entries if isinstance(store, MemoryStore) else None
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
        entry = self._get(path)
        if entry is None:
            with self._flights.lead(path) as (leader, flight):
                if leader:
                    return self._lead(endpoint, path, params, live, if_none_match, flight)
            # Another request of this process built it: share what it made.
            if flight.entry is not None:
                return _reply(flight.entry, flight.entry.hit, if_none_match)
            if flight.reply is not None:  # in memory, but not to be stored (a 404, say)
                return flight.reply
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
            entry = self._get(path)
            if entry is not None:  # another worker built it
                flight.entry = entry
                return _reply(entry, entry.hit, if_none_match)
            lock = self._lock(path)
        try:
            entry = self._get(path) if lock is not None else None
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
                flight.reply = reply  # made with no request: the waiters may have it too
            return reply
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
            lock = self._lock(path)
            if lock is None:
                return  # another worker is rebuilding it
            try:
                entry = self._get(path)
                if entry is not None and not entry.is_stale(time.time()):
                    return  # another worker rebuilt it just now
                built = self._build(endpoint, path, params)
                if built is None:
                    return  # the route proved dynamic: its entries are no longer served
                entry = self._judge(endpoint, *built)
                if entry is not None:
                    self._set(path, entry)
                    return
                close_body(built[0][2])
                if endpoint.dynamic_reason is None:
                    logger.warning(
                        "Revalidating %s gave %s; keeping the stale copy", path, built[0][0]
                    )
            finally:
                lock.release()
        except Exception:
            logger.exception("Revalidating %s failed; keeping the stale copy", path)
        finally:
            self._flights.finish(path)

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

    def _failed(self, doing: str, path: str) -> None:
        """Log a store failure, at most every :data:`QUIET_SECONDS`."""
        now = time.monotonic()
        self._down_until = now + DOWN_SECONDS
        if now >= self._quiet_until:
            self._quiet_until = now + QUIET_SECONDS
            logger.error(
                "The cache store (%s) failed to %s %s; serving uncached (logged at most every %gs)",
                type(self.store).__name__,
                doing,
                path,
                QUIET_SECONDS,
                exc_info=True,
            )

    def _down(self) -> bool:
        return self._down_until > 0 and time.monotonic() < self._down_until

    def _get(self, path: str) -> Entry | None:
        if self._down():
            return None
        try:
            return self.store.get(path)
        except Exception:
            self._failed("read", path)
            return None

    def _set(self, path: str, entry: Entry) -> None:
        if self._down():
            return
        try:
            self.store.set(path, entry)
        except Exception:
            self._failed("store", path)

    def _lock(self, path: str) -> Lock | None:
        if self._down():
            return _NO_LOCK
        try:
            return self.store.lock(path)
        except Exception:
            self._failed("lock", path)
            return _NO_LOCK  # no store to coordinate through: build here

    def delete_path(self, path: str, subtree: bool) -> int:
        return self.store.delete_path(path, subtree)

    def delete_tag(self, tag: str) -> int:
        return self.store.delete_tag(tag)


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


def in_background(task: Callable[[], None]) -> None:
    """Run *task* off the request: a greenlet under gevent, else a daemon thread.

    In a monkey-patched process (``microroute run``, gunicorn's gevent worker)
    ``threading`` is gevent's, so the same call spawns a greenlet that runs
    when the hub gets time; without patching (the TestClient) it is a thread.
    """
    threading.Thread(target=task, name="microroute-revalidate", daemon=True).start()
