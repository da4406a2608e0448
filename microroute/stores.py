"""Cache stores: where the cache keeps what it made, in this process or in Redis.

A store keeps :class:`Entry` objects of two kinds under one budget: a static
GET's response, keyed by its request path (a ``str``), and a ``@cached``
function's value, keyed by a :class:`DataKey` (a tuple, so it can never equal
a path and the app's HIT fast path, which looks a path up in
:attr:`MemoryStore.entries`, can never serve one).

**Invalidation is by generation.** Deleting what a build in flight is about to
store races it: the build stores its old result after the delete, and nothing
later knows the entry is there. So a store keeps a counter per tag, per exact
path, per subtree and one for everything (``*``); a revalidation bumps one
counter. The cache reads the counters an entry depends on *before* its build
or computation (:meth:`CacheStore.generations`), the entry records them, and
a read compares them with the current ones.

**Soft and hard.** A counter counts soft revalidations in its low 32 bits and
hard ones above (:data:`HARD`). When only the soft part moved, the entry is
*stale*: served while one rebuild replaces it (Next.js 16's ``"max"``
profile, ``revalidate_tag(tag)``). When the hard part moved it is *gone*: the
next request waits for a fresh one (``revalidate_tag(tag, expire=True)``).

Stores: :class:`MemoryStore` (the default: an LRU bounded by bytes) and
:class:`RedisStore` (shared by workers and machines, keyed by namespace and
build id, with a build lock per key renewed while its build runs). A store that
fails is not fatal: :class:`FailSoft` logs it and the caller serves uncached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, Union, runtime_checkable

if TYPE_CHECKING:
    from .handlers import Endpoint

__all__ = [
    "DEFAULT_MAX_BYTES",
    "HARD",
    "CacheStore",
    "DataKey",
    "Entry",
    "FailSoft",
    "Key",
    "Lock",
    "MemoryStore",
    "RedisStore",
    "VersionedStore",
]

logger = logging.getLogger("microroute")

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
WEEK = 7 * 24 * 3600
#: A generation's hard revalidations count in multiples of this; soft ones below it.
HARD = 1 << 32
#: A failing store is logged at most this often.
QUIET_SECONDS = 10.0
#: After a store failure, callers skip the store this long instead of each
#: waiting out its timeouts again.
DOWN_SECONDS = 1.0
#: Key parts longer than this (a long path, a long tag) are replaced by their hash.
MAX_KEY_PART = 200


class DataKey(NamedTuple):
    """The key of a ``@cached`` function's value (see :mod:`microroute.datacache`).

    *name* is bounded (a readable prefix and a hash), so every Redis key is.
    """

    name: str


#: What a store is keyed by: a request path (a static response) or a data key.
Key = Union[str, DataKey]  # noqa: UP007 - a runtime alias, and the package supports 3.10


class Entry:
    """One stored thing: a static GET's response, or a ``@cached`` function's value.

    A value is kept as a response with no headers: its *body* is the value,
    msgspec-encoded. The header lists for each way a response is served are
    precomputed, so a HIT costs little more than a dict lookup.
    """

    __slots__ = (
        "body",
        "created",
        "endpoint",
        "etag",
        "generations",
        "headers",
        "hit",
        "miss",
        "outdated",
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
        self.hit = [*headers, ("ETag", self.etag), ("X-Microroute-Cache", "HIT")]
        self.stale = [*headers, ("ETag", self.etag), ("X-Microroute-Cache", "STALE")]
        self.miss = [*headers, ("ETag", self.etag), ("X-Microroute-Cache", "MISS")]
        self.size = len(body) + sum(len(k) + len(v) for k, v in headers) + 256
        #: The handler that made it, when made in this process: once that
        #: handler proves dynamic, its entries are no longer served.
        self.endpoint: Endpoint | None = None
        #: The generations of what it depends on as they were when its build
        #: began (see :meth:`CacheStore.generations`).
        self.generations: tuple[int, ...] | None = None
        #: Revalidated softly since it was made: served as STALE while one
        #: rebuild replaces it, never as a HIT.
        self.outdated = False

    def servable(self, environ: dict[str, Any]) -> bool:
        """Whether the app may answer *environ* with this entry as a plain HIT.

        Only a fresh entry, for a GET without ``If-None-Match``, whose handler
        has not since proved dynamic; anything else takes the full path.
        """
        return (
            environ["REQUEST_METHOD"] == "GET"
            and (self.revalidate is None or time.time() - self.created < self.revalidate)
            and not self.outdated
            and "HTTP_IF_NONE_MATCH" not in environ
            and (self.endpoint is None or self.endpoint.dynamic_reason is None)
        )

    def is_stale(self, now: float) -> bool:
        """Past its ``revalidate`` window, or revalidated softly since it was made."""
        revalidate = self.revalidate
        return self.outdated or (revalidate is not None and now - self.created >= revalidate)

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
            "generations": self.generations,
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
            generations = meta.get("generations")
            if generations is not None:
                entry.generations = tuple(int(g) for g in generations)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"unreadable cache entry: {exc}") from None
        if not newline:
            raise ValueError("unreadable cache entry: no body separator")
        return entry


class Lock(Protocol):
    """A store's build lock on one key, held by this process."""

    def release(self) -> None: ...


