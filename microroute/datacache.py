"""The data cache: ``@cached`` keeps a function's result, as Next.js's ``"use cache"``.

::

    from microroute import cached

    @cached(tags=["posts"], revalidate=60)
    def list_posts(limit: int = 10) -> list[Post]:
        return db.fetch_posts(limit)

    def GET():                      # static or dynamic, it does not matter
        return {"posts": list_posts(5)}

A call is keyed by the function's module and qualified name, its arguments
(bound to its signature, so ``f(1)`` and ``f(x=1)`` are one key) and the app's
build id, and kept in the app's store: memory, or Redis shared by every worker
and machine. The first call computes it, once per key across workers (the
store's lock; the others wait for the entry); after *revalidate* seconds the
old value is returned while one background call refreshes it. Tags are the
routes' tags: ``app.revalidate_tag("posts")`` refreshes both.

**Keys.** Arguments are encoded with msgspec (JSON: ``None``, bools, numbers,
strings, lists, dicts, dataclasses, ``msgspec.Struct``, datetimes, UUIDs...)
in a deterministic order: ``shop.prices.price:["tea",3]``, or when that is
longer than 64 bytes a BLAKE2 hash of it, so a key is short whatever the
arguments. An argument msgspec cannot encode (an object with no defined key: a
DB connection, a ``self``) is a :class:`CacheKeyError` at call time naming the
function and the argument; give its class a ``__cache_key__()`` method
returning a JSON-like value to make it keyable.

**Values** are msgspec-encoded JSON, never pickled: a shared store is not a
trust boundary for running code. What comes back is decoded with the
function's return annotation (``-> list[Post]`` gives ``Post`` objects back),
and a miss returns the same decoded copy a hit would, so callers never see
two shapes or share one mutable object.

**Which app's store.** The app serving the current request (a live request
or a static build: every ``App`` registers its data cache under its route
table, which the request's state carries); outside any request (a script, a
thread of your own), the last ``App`` created in this process; with no ``App``
at all, a private in-process memory store. ``App(cache=False)`` calls the
function every time. A call during a static build never makes the route
dynamic.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import time
import typing
import weakref
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any, Generic, TypeVar, overload

from .context import active
from .flights import FLIGHT_TIMEOUT, POLL_SECONDS, Flight, Flights, in_background
from .stores import NO_LOCK, CacheStore, DataKey, Entry, FailSoft, Lock, MemoryStore

__all__ = ["CacheKeyError", "CachedFunction", "DataCache", "cached", "register"]

logger = logging.getLogger("microroute")

R = TypeVar("R")
#: A key shows this much of the function's name, then its encoded arguments when
#: they are this short, else a hash of the name and the arguments.
_NAME_CHARS = 100
_LITERAL_BYTES = 64


class CacheKeyError(TypeError):
    """A ``@cached`` function was called with an argument that makes no stable key."""


class DataCache:
    """One app's ``@cached`` values in its store; ``store=None`` caches nothing."""

    def __init__(self, store: CacheStore | None) -> None:
        self.store = store
        self._flights = Flights()
        self._health = FailSoft(store)

    def call(self, fn: CachedFunction[R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
        """*fn*'s value for these arguments: stored, stale (refreshed behind), or computed."""
        if self.store is None:
            return fn.function(*args, **kwargs)
        key = fn.key(args, kwargs)
        found = self._read(key, fn)
        if found is not None:
            entry, value = found
            if entry.is_stale(time.time()) and self._flights.start(key):
                in_background(lambda: self._refresh(fn, key, args, kwargs))
            return value  # type: ignore[no-any-return]
        with self._flights.lead(key) as (leader, flight):
            if leader:
                return self._lead(fn, key, args, kwargs, flight)
        # Another call of this process computed it: share what it made.
        if flight.result is not None:
            return fn.decode(flight.result)  # type: ignore[no-any-return]
        return self._compute(fn, key, args, kwargs, Flight(), keep=False)

    def _lead(
        self,
        fn: CachedFunction[R],
        key: DataKey,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        flight: Flight,
    ) -> R:
        """This process's one computation of *key*, once no other process is making it."""
        lock = self._lock(key)
        deadline = time.monotonic() + FLIGHT_TIMEOUT
        while lock is None and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)  # gevent's sleep in a patched server
            found = self._read(key, fn)
            if found is not None:  # another worker computed it
                flight.result = found[0].body
                return found[1]  # type: ignore[no-any-return]
            lock = self._lock(key)
        try:
            found = self._read(key, fn) if lock is not None else None
            if found is not None:  # stored just before the lock was ours
                flight.result = found[0].body
                return found[1]  # type: ignore[no-any-return]
            return self._compute(fn, key, args, kwargs, flight, keep=lock is not None)
        finally:
            if lock is not None:
                lock.release()

    def _compute(
        self,
        fn: CachedFunction[R],
        key: DataKey,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        flight: Flight,
        keep: bool,
    ) -> R:
        """Call the function, store its value when *keep*, return it as a hit would."""
        # Read before the call: a revalidation that lands while it runs moves
        # a generation, and the value it stores is never served as fresh.
        generations = self._generations(key, fn) if keep else None
        body = fn.encode(fn.function(*args, **kwargs))
        value = fn.decode(body)  # what a hit will return: checked before it is kept
        flight.result = body
        if generations is not None:
            entry = Entry("200 OK", [], body, time.time(), fn.revalidate, tags=fn.tags)
            entry.generations = generations
            self._set(key, entry)
        return value  # type: ignore[no-any-return]

    def _refresh(
        self, fn: CachedFunction[Any], key: DataKey, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Replace a stale value, off the caller; on failure the stale value stays."""
        token = _bound.set(self)  # what fn calls in turn uses this app's store too
        try:
            lock = self._lock(key)
            if lock is None:
                return  # another worker is refreshing it
            try:
                found = self._read(key, fn)
                if found is not None and not found[0].is_stale(time.time()):
                    return  # another worker refreshed it just now
                generations = self._generations(key, fn)
                if generations is None:
                    return  # the store is failing: the value could not be kept
                body = fn.encode(fn.function(*args, **kwargs))
                entry = Entry("200 OK", [], body, time.time(), fn.revalidate, tags=fn.tags)
                entry.generations = generations
                self._set(key, entry)
            finally:
                lock.release()
        except Exception:
            logger.exception("Refreshing @cached %s failed; keeping the stale value", fn.name)
        finally:
            _bound.reset(token)
            self._flights.finish(key)

    # -- the store, failing soft ------------------------------------------------

    def _read(self, key: DataKey, fn: CachedFunction[Any]) -> tuple[Entry, Any] | None:
        """The stored entry of *key* and its value; None if absent or unreadable.

        A value that no longer fits the function's return annotation (stored by
        older code under the same build id) reads as a miss.
        """
        entry = self._get(key, fn)
        if entry is None:
            return None
        value = fn.decode(entry.body, stored=True)
        return None if value is _UNREADABLE else (entry, value)

    def _get(self, key: DataKey, fn: CachedFunction[Any]) -> Entry | None:
        if self._health.down():
            return None
        assert self.store is not None
        try:
            return self.store.get(key, fn.tags)
        except Exception:
            self._health.failed("read", fn.name)
            return None

    def _generations(self, key: DataKey, fn: CachedFunction[Any]) -> tuple[int, ...] | None:
        if self._health.down():
            return None
        assert self.store is not None
        try:
            return self.store.generations(key, fn.tags)
        except Exception:
            self._health.failed("read the generations of", fn.name)
            return None

    def _set(self, key: DataKey, entry: Entry) -> None:
        if self._health.down():
            return
        assert self.store is not None
        try:
            self.store.set(key, entry)
        except Exception:
            self._health.failed("store", key.name)

    def _lock(self, key: DataKey) -> Lock | None:
        if self._health.down():
            return NO_LOCK
        assert self.store is not None
        try:
            return self.store.lock(key)
        except Exception:
            self._health.failed("lock", key.name)
            return NO_LOCK  # no store to coordinate through: compute here


# -- which app's data cache --------------------------------------------------------

#: Each App's data cache, by the route table its requests' states carry.
_by_routes: weakref.WeakKeyDictionary[object, DataCache] = weakref.WeakKeyDictionary()
#: Set while a background refresh runs, which has no request.
_bound: ContextVar[DataCache | None] = ContextVar("microroute.datacache", default=None)
_default: DataCache | None = None


def register(routes: object, data: DataCache) -> None:
    """Make *data* the data cache of requests whose state carries *routes* (an App's
    route table), and the process default for calls outside any request."""
    global _default
    _by_routes[routes] = data
    _default = data


def current() -> DataCache:
    """The data cache of the app serving this call (module docstring)."""
    data = _bound.get()
    if data is not None:
        return data
    try:
        routes = active().routes
    except LookupError:  # no request: a script, a thread of the user's own
        pass
    else:
        data = _by_routes.get(routes)
        if data is not None:
            return data
    return _default or _private()


@functools.lru_cache(maxsize=1)
def _private() -> DataCache:
    """The data cache of a process with no App at all: an in-process memory store."""
    return DataCache(MemoryStore())


# -- the decorator -----------------------------------------------------------------

_UNREADABLE: Any = object()


class CachedFunction(Generic[R]):
    """A function wrapped by :func:`cached`; call it as the function itself."""

    def __init__(
        self, function: Callable[..., R], tags: tuple[str, ...], revalidate: float | None
    ) -> None:
        functools.update_wrapper(self, function)
        self.function = function
        self.tags = tags
        self.revalidate = revalidate
        #: ``module.qualname``: the start of every key, and what errors name.
        self.name = f"{function.__module__}.{function.__qualname__}"
        self._prefix = self.name[:_NAME_CHARS] + ":"
        self._salt = self.name.encode() + b"\0"
        #: A whole name in the key lets short arguments stand in it as they are.
        self._literal = len(self.name) <= _NAME_CHARS
        self._signature = inspect.signature(function)
        parameters = self._signature.parameters.values()
        #: Calls with exactly this many positional arguments skip binding.
        self._arity = (
            len(self._signature.parameters)
            if all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)
            else -1
        )
        msgspec = _msgspec(self.name)
        self._keys = msgspec.json.Encoder(enc_hook=_cache_key, order="deterministic")
        self._values = msgspec.json.Encoder()
        self._decoder: Any = None

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        return current().call(self, args, kwargs)

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return functools.partial(self, instance)  # a method: self is its first argument

    def __repr__(self) -> str:
        return f"<@cached {self.name}>"

    def key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> DataKey:
        """The store key of a call with *args* and *kwargs*; :class:`CacheKeyError` if none."""
        if not kwargs and len(args) == self._arity:
            values: tuple[Any, ...] = args
        else:
            try:
                bound = self._signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise TypeError(f"{self.name}(): {exc}") from None
            bound.apply_defaults()
            values = tuple(bound.arguments.values())
        try:
            encoded = self._keys.encode(values)
        except (TypeError, ValueError, OverflowError):
            raise self._unkeyable(values) from None
        if self._literal and len(encoded) <= _LITERAL_BYTES:  # short: readable, no hash
            return tuple.__new__(DataKey, (self._prefix + encoded.decode(),))  # fast DataKey()
        digest = hashlib.blake2b(self._salt + encoded, digest_size=20)
        return tuple.__new__(DataKey, (self._prefix + "#" + digest.hexdigest(),))

    def _unkeyable(self, values: tuple[Any, ...]) -> CacheKeyError:
        names = list(self._signature.parameters)
        for name, value in zip(names, values, strict=False):
            try:
                self._keys.encode(value)
            except (TypeError, ValueError, OverflowError) as exc:
                kind = type(value).__name__
                return CacheKeyError(
                    f"@cached {self.name}(): argument {name!r} is a {kind}, which makes no"
                    f" stable cache key ({exc}). Pass JSON-like values, dataclasses or"
                    f" msgspec Structs, or give {kind} a __cache_key__() method returning one"
                )
        return CacheKeyError(f"@cached {self.name}(): its arguments make no stable cache key")

    def encode(self, value: Any) -> bytes:
        """*value* as stored: msgspec JSON."""
        try:
            return bytes(self._values.encode(value))
        except (TypeError, ValueError, OverflowError) as exc:
            raise TypeError(
                f"@cached {self.name}() returned a {type(value).__name__}, which cannot be"
                f" cached ({exc}): return JSON-like values, dataclasses or msgspec Structs"
            ) from None

    def decode(self, body: bytes, stored: bool = False) -> Any:
        """A stored *body* as the function's return annotation says.

        A body that does not fit it is an error naming the function, unless it
        was *stored* (by older code, say): then it reads as a miss.
        """
        if self._decoder is None:
            self._decoder = _decoder_for(self.function)
        try:
            return self._decoder.decode(body)
        except Exception as exc:
            if stored:
                return _UNREADABLE
            raise TypeError(
                f"@cached {self.name}(): its value does not match its return annotation: {exc}"
            ) from None


@overload
def cached(function: Callable[..., R], /) -> CachedFunction[R]: ...


@overload
def cached(
    *, tags: Iterable[str] = (), revalidate: float | bool = False
) -> Callable[[Callable[..., R]], CachedFunction[R]]: ...


def cached(
    function: Callable[..., R] | None = None,
    /,
    *,
    tags: Iterable[str] = (),
    revalidate: float | bool = False,
) -> CachedFunction[R] | Callable[[Callable[..., R]], CachedFunction[R]]:
    """Cache a function's result in the app's store (Next.js's ``"use cache"``).

    >>> @cached(tags=["posts"], revalidate=60)  # doctest: +SKIP
    ... def list_posts(limit: int = 10) -> list[Post]:
    ...     return db.fetch_posts(limit)

    :param tags: names ``app.revalidate_tag(tag)`` refreshes (the routes' tags too).
    :param revalidate: seconds after which the value is stale: returned while
        one background call refreshes it. ``False`` (the default): kept until
        a tag is revalidated, the build changes or the store drops it.

    See :mod:`microroute.datacache` for keys, encoding and which store is used.
    """
    names = (tags,) if isinstance(tags, str) else tuple(tags)
    if isinstance(tags, str) or not all(isinstance(tag, str) for tag in names):
        raise TypeError(f"@cached(tags=...) takes a list of strings, got {tags!r}")
    if revalidate is True or not (
        revalidate is False or (isinstance(revalidate, (int, float)) and revalidate > 0)
    ):
        raise ValueError(f"@cached(revalidate=...) takes seconds > 0 or False, got {revalidate!r}")
    seconds = None if revalidate is False else float(revalidate)

    def wrap(fn: Callable[..., R]) -> CachedFunction[R]:
        if not callable(fn):
            raise TypeError(f"@cached decorates a function, got {fn!r}")
        return CachedFunction(fn, names, seconds)

    return wrap if function is None else wrap(function)


def _cache_key(value: Any) -> Any:
    """msgspec's hook for what it cannot encode itself: a ``__cache_key__()``."""
    method = getattr(type(value), "__cache_key__", None)
    if method is None:
        raise TypeError(f"{type(value).__name__} has no __cache_key__()")
    return method(value)


def _decoder_for(function: Callable[..., Any]) -> Any:
    """A msgspec decoder for *function*'s return annotation (``Any`` without one)."""
    import msgspec

    try:
        annotation = typing.get_type_hints(function).get("return", Any)
    except Exception:  # an annotation only importable under TYPE_CHECKING
        annotation = Any
    try:
        return msgspec.json.Decoder(annotation)
    except TypeError:  # a type msgspec cannot decode (an Iterator, a class of its own)
        return msgspec.json.Decoder()


def _msgspec(name: str) -> Any:
    try:
        import msgspec
    except ImportError:
        raise RuntimeError(
            f"@cached {name} needs msgspec to encode values: pip install 'microroute[typed]'"
        ) from None
    return msgspec
