"""Work that runs after the response: ``after(fn, *args, **kwargs)``, as Next.js's ``after()``.

::

    from microroute import after

    @route.post("/chat")
    def chat(request):
        reply = llm(request.json["prompt"])
        after(record_usage, user=cookies().get("user"), tokens=reply.tokens)
        return {"reply": reply.text}

``fn`` runs once the response has been sent to its last byte (a stream's
last chunk included), also when the handler failed or redirected, and also
when the client went away first. It runs in the request's context, so
``cookies()`` and ``headers()`` still read the request (writing a cookie
raises: the headers are gone), and so do the request's ``ContextVar`` values.
An exception it raises is logged on the ``microroute`` logger with the
request's method and path, and never reaches the client.

**When.** PEP 3333 servers call the body's ``close()`` after its last byte, or
when the client left: :func:`after_the_response` wraps the body the app returns once
``after()`` was called (and for every stream, whose generator may call it
later), and its ``close()`` hands the request's work to the pool. One
request's functions run one after the other, in the order given (one that
calls ``after()`` adds to the end); different requests' work runs side by side.
Nothing is wrapped for a request that never called ``after()``: its body
keeps the servers' one-write path.

**Where.** A bounded pool per worker process, :data:`POOL_SIZE` requests'
work at once: gevent greenlets when the process is monkey-patched
(``microroute run``, ``gunicorn -k gevent``, ``-k microroute.gunicorn.Worker``),
else threads. When the pool is full, ``close()`` waits for a slot: work is
never dropped, and the connection that scheduled it waits rather than the
worker's memory growing. (With threads, the interpreter's exit also waits
for every running thread, as ``concurrent.futures`` does.)

**Stopping.** :func:`drain` waits for the work scheduled so far.
``microroute run`` calls it on SIGTERM with what is left of its grace
period; elsewhere (gunicorn workers) it runs at interpreter exit, for at most
:data:`EXIT_TIMEOUT` seconds (gunicorn's own ``--graceful-timeout`` still
kills a worker that overruns it).

A file wrapper (``wsgi.file_wrapper``) of a request that called ``after()``
is wrapped too, and so sent by iteration rather than ``sendfile``.

**Tests.** The :class:`~microroute.testing.TestClient` marks its requests
(:data:`INLINE`), and their work runs in ``close()`` itself: before the
response object is returned, or, with ``stream=True``, when it is closed.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from typing import Any, Protocol

from .context import current
from .lifecycle import Exchange
from .responses import ClosingBody

__all__ = [
    "EXIT_TIMEOUT",
    "INLINE",
    "POOL_SIZE",
    "after",
    "after_the_response",
    "at_body_end",
    "drain",
    "pending",
    "run_now",
]

logger = logging.getLogger("microroute")

#: How many requests' after() work may run at once in one worker process.
POOL_SIZE = 100
#: Seconds the interpreter's exit waits for after() work still running.
EXIT_TIMEOUT = 30.0
#: The environ key the TestClient sets: run after() work inside ``close()``.
INLINE = "microroute.after.inline"

Task = Callable[[], Any]

#: The request's after() work, set in its context by the first call. The app
#: tests ``pending in context``: one lookup, no call, on every response.
pending: contextvars.ContextVar[list[Task]] = contextvars.ContextVar("microroute.after")


def after(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
    """Run ``fn(*args, **kwargs)`` once the response has been sent to its last byte.

    Call it while a request is served: in a handler, middleware, an error
    handler, or a stream's generator before its end. See the module's
    documentation for when, where and in which context it runs.

    >>> after(audit_log.write, "login", user=name)                # doctest: +SKIP

    Raises :class:`RuntimeError` outside a request. In a static GET's build
    it makes the route dynamic, as ``cookies()`` does: work per request
    needs a request.
    """
    if not callable(fn):
        raise TypeError(f"after() takes a function to call, got {type(fn).__name__}")
    state = current("after()")
    if state.build is not None:  # dynamic = "force-static": no request to run after
        raise RuntimeError(
            f"after() needs a request, and {state.where} is built as static (dynamic ="
            ' "force-static"); remove the call or make the route dynamic'
        )
    tasks = pending.get(None)
    if tasks is None:
        tasks = []
        pending.set(tasks)
    tasks.append(partial(fn, *args, **kwargs) if args or kwargs else fn)


class _AtBodyEnd:
    """A task for the body's ``close()`` itself: a provider's teardown."""

    __slots__ = ("task",)

    def __init__(self, task: Task) -> None:
        self.task = task

    def __call__(self) -> Any:
        return self.task()


def at_body_end(task: Task) -> None:
    """Run *task* when the response's body closes, in that thread, before after() work.

    For a generator provider's teardown (:mod:`microroute.providers`): it
    belongs to the request's own thread (a sqlite connection refuses any
    other) and must be done before the work after the response starts. Unlike
    :func:`after`, a static build may schedule it: the build runs it at its end.
    """
    tasks = pending.get(None)
    if tasks is None:
        tasks = []
        pending.set(tasks)
    tasks.append(_AtBodyEnd(task))


def run_now() -> None:
    """Run what the current context scheduled, here and now (a static build's end)."""
    tasks = pending.get(None)
    if tasks:
        _run(tasks, contextvars.copy_context(), "GET", "(a static build)")


def after_the_response(
    body: Iterable[bytes],
    context: contextvars.Context,
    environ: dict[str, Any],
    exchange: Exchange | None = None,
) -> ClosingBody:
    """*body*, whose ``close()`` then hands the request's after() work on.

    The body is closed first (a generator's ``finally:`` runs before any
    after() work), once, whoever calls it. An observed request's *exchange*
    tells its observers when the work is handed on and when it all ran.
    """
    return ClosingBody(body, partial(_hand_on, context, environ, exchange))


def _hand_on(
    context: contextvars.Context, environ: dict[str, Any], exchange: Exchange | None
) -> None:
    tasks = context.get(pending)
    if tasks:
        method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
        here: list[Task] = [task for task in tasks if type(task) is _AtBodyEnd]
        if here:  # providers' teardowns: here and now, before any after() work
            tasks[:] = [task for task in tasks if type(task) is not _AtBodyEnd]
            _run(here, context, method, path)
            if not tasks:
                return
        if exchange is not None and not (
            exchange.observers.after_scheduled or exchange.observers.after_done
        ):
            exchange = None  # nothing watches after() work
        job = partial(_run, tasks, context, method, path, exchange)
        if exchange is not None:  # in a copy: the request's context may be entered here
            context.copy().run(exchange.after_handed_on)
        if environ.get(INLINE):
            job()
        else:
            _pool().submit(job)


def _run(
    tasks: list[Task],
    context: contextvars.Context,
    method: Any,
    path: Any,
    exchange: Exchange | None = None,
) -> None:
    """Run one request's work in its context, in order; log what fails."""
    # A copy: the request's context may still be entered where the response
    # was sent (a context can be entered in one place at a time).
    context = context.copy()
    try:
        _run_all(tasks, context, method, path)
    finally:
        if exchange is not None:
            context.run(exchange.after_ran)


def _run_all(tasks: list[Task], context: contextvars.Context, method: Any, path: Any) -> None:
    while tasks:
        task = tasks.pop(0)
        try:
            context.run(task)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # a ControlFlow or gevent.Timeout is one too
            if type(exc).__name__ == "GreenletExit":  # the worker is being killed
                raise
            logger.error(
                "after() work %s for %s %s raised %s",
                getattr(task, "__qualname__", None) or repr(task),
                method,
                path,
                type(exc).__name__,
                exc_info=exc,
            )


# -- the pool ---------------------------------------------------------------


class _Pool(Protocol):
    def submit(self, job: Task) -> None: ...
    def join(self, timeout: float | None) -> bool: ...
    def __len__(self) -> int: ...


class _GreenletPool:
    """A gevent ``Pool``: ``spawn`` waits for a free slot when it is full."""

    def __init__(self, size: int) -> None:
        from gevent.pool import Pool

        self._pool = Pool(size)

    def submit(self, job: Task) -> None:
        self._pool.spawn(job)

    def join(self, timeout: float | None) -> bool:
        return bool(self._pool.join(timeout=timeout))

    def __len__(self) -> int:
        return len(self._pool)


class _ThreadPool:
    """Threads, with a semaphore so that a full pool makes the caller wait, not queue."""

    def __init__(self, size: int) -> None:
        self._executor = ThreadPoolExecutor(size, thread_name_prefix="microroute-after")
        self._slots = threading.BoundedSemaphore(size)
        self._running: set[Future[None]] = set()

    def submit(self, job: Task) -> None:
        self._slots.acquire()
        future = self._executor.submit(job)
        self._running.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        self._running.discard(future)
        self._slots.release()

    def join(self, timeout: float | None) -> bool:
        return not wait(set(self._running), timeout).not_done

    def __len__(self) -> int:
        return len(self._running)


_lock = threading.Lock()
# The pool and the process that made it: a forked worker makes its own.
_made: tuple[int, _Pool] | None = None
_drained = False


def _pool() -> _Pool:
    global _made
    with _lock:
        if _made is None or _made[0] != os.getpid():
            monkey = sys.modules.get("gevent.monkey")
            patched = monkey is not None and monkey.is_module_patched("threading")
            pool: _Pool = _GreenletPool(POOL_SIZE) if patched else _ThreadPool(POOL_SIZE)
            _made = (os.getpid(), pool)
            atexit.register(_drain_at_exit)
        return _made[1]


def drain(timeout: float | None) -> bool:
    """Wait up to *timeout* seconds for the after() work scheduled so far.

    True when none is left. A server calls it on a graceful stop, after its
    last response went out; work still running past *timeout* is logged
    and abandoned with the process.
    """
    global _drained
    _drained = True
    made = _made
    if made is None or made[0] != os.getpid():
        return True
    pool = made[1]
    if pool.join(timeout):
        return True
    logger.warning(
        "Stopping with after() work of %d request(s) still running after %.1fs", len(pool), timeout
    )
    return False


def _drain_at_exit() -> None:
    if not _drained:  # a server's own stop already waited its grace period
        drain(EXIT_TIMEOUT)