@runtime_checkable
class CacheStore(Protocol):
    """Where entries live, keyed by path (a response) or :class:`DataKey` (a value).

    A store shared by several processes also makes :meth:`lock` mean
    something: one build per key across all of them.
    """

    def bind(self, build_id: str) -> None:
        """Scope every key to *build_id* (a shared store); a local store ignores it."""
        ...

    def get(self, key: Key, tags: tuple[str, ...] | None = None) -> Entry | None:
        """The entry of *key*, unless a hard revalidation reached it since its build.

        An entry a soft revalidation reached comes back with ``outdated`` set.
        *tags* (the route's, when the caller knows them) lets a shared store
        read the entry and the generations in one round trip.
        """
        ...

    def generations(self, key: Key, tags: tuple[str, ...]) -> tuple[int, ...]:
        """The current generations of *key* and *tags*, for a build about to start."""
        ...

    def set(self, key: Key, entry: Entry) -> None: ...

    def lock(self, key: Key) -> Lock | None:
        """Take the build lock on *key*; ``None`` while another process holds it."""
        ...

    def delete_path(self, path: str, subtree: bool = False, expire: bool = True) -> int:
        """Revalidate *path* (with *subtree*, everything below it too).

        *expire* drops the entries; otherwise they turn stale. Returns how many
        entries it reached, as far as the store can tell without listing keys
        (a shared store says 0 for a subtree).
        """
        ...

    def delete_tag(self, tag: str, expire: bool = True) -> int:
        """Revalidate every entry carrying *tag*; how many, or 0 if not known."""
        ...

    def clear(self) -> None: ...


#: Every store invalidates by generation now; the name of the protocol when only
#: RedisStore did.
VersionedStore = CacheStore


class FailSoft:
    """A store's failures, failing soft: logged quietly, then the store is skipped a while.

    A store that fails (Redis down, a timeout, a failover, bad data) is logged
    at most every :data:`QUIET_SECONDS`, and for :data:`DOWN_SECONDS` after a
    failure :meth:`down` says so, so requests do not each wait out a timeout.
    The caller then serves uncached: never a 500.
    """

    __slots__ = ("_down_until", "_quiet_until", "store")

    def __init__(self, store: object) -> None:
        self.store = store
        self._quiet_until = 0.0
        self._down_until = 0.0

    def down(self) -> bool:
        return self._down_until > 0 and time.monotonic() < self._down_until

    def failed(self, doing: str, what: object) -> None:
        """Log a failure to do *doing* to *what*, at most every :data:`QUIET_SECONDS`."""
        now = time.monotonic()
        self._down_until = now + DOWN_SECONDS
        if now >= self._quiet_until:
            self._quiet_until = now + QUIET_SECONDS
            logger.error(
                "The cache store (%s) failed to %s %s; serving uncached (logged at most every %gs)",
                type(self.store).__name__,
                doing,
                what,
                QUIET_SECONDS,
                exc_info=True,
            )


