"""The route cache: static GET responses kept and reused, as Next.js does.

A ``GET`` handler is *static* unless it opts out (see :func:`static_reason`):
its first 200 response for a path is stored — status, headers and body — and
served again without running the handler. ``revalidate = N`` makes an entry
stale after N seconds; a stale entry is still served, at once, while exactly
one background task regenerates it (stale-while-revalidate).

This module holds the stores and the bookkeeping; :class:`~microroute.App`
decides when to use them. Stores implement :class:`CacheStore`:
:class:`MemoryStore` (the default: an LRU bounded by bytes) and
:class:`RedisStore` (shared by several workers or machines).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .responses import StreamBody

if TYPE_CHECKING:
    from .app import App
    from .context import RequestState
    from .handlers import Endpoint
    from .responses import Reply
    from .table import Route

__all__ = [
    "DEFAULT_MAX_BYTES",
    "CacheStore",
    "Entry",
    "MemoryStore",
    "RedisStore",
    "RouteCache",
    "static_environ",
    "static_reason",
]

logger = logging.getLogger("microroute")

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: How long a request waits for another one already generating the same entry.
FLIGHT_TIMEOUT = 30.0
ONE_YEAR = 31_536_000
_NOT_MODIFIED_HEADERS = frozenset({"etag", "cache-control", "vary", "x-microroute-cache"})
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def static_reason(route: Route, endpoint: Endpoint) -> str | None:
    """Why a GET handler is dynamic, decided at registration; ``None`` if static.

    The run-time reasons (it called ``cookies()``, it streamed) are added by the
    app the first time they happen.
    """
    config = endpoint.config
    if config.dynamic == "force-static":
        return None
    if config.dynamic == "force-dynamic":
        return 'dynamic = "force-dynamic"'
    if config.revalidate == 0 and config.revalidate is not False:
        return "revalidate = 0"
    if endpoint.needs_request:
        return "takes request"
    written = sorted(_WRITE_METHODS & set(route.endpoints))
    if written:
        return f"route also serves {', '.join(written)}"
    return None


def cache_control(revalidate: float | bool) -> str:
    """The ``Cache-Control`` Next.js sends for a static route handler."""
    if revalidate is False:
        return f"s-maxage={ONE_YEAR}"
    seconds = int(revalidate)
    return f"s-maxage={seconds}, stale-while-revalidate={ONE_YEAR - seconds}"


class Entry:
    """One stored response, with the header lists for each way it is served."""

    __slots__ = (
        "body",
        "created",
        "endpoint",
        "etag",
        "headers",
        "hit",
        "revalidate",
        "size",
        "stale",
        "status",
    )

    def __init__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        body: bytes,
        created: float,
        revalidate: float | None,
        etag: str | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.created = created
        self.revalidate = revalidate
        self.etag = etag or '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        # Precomputed: a HIT must cost little more than a dict lookup.
        self.hit = [*headers, ("ETag", self.etag), ("X-Microroute-Cache", "HIT")]
        self.stale = [*headers, ("ETag", self.etag), ("X-Microroute-Cache", "STALE")]
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
        }
        return json.dumps(meta, separators=(",", ":")).encode() + b"\n" + self.body

    @classmethod
    def loads(cls, data: bytes) -> Entry:
        meta_line, _, body = data.partition(b"\n")
        meta = json.loads(meta_line)
        headers = [(str(k), str(v)) for k, v in meta["headers"]]
        return cls(meta["status"], headers, body, meta["created"], meta["revalidate"], meta["etag"])


@runtime_checkable
class CacheStore(Protocol):
    """Where entries live. Keys are ``path`` or ``path?query``."""

    def get(self, key: str) -> Entry | None: ...

    def set(self, key: str, entry: Entry) -> None: ...

    def delete_path(self, path: str, subtree: bool = False) -> int:
        """Drop every entry of *path* (all query strings); with *subtree*, below it too."""
        ...

    def clear(self) -> None: ...


def _key_matches(key: str, path: str, subtree: bool) -> bool:
    base = key.split("?", 1)[0]
    if base == path:
        return True
    return subtree and base.startswith(path.rstrip("/") + "/")


class MemoryStore:
    """An in-process LRU bounded by bytes (64 MiB by default)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError(f"cache_max_bytes must be positive, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.used = 0
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        entry = self.entries.get(key)
        if entry is not None:
            with contextlib.suppress(KeyError):  # evicted meanwhile by another thread
                self.entries.move_to_end(key)
        return entry

    def set(self, key: str, entry: Entry) -> None:
        if entry.size > self.max_bytes:
            return  # larger than the whole cache: never stored
        with self._lock:
            old = self.entries.pop(key, None)
            if old is not None:
                self.used -= old.size
            self.entries[key] = entry
            self.used += entry.size
            while self.used > self.max_bytes:
                _, evicted = self.entries.popitem(last=False)
                self.used -= evicted.size

    def delete_path(self, path: str, subtree: bool = False) -> int:
        with self._lock:
            doomed = [key for key in self.entries if _key_matches(key, path, subtree)]
            for key in doomed:
                self.used -= self.entries.pop(key).size
        return len(doomed)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()
            self.used = 0

    def __len__(self) -> int:
        return len(self.entries)


class RedisStore:
    """Entries in Redis, shared by every worker and machine that points at it.

    >>> App(route, cache=RedisStore("redis://127.0.0.1:6379/0"))  # doctest: +SKIP

    Needs the ``redis`` package (``pip install microroute[redis]``). Memory is
    bounded by Redis itself (``maxmemory`` with an LRU policy); entries carry
    no TTL so a stale copy can still be served while it is regenerated.
    """

    def __init__(
        self, url_or_client: Any = "redis://127.0.0.1:6379/0", prefix: str = "microroute:"
    ):
        if isinstance(url_or_client, str):
            try:
                import redis
            except ImportError:
                raise RuntimeError(
                    "RedisStore needs the redis package: pip install 'microroute[redis]'"
                ) from None
            url_or_client = redis.Redis.from_url(url_or_client)
        self.client = url_or_client
        self.prefix = prefix

    def get(self, key: str) -> Entry | None:
        data = self.client.get(self.prefix + key)
        if data is None:
            return None
        try:
            return Entry.loads(data)
        except (ValueError, KeyError, TypeError):
            logger.warning("Ignoring an unreadable cache entry for %s in Redis", key)
            return None

    def set(self, key: str, entry: Entry) -> None:
        self.client.set(self.prefix + key, entry.dumps())

    def delete_path(self, path: str, subtree: bool = False) -> int:
        pattern = self.prefix + _glob_escape(path.rstrip("/") if subtree else path) + "*"
        doomed = [
            name
            for name in self.client.scan_iter(match=pattern, count=500)
            if _key_matches(name.decode()[len(self.prefix) :], path, subtree)
        ]
        if doomed:
            self.client.delete(*doomed)
        return len(doomed)

    def clear(self) -> None:
        doomed = list(self.client.scan_iter(match=_glob_escape(self.prefix) + "*", count=500))
        if doomed:
            self.client.delete(*doomed)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class Flights:
    """Single-flight: one request generates an entry, the others wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}

    @contextmanager
    def lead(self, key: str) -> Iterator[bool]:
        """Yields True to the one caller that should generate *key*.

        The others wait (at most :data:`FLIGHT_TIMEOUT`) until it is done and
        get False; they then read the entry the leader stored.
        """
        with self._lock:
            event = self._events.get(key)
            leader = event is None
            if leader:
                event = self._events[key] = threading.Event()
        assert event is not None
        if not leader:
            event.wait(FLIGHT_TIMEOUT)
            yield False
            return
        try:
            yield True
        finally:
            with self._lock:
                del self._events[key]
            event.set()

    def start(self, key: str) -> bool:
        """Claim *key* for a background regeneration; False if one is running."""
        with self._lock:
            if key in self._events:
                return False
            self._events[key] = threading.Event()
            return True

    def finish(self, key: str) -> None:
        with self._lock:
            event = self._events.pop(key, None)
        if event is not None:
            event.set()


Run = Callable[["Endpoint", "RequestState", dict[str, Any]], "Reply"]


def static_environ(environ: dict[str, Any]) -> dict[str, Any]:
    """``force-static``: the handler sees no query, headers or cookies."""
    kept = {k: v for k, v in environ.items() if not k.startswith("HTTP_") or k == "HTTP_HOST"}
    kept["QUERY_STRING"] = ""
    return kept


class RouteCache:
    """Serves static GETs from a store: HIT, STALE (and regenerate), or MISS.

    *run* is the app's way to call a handler and coerce its result; the cache
    only decides whether to call it, and what to keep.
    """

    def __init__(self, app: App, store: CacheStore, run: Run) -> None:
        self.app = app
        self.store = store
        self._run = run
        self._flights = Flights()
        #: The memory store's dict, for the app's HIT fast path (None for shared stores).
        self.fast: OrderedDict[str, Entry] | None = (
            store.entries if isinstance(store, MemoryStore) else None
        )

    @staticmethod
    def key(endpoint: Endpoint, environ: dict[str, Any]) -> str:
        path = environ.get("PATH_INFO") or "/"
        query = environ.get("QUERY_STRING")
        if query and endpoint.config.dynamic != "force-static":
            return f"{path}?{query}"
        return path

    def serve(self, endpoint: Endpoint, state: RequestState, params: dict[str, Any]) -> Reply:
        environ = state.environ
        key = self.key(endpoint, environ)
        entry = self.store.get(key)
        if entry is None:
            with self._flights.lead(key) as leader:
                if leader:
                    return self._generate(endpoint, state, params, key)
            entry = self.store.get(key)
            if entry is None:  # the leader's response could not be stored
                return self._run(endpoint, state, params)
            return self._reply(entry, environ, entry.hit)
        if entry.is_stale(now()):
            if self._flights.start(key):
                copy = {**environ, "wsgi.input": io.BytesIO()}
                in_background(lambda: self._regenerate(endpoint, copy, params, key))
            return self._reply(entry, environ, entry.stale)
        return self._reply(entry, environ, entry.hit)

    @staticmethod
    def _reply(entry: Entry, environ: dict[str, Any], headers: list[tuple[str, str]]) -> Reply:
        condition = environ.get("HTTP_IF_NONE_MATCH")
        if condition and entry.matches(condition):
            kept = [h for h in headers if h[0].lower() in _NOT_MODIFIED_HEADERS]
            return "304 Not Modified", kept, []
        return entry.status, headers, [entry.body]

    def _store(
        self, endpoint: Endpoint, state: RequestState, reply: Reply, key: str
    ) -> Entry | None:
        """Keep *reply* if it may be kept; mark the endpoint dynamic if it proved so."""
        status, headers, body = reply
        if state.failed:  # an error handler's fallback is not the page
            return None
        if state.dynamic_call is not None:
            endpoint.dynamic_reason = f"calls {state.dynamic_call}"
            return None
        if type(body) is not list:
            if isinstance(body, StreamBody):
                endpoint.dynamic_reason = "streams its response"
            return None
        if not status.startswith("200 "):
            return None
        if state.handler_wrote_cookies or any(name.lower() == "set-cookie" for name, _ in headers):
            return None
        if not any(name.lower() == "cache-control" for name, _ in headers):
            headers = [*headers, ("Cache-Control", cache_control(endpoint.config.revalidate))]
        revalidate = endpoint.config.revalidate
        entry = Entry(
            status,
            headers,
            b"".join(body),
            now(),
            None if revalidate is False else float(revalidate),
        )
        entry.endpoint = endpoint
        self.store.set(key, entry)
        return entry

    def _generate(
        self, endpoint: Endpoint, state: RequestState, params: dict[str, Any], key: str
    ) -> Reply:
        reply = self._run(endpoint, state, params)
        entry = self._store(endpoint, state, reply, key)
        if entry is None:
            return reply
        return self._reply(
            entry,
            state.environ,
            [*entry.headers, ("ETag", entry.etag), ("X-Microroute-Cache", "MISS")],
        )

    def _regenerate(
        self, endpoint: Endpoint, environ: dict[str, Any], params: dict[str, Any], key: str
    ) -> None:
        """Refresh a stale entry off the request; on failure the stale copy stays."""
        from .context import RequestState, bind, unbind

        try:
            state = RequestState(self.app, environ)
            token = bind(state)
            try:
                reply = self._run(endpoint, state, params)
                if self._store(endpoint, state, reply, key) is None:
                    logger.warning(
                        "Revalidating %s gave %s; keeping the stale copy",
                        key,
                        reply[0],
                    )
            finally:
                unbind(token)
        except Exception:
            logger.exception("Revalidating %s failed; keeping the stale copy", key)
        finally:
            self._flights.finish(key)


def in_background(task: Callable[[], None]) -> None:
    """Run *task* off the request: a greenlet under gevent, else a daemon thread.

    In a monkey-patched process (``microroute run``, gunicorn's gevent worker)
    ``threading`` is gevent's, so the same call spawns a greenlet that runs
    when the hub gets time; without patching (the TestClient) it is a thread.
    """
    threading.Thread(target=task, name="microroute-revalidate", daemon=True).start()


def now() -> float:
    return time.time()
