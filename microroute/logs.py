"""Logs through :mod:`logging`, as uvicorn and gunicorn write them.

Two loggers: ``microroute`` (errors, start-up) and ``microroute.access`` (one
INFO record per request, at the end of its body). An access record carries
its parts as attributes, for a JSON formatter or a filter::

    method path route status bytes duration_ms request_id client cache disconnected

``route`` is the template (``/api/posts/[id]``), ``cache`` the
``X-Microroute-Cache`` value (``HIT``, ``MISS``, ``STALE`` or ``None``), and
``disconnected`` is true when the client left before the body's end. Its
message is the line ``microroute run`` has always printed::

    127.0.0.1 "GET /api/posts/7 HTTP/1.1" 200 27 0.4ms

``microroute run`` applies :data:`DEFAULT_CONFIG` when nothing else configured
logging, or the file given to ``--log-config`` (a ``dictConfig`` JSON file, or
an INI file for ``fileConfig``), and ``--log-level``.
"""

from __future__ import annotations

import json
import logging
import logging.config
from pathlib import Path
from typing import Any

from .lifecycle import Exchange, Observer
from .requestids import install_record_factory

__all__ = [
    "DEFAULT_CONFIG",
    "LOGGED",
    "QUIET",
    "AccessLog",
    "access_logger",
    "configure",
    "configured",
]

access_logger = logging.getLogger("microroute.access")
#: The environ key that says the app writes this request's access record, so
#: the server (``microroute run``'s) writes none of its own.
LOGGED = "microroute.access_logged"
# logging's own per-level answers for this logger (cleared in place on any
# level change); {} if a future logging keeps none, and isEnabledFor answers.
_enabled_cache_get = getattr(access_logger, "_cache", {}).get
#: The environ key that says no access line at INFO is wanted for this request
#: (a health probe, polled every few seconds), from the app or the server.
QUIET = "microroute.access_quiet"

#: What ``microroute run`` configures when nothing else has: a timestamp, the
#: level, the logger name and the request's id on errors and the app's own
#: records (its loggers at INFO); access lines as they always were.
DEFAULT_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
            "datefmt": "%Y-%m-%d %H:%M:%S",
        },
        "access": {
            "format": "%(asctime)s %(message)s",
            "datefmt": "%Y-%m-%d %H:%M:%S",
        },
    },
    "handlers": {
        "default": {
            "class": "logging.StreamHandler",
            "formatter": "default",
            "stream": "ext://sys.stderr",
        },
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "access",
            "stream": "ext://sys.stderr",
        },
    },
    "loggers": {
        "microroute.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["default"], "level": "INFO"},
}


class AccessLog(Observer):
    """One ``microroute.access`` record per request, when its body has ended.

    Only while the logger is enabled for INFO does it watch a body to its end
    (:attr:`~microroute.lifecycle.Observer.watching`): unconfigured, as under
    gunicorn's own workers, it costs one level check.
    """

    @staticmethod
    def watching() -> bool:
        # Logging keeps each logger's answer per level in a dict it clears on
        # any level change: read it first, it is the every-request question.
        known: bool | None = _enabled_cache_get(logging.INFO)
        return access_logger.isEnabledFor(logging.INFO) if known is None else known

    def response_ended(self, exchange: Exchange) -> None:
        if not access_logger.isEnabledFor(logging.INFO):
            return
        environ = exchange.environ
        environ[LOGGED] = True  # read by microroute run's server once the body is closed
        cache = None
        for name, value in exchange.headers:
            if name == "X-Microroute-Cache":
                cache = value
                break
        query = environ.get("QUERY_STRING")
        target = environ.get("RAW_URI") or (exchange.path + ("?" + query if query else ""))
        client = environ.get("REMOTE_ADDR") or "-"
        status = exchange.status_code
        duration_ms = exchange.duration_ms
        access_logger.info(
            '%s "%s %s %s" %s %d %.1fms',
            client,
            exchange.method,
            target,
            environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            status,
            exchange.bytes_sent,
            duration_ms,
            extra={
                "method": exchange.method,
                "path": exchange.path,
                "route": exchange.route,
                "status": status,
                "bytes": exchange.bytes_sent,
                "duration_ms": round(duration_ms, 3),
                "client": client,
                "cache": cache,
                "disconnected": exchange.disconnected,
            },
        )


def configured() -> bool:
    """Whether something (the user, gunicorn, a test runner) has configured logging."""
    root = logging.getLogger()
    return bool(root.handlers) or bool(logging.getLogger("microroute").handlers)


def configure(config_file: str | None = None, level: str | None = None) -> None:
    """``microroute run``'s logging: *config_file*, else the default when none is set.

    A ``.json`` file is a :func:`logging.config.dictConfig`; any other is an
    INI file for :func:`logging.config.fileConfig`. *level* (``info``,
    ``debug``...) then sets the root and ``microroute`` loggers' level.
    """
    install_record_factory()  # formats may name %(request_id)s
    if config_file is not None:
        path = Path(config_file)
        if path.suffix.lower() == ".json":
            logging.config.dictConfig(json.loads(path.read_text()))
        else:
            logging.config.fileConfig(path, disable_existing_loggers=False)
    elif not configured():
        logging.config.dictConfig(DEFAULT_CONFIG)
    if level is not None:
        value = level.upper()
        for name in ("", "microroute", "microroute.access"):
            logging.getLogger(name).setLevel(value)