def fresh_or_stale(recorded: tuple[int, ...] | None, current: tuple[int, ...]) -> bool | None:
    """Compare an entry's recorded generations with the current ones.

    ``True``: fresh; ``False``: stale (only soft revalidations since);
    ``None``: gone (a hard one, or nothing recorded to compare).
    """
    if recorded == current:
        return True
    if recorded is None or len(recorded) != len(current):
        return None
    for was, now in zip(recorded, current, strict=True):
        if was // HARD != now // HARD:
            return None
    return False


def bounded(part: str) -> str:
    """*part*, or its hash when longer than :data:`MAX_KEY_PART` (keys stay small)."""
    if len(part) <= MAX_KEY_PART:
        return part
    return "#" + hashlib.sha256(part.encode("utf-8", "surrogatepass")).hexdigest()


def subtree_of(path: str) -> str:
    """The field a subtree revalidation of *path* bumps: ``/blog/`` and ``/blog`` alike."""
    return "s:" + bounded(path.rstrip("/") or "/")


def dependencies(key: Key, tags: tuple[str, ...]) -> list[str]:
    """The generation fields an entry of *key* with *tags* depends on.

    Its tags, everything (``*``, which :meth:`CacheStore.clear` bumps), and for a
    path every subtree it is in: ``/blog/one`` is in ``/``, ``/blog`` and
    ``/blog/one`` (a subtree is named without its trailing slash). A value
    depends on no path.
    """
    fields = ["t:" + bounded(tag) for tag in tags]
    fields.append("*")
    if isinstance(key, str):
        path = key
        fields.append("s:/")
        for i in range(1, len(path)):
            if path[i] == "/" and path[i - 1] != "/":
                fields.append("s:" + bounded(path[:i]))
        if len(path) > 1 and path[-1] != "/":
            fields.append("s:" + bounded(path))
    return fields


def _under(key: Key, path: str, subtree: bool) -> bool:
    if not isinstance(key, str):
        return False
    return key == path or (subtree and key.startswith(path.rstrip("/") + "/"))


class _NoLock:
    """The lock of a store no other process shares: always free."""

    def release(self) -> None:
        pass


NO_LOCK = _NoLock()


