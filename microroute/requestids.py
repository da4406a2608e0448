"""Request ids: one token per request, on its response and on every log record it causes.

``App(request_id_header="X-Request-ID")`` (the default; ``None`` turns it off):
an incoming id that is a short token (``[A-Za-z0-9._:-]{1,128}``, what a proxy
or a client generates) is kept, so one id follows a request across services;
anything else is replaced by a fresh one, so a client cannot write into your
logs. Every response carries it — a cache HIT, an early 413, a 404, a 500 — and
``request.id`` or :func:`request_id` read it::

    from microroute import request_id

    @route.get("/work")
    def work():
        log.info("working")              # the record has .request_id too
        return {"id": request_id()}

Each log record made while a request is served (in its handler, its stream,
its after() work, its on_disconnect callbacks) gets a ``request_id``
attribute (``"-"`` outside a request), so a format string can say
``%(request_id)s``.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from contextvars import ContextVar
from typing import Any

from .lifecycle import Exchange, Observer

__all__ = ["RequestIds", "install_record_factory", "new_id", "request_id"]

_current: ContextVar[str | None] = ContextVar("microroute.request_id", default=None)

#: What an incoming id may be: a short token that is safe in a log line.
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}").fullmatch


def request_id() -> str | None:
    """The id of the request being served, or ``None`` (outside a request, or ids off)."""
    return _current.get()


def _draw_prefix() -> None:
    """A fresh random prefix and counter: a forked child (a gunicorn worker) draws its own."""
    global _prefix, _counter
    _prefix = os.urandom(6).hex() + "-"
    _counter = itertools.count(1)


_prefix = ""
_counter = itertools.count(1)
_draw_prefix()
os.register_at_fork(after_in_child=_draw_prefix)


def new_id() -> str:
    """A fresh id: this process's random prefix and a counter (unique, and cheap)."""
    return f"{_prefix}{next(_counter):x}"


class RequestIds(Observer):
    """Gives each request its id and each response its header (an observer of the app)."""

    def __init__(self, header: str) -> None:
        self.header = header
        self._environ_key = "HTTP_" + header.upper().replace("-", "_")

    def request_started(self, exchange: Exchange) -> None:
        value = exchange.environ.get(self._environ_key)
        if value is None or not _VALID(value):
            value = f"{_prefix}{next(_counter):x}"  # new_id(), without the call
        exchange.request_id = value
        _current.set(value)

    def response_started(self, exchange: Exchange, headers: list[tuple[str, str]]) -> None:
        value = exchange.request_id
        if value is not None:
            headers.append((self.header, value))


def install_record_factory() -> None:
    """Give every :class:`logging.LogRecord` a ``request_id`` attribute, once per process.

    As OpenTelemetry's logging instrumentation does for trace ids: the record
    factory, not a handler's filter, so records reach every handler with it,
    the user's own included.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_microroute", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = _current.get() or "-"
        return record

    factory._microroute = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