class MemoryStore:
    """An in-process LRU bounded by bytes (64 MiB by default).

    Responses and ``@cached`` values share the one budget. The app's HIT fast
    path reads :attr:`entries` directly, so a read here checks nothing: a
    revalidation acts on the stored entries at once (drops them, or marks them
    stale), and its generations only catch the builds in flight, in :meth:`set`.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError(f"cache_max_bytes must be positive, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.used = 0
        self.entries: OrderedDict[Key, Entry] = OrderedDict()
        #: Generation per field (see :func:`dependencies`; ``p:PATH`` for an exact
        #: path); only revalidated fields are here.
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()

    def bind(self, build_id: str) -> None:
        pass  # one process, one build

    def get(self, key: Key, tags: tuple[str, ...] | None = None) -> Entry | None:
        entry = self.entries.get(key)
        if entry is not None:
            try:  # noqa: SIM105 - contextlib.suppress costs more than the lookup
                self.entries.move_to_end(key)
            except KeyError:  # evicted meanwhile by another thread
                pass
        return entry

    def generations(self, key: Key, tags: tuple[str, ...]) -> tuple[int, ...]:
        fields = dependencies(key, tags)
        if isinstance(key, str):
            fields.append("p:" + key)
        known = self._generations
        return tuple(known.get(field, 0) for field in fields)

    def set(self, key: Key, entry: Entry) -> None:
        with self._lock:
            if entry.generations is not None:
                # The build began before a revalidation that landed while it ran.
                fresh = fresh_or_stale(entry.generations, self.generations(key, entry.tags))
                if fresh is None:
                    return  # expired: the next request builds anew
                entry.outdated = not fresh
            old = self.entries.pop(key, None)
            if old is not None:
                self.used -= old.size
            if entry.size > self.max_bytes:
                return  # larger than the whole cache: never stored, and the old copy goes
            self.entries[key] = entry
            self.used += entry.size
            while self.used > self.max_bytes:
                _, evicted = self.entries.popitem(last=False)
                self.used -= evicted.size

    def lock(self, key: Key) -> Lock | None:
        return NO_LOCK  # the caches' own single-flight covers one process

    def _revalidate(self, field: str, reached: Callable[[Key, Entry], bool], expire: bool) -> int:
        with self._lock:
            self._generations[field] = self._generations.get(field, 0) + (HARD if expire else 1)
            # A snapshot: a HIT reorders the dict from other threads meanwhile.
            found = [
                (key, entry) for key, entry in list(self.entries.items()) if reached(key, entry)
            ]
            if not expire:  # stale from now on; those already stale were reached before
                found = [(key, entry) for key, entry in found if not entry.outdated]
            for key, entry in found:
                if expire:
                    del self.entries[key]
                    self.used -= entry.size
                else:
                    entry.outdated = True
        return len(found)

    def delete_path(self, path: str, subtree: bool = False, expire: bool = True) -> int:
        field = subtree_of(path) if subtree else "p:" + path
        return self._revalidate(field, lambda key, entry: _under(key, path, subtree), expire)

    def delete_tag(self, tag: str, expire: bool = True) -> int:
        return self._revalidate("t:" + bounded(tag), lambda key, entry: tag in entry.tags, expire)

    def clear(self) -> None:
        with self._lock:
            self._generations["*"] = self._generations.get("*", 0) + HARD
            self.entries.clear()
            self.used = 0

    def __len__(self) -> int:
        return len(self.entries)


class RedisStore:
    """Entries in Redis, shared by every worker and machine that points at it.

    >>> App(route, cache=RedisStore("redis://127.0.0.1:6379/0"))  # doctest: +SKIP
    >>> App(route, cache=RedisStore(RedisCluster(host="10.0.0.5", port=7000)))  # doctest: +SKIP
    >>> sentinel = Sentinel([("10.0.0.7", 26379)], socket_timeout=0.25)  # doctest: +SKIP
    >>> primary = sentinel.master_for("cache", socket_timeout=0.25)  # doctest: +SKIP
    >>> App(route, cache=RedisStore(primary))  # doctest: +SKIP

    *url_or_client* is a URL (``redis://``, ``rediss://`` for TLS,
    ``unix:///run/redis.sock``) or a redis-py client: ``redis.Redis``,
    ``redis.cluster.RedisCluster``, or a Sentinel's ``master_for(name)``. A
    client you pass keeps its own timeouts: give it a ``socket_timeout``, or a
    request may wait as long as the OS does for a dead node.

    Needs the ``redis`` package (``pip install microroute[redis]``). Every key
    carries *prefix* (the namespace: give each app its own) and the app's
    build id, so a deploy of new code never serves the old code's entries and
    two apps never share them. Entries expire *ttl* seconds after their
    ``revalidate`` window (7 days by default), so old builds' keys go away by
    themselves. A build takes a lock (``SET NX PX``, *lock_seconds*) so N
    workers facing a cold or stale key run the handler once; the lock is
    renewed every third of *lock_seconds* while the build runs, so a slow build
    keeps it, and a lock whose holder died expires. With a URL, every call is
    bounded by *timeout* seconds (waiting for one of *max_connections* pooled
    connections included). The cache treats any failure (an outage, a timeout,
    a failover in progress) as a miss and serves the request uncached.

    Invalidation is by generation (module docstring): a tag, a subtree and an
    exact path each have a counter that ``revalidate_*`` bumps, so it is one
    command, races no build in flight, and scans no keys. An exact
    ``revalidate_path`` returns 1 or 0 (whether the entry was there);
    ``revalidate_tag`` and a subtree ``revalidate_path`` reach entries without
    listing them, so they return 0. Every key of one app and build shares one
    hash tag, ``{PREFIX BUILD_ID}``, so every operation stays in one slot of a
    Redis Cluster (and reads use single-key commands, which a cluster client
    pipelines)::

        {microroute:3f2a9c1d07be4e55}:p:/posts/1   an entry (JSON head line, body)
        {microroute:3f2a9c1d07be4e55}:l:p:/posts/1 its build lock
        {microroute:3f2a9c1d07be4e55}:gp:/posts/1  its path's generation, once revalidated
        {microroute:3f2a9c1d07be4e55}:d:NAME       a @cached value (NAME: qualname:hash)
        {microroute:3f2a9c1d07be4e55}:l:d:NAME     its lock
        {microroute:3f2a9c1d07be4e55}:g            a hash: generation per tag (t:posts),
                                                   per subtree (s:/blog, s:/), and *

    A path or tag longer than 200 characters is replaced by its SHA-256 in
    every key and field, so no key grows with its input.
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
            url_or_client = _client_from_url(url_or_client, timeout, max_connections)
        elif not all(hasattr(url_or_client, name) for name in ("pipeline", "lock", "hmget")):
            raise TypeError(
                "RedisStore takes a URL (redis://, rediss://, unix://) or a redis-py client"
                " (redis.Redis, redis.cluster.RedisCluster, Sentinel(...).master_for(name)),"
                f" got {type(url_or_client).__name__}"
            )
        if not ttl > 0 or not lock_seconds > 0:
            raise ValueError("RedisStore: ttl and lock_seconds must be positive numbers of seconds")
        self.client = url_or_client
        self.prefix = prefix
        self.ttl = ttl
        self.lock_seconds = lock_seconds
        self.build_id: str | None = None
        self._ttl_ms = int(ttl * 1000)
        self._set_base("unbound")

    def _set_base(self, build_id: str) -> None:
        # The braces are a Redis Cluster hash tag: one slot for all of this build's keys.
        self._base = "{" + self.prefix + build_id + "}:"
        self._generations = self._base + "g"

    def bind(self, build_id: str) -> None:
        if self.build_id is not None and self.build_id != build_id:
            raise ValueError(
                f"this RedisStore already serves build {self.build_id!r}; give each App its own"
                " RedisStore (with its own prefix for a different app)"
            )
        self.build_id = build_id
        self._set_base(build_id)

    def _name(self, key: Key) -> str:
        if isinstance(key, str):
            return "p:" + bounded(key)
        return "d:" + key.name

    def _path_generation(self, path: str) -> str:
        return self._base + "gp:" + bounded(path)

    def get(self, key: Key, tags: tuple[str, ...] | None = None) -> Entry | None:
        guess = () if tags is None else tags
        path = key if isinstance(key, str) else None
        # Single-key commands only: a cluster client refuses MGET in a pipeline.
        with self.client.pipeline(transaction=False) as pipe:
            pipe.get(self._base + self._name(key))
            if path is not None:
                pipe.get(self._path_generation(path))
            pipe.hmget(self._generations, dependencies(key, guess))
            data, *rest = pipe.execute()
        if data is None:
            return None
        entry = Entry.loads(data)
        values = rest[-1]
        if entry.tags != guess:  # the caller did not know the route's tags
            values = self.client.hmget(self._generations, dependencies(key, entry.tags))
        current = (*map(_count, values), *([_count(rest[0])] if path is not None else []))
        fresh = fresh_or_stale(entry.generations, current)
        if fresh is None:
            return None
        entry.outdated = not fresh
        return entry

    def generations(self, key: Key, tags: tuple[str, ...]) -> tuple[int, ...]:
        fields = dependencies(key, tags)
        if not isinstance(key, str):
            return tuple(map(_count, self.client.hmget(self._generations, fields)))
        with self.client.pipeline(transaction=False) as pipe:
            pipe.get(self._path_generation(key))
            pipe.hmget(self._generations, fields)
            path_generation, values = pipe.execute()
        return (*map(_count, values), _count(path_generation))

    def set(self, key: Key, entry: Entry) -> None:
        if entry.generations is None:  # not from a build the cache started: as of now
            entry.generations = self.generations(key, entry.tags)
        lifetime = int(((entry.revalidate or 0) + self.ttl) * 1000)
        # Each generation key outlives every entry that recorded it: were one to
        # expire first, a counter bumped since would read as the entry's old 0.
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self._base + self._name(key), entry.dumps(), px=lifetime)
            if isinstance(key, str):
                pipe.pexpire(self._path_generation(key), lifetime, gt=True)
            pipe.hsetnx(self._generations, "v", 1)
            pipe.pexpire(self._generations, lifetime, nx=True)
            pipe.pexpire(self._generations, lifetime, gt=True)
            pipe.execute()

    def lock(self, key: Key) -> Lock | None:
        # redis-py's Lock: SET NX PX with a token, released only by its owner. Not
        # thread-local: the renewer, another greenlet, must see the token.
        lock = self.client.lock(
            self._base + "l:" + self._name(key),
            timeout=self.lock_seconds,
            blocking=False,
            thread_local=False,
        )
        if not lock.acquire():
            return None
        return _RenewedLock(lock, key, self.lock_seconds / 3)

    def delete_path(self, path: str, subtree: bool = False, expire: bool = True) -> int:
        if subtree:
            self._bump(subtree_of(path), expire)
            return 0
        # The path's own generation (a build in flight that began before this
        # records the old one); an expiry also deletes the entry itself.
        key = self._path_generation(path)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.incrby(key, HARD if expire else 1)
            pipe.pexpire(key, self._ttl_ms, nx=True)  # see set(); builds end long before
            if expire:
                pipe.delete(self._base + self._name(path))
            else:
                pipe.exists(self._base + self._name(path))
            reached = pipe.execute()[2]
        return int(reached)

    def delete_tag(self, tag: str, expire: bool = True) -> int:
        self._bump("t:" + bounded(tag), expire)
        return 0

    def clear(self) -> None:
        """Expire every entry of this build (one counter); the keys expire in time."""
        self._bump("*", True)

    def _bump(self, field: str, expire: bool) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hincrby(self._generations, field, HARD if expire else 1)
            pipe.pexpire(self._generations, self._ttl_ms, nx=True)
            pipe.execute()


def _client_from_url(url: str, timeout: float, max_connections: int) -> Any:
    try:
        import redis
    except ImportError:
        raise RuntimeError(
            "RedisStore needs the redis package: pip install 'microroute[redis]'"
        ) from None
    # A blocking pool: under gevent every request in flight may want a
    # connection at once, and a plain pool past its size raises instead of
    # waiting (which would serve a burst uncached). from_url reads the scheme:
    # rediss:// is TLS, unix:// a socket file.
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
    return redis.Redis(connection_pool=pool)


def _count(value: bytes | None) -> int:
    return 0 if value is None else int(value)


class _RenewedLock:
    """A held build lock, renewed every *every* seconds until released.

    The renewer is a thread, so a greenlet in a gevent-patched worker: it runs
    while the build waits on I/O. If the process dies the renewals stop and the
    lock expires *lock_seconds* later, as any other.
    """

    def __init__(self, lock: Any, key: Key, every: float) -> None:
        self._lock = lock
        self._key = key
        self._released = threading.Event()
        threading.Thread(
            target=self._renew, args=(every,), name="microroute-build-lock", daemon=True
        ).start()

    def _renew(self, every: float) -> None:
        from redis.exceptions import LockError

        while not self._released.wait(every):
            try:
                self._lock.reacquire()
            except LockError:
                if not self._released.is_set():
                    logger.warning(
                        "The build lock on %s expired before it was renewed (the process was"
                        " busy for longer than lock_seconds): another worker may build it too",
                        self._key,
                    )
                return
            except Exception:  # Redis unreachable for now: try again, the lock may lapse
                logger.debug("Renewing the build lock on %s failed", self._key, exc_info=True)

    def release(self) -> None:
        self._released.set()
        try:
            self._lock.release()
        except Exception:  # expired and perhaps taken by another worker: not ours to drop
            logger.debug("A build lock expired before its build finished", exc_info=True)
