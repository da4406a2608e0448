"""microroute's connection loop as a gunicorn worker: ``gunicorn -k microroute.gunicorn.Worker``.

gunicorn keeps what it is good at — the arbiter, worker processes, reloads,
signals, ``max_requests`` — and each worker serves its connections with
:class:`microroute.server.Connection` (llhttp parsing, one write a response)
instead of gunicorn's own pure-Python parser, as ``uvicorn.workers.UvicornWorker``
does for ASGI. It is gunicorn's gevent worker otherwise: monkey-patched, a
greenlet per connection, ``--worker-connections`` bounding them::

    gunicorn -k microroute.gunicorn.Worker -w 4 app:app

**Stopping** (SIGTERM, a reload's SIGHUP, ``--max-requests``) never drops a
request: from its first moment ``/readyz`` answers 503 and every response
says ``Connection: close``; the worker still accepts for
``MICROROUTE_DRAIN_DELAY`` seconds (``microroute run --drain-delay``; 0 by
default), then stops accepting (the arbiter's other workers take the new
connections), closes the keep-alive connections once they have been idle a
moment with nothing arrived, ends event streams cleanly, lets in-flight
requests finish within ``--graceful-timeout``, then its ``after()`` work, and
exits.

``microroute run --workers N`` is gunicorn's arbiter with this worker
(:class:`Application`, a gunicorn ``BaseApplication``).

**gunicorn's settings** are honoured as ``-k gevent`` honours them: a peer in
``--forwarded-allow-ips`` sets the scheme through ``secure_scheme_headers``
(behind a TLS proxy: ``https``, ``Secure`` cookies, ``https://`` redirects);
``--limit-request-line``, ``--limit-request-fields`` and
``--limit-request-field_size`` bound the parser (414 and 431 past them); the
access log is gunicorn's own (``--access-logfile``, ``--access-logformat``
and its atoms) and errors go to its error log (``wsgi.errors`` too);
``--keep-alive``, ``--max-requests`` (with jitter), ``--graceful-timeout``,
``--worker-connections`` and TLS (``--certfile``...) as in its gevent worker.
README's "With gunicorn" lists the few it does not honour, and why.

Needs the ``gunicorn`` extra: ``pip install "microroute[gunicorn]"``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import lru_cache, partial
from typing import Any

import gevent
from gevent.pool import Pool
from gevent.server import StreamServer
from gunicorn import SERVER_SOFTWARE  # type: ignore[import-untyped]
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]
from gunicorn.errors import AppImportError, HaltServer  # type: ignore[import-untyped]
from gunicorn.http.wsgi import WSGIErrorsWrapper  # type: ignore[import-untyped]
from gunicorn.sock import ssl_context  # type: ignore[import-untyped]
from gunicorn.workers.ggevent import GeventWorker  # type: ignore[import-untyped]

from .after_response import drain
from .errors import StartupError
from .logs import QUIET
from .server import IO_TIMEOUT, Connection, Connections, base_environ
from .server.limits import Limits

__all__ = ["DRAIN_DELAY", "TIMEOUT_IO", "Application", "Worker", "limits_of"]

#: The environment variable giving a stopping worker's drain delay, in seconds.
DRAIN_DELAY = "MICROROUTE_DRAIN_DELAY"
#: The environment variable giving the worker's I/O timeout (``--timeout-io``), in seconds.
TIMEOUT_IO = "MICROROUTE_TIMEOUT_IO"

#: How often the worker looks whether a stop began (a signal, --max-requests).
_WATCH_SECONDS = 0.1
#: gunicorn's own caps on its --limit-request-* settings (gunicorn/http/message.py).
_GUNICORN_MAX_LINE = 8190
_GUNICORN_MAX_FIELDS = 32768
_GUNICORN_FIELD_SIZE = 8190
#: gunicorn's bound for --limit-request-line 0 ("unlimited").
_UNLIMITED_LINE = 1024 * 1024
_CONTRADICTORY = b'{"error":"Contradictory scheme headers"}'


def _seconds_from(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value >= 0 else default


def limits_of(cfg: Any) -> Limits:
    """gunicorn's ``--limit-request-*`` settings as the parser's limits, read as gunicorn does.

    ``--limit-request-line`` 0 is unlimited (1 MiB, as gunicorn's own parser),
    anything above 8190 is 8190; ``--limit-request-fields`` 0 or above 32768 is
    32768; ``--limit-request-field_size`` 0 is 8190. The whole header section
    may take what that many fields of that size take.
    """
    line = cfg.limit_request_line
    if line == 0:
        line = _UNLIMITED_LINE
    elif line < 0 or line > _GUNICORN_MAX_LINE:
        line = _GUNICORN_MAX_LINE
    fields = cfg.limit_request_fields
    if fields <= 0 or fields > _GUNICORN_MAX_FIELDS:
        fields = _GUNICORN_MAX_FIELDS
    size = cfg.limit_request_field_size
    if size <= 0:
        size = _GUNICORN_FIELD_SIZE
    return Limits(
        request_line=line, fields=fields, field_size=size, header_bytes=fields * (size + 2) + 4
    )


class _Response:
    """What gunicorn's access log reads of a response: ``status``, ``headers``, ``sent``."""

    __slots__ = ("headers", "sent", "status")

    def __init__(self, status: str, headers: list[tuple[str, str]], sent: int) -> None:
        self.status = status
        self.headers = headers
        self.sent = sent


class _SchemeFromProxy:
    """The app, for a peer in ``--forwarded-allow-ips``: the scheme ``secure_scheme_headers`` say.

    As gunicorn's own parser does: a listed header equal to its value means
    ``https``, any other value ``http``; two that disagree are a 400.
    """

    __slots__ = ("app", "schemes")

    def __init__(self, app: Callable[..., Iterable[bytes]], schemes: dict[str, str]) -> None:
        self.app = app
        self.schemes = [
            ("HTTP_" + name.upper().replace("-", "_"), value) for name, value in schemes.items()
        ]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        scheme = None
        for key, secure in self.schemes:
            value = environ.get(key)
            if value is None:
                continue
            said = "https" if value == secure else "http"
            if scheme is not None and said != scheme:
                length = str(len(_CONTRADICTORY))
                start_response(
                    "400 Bad Request",
                    [("Content-Type", "application/json"), ("Content-Length", length)],
                )
                return [_CONTRADICTORY]
            scheme = said
        if scheme is not None:
            environ["wsgi.url_scheme"] = scheme
        return self.app(environ, start_response)


class Worker(GeventWorker):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's gevent worker, serving each connection with microroute's loop."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cfg = self.cfg
        # gunicorn's --keep-alive (2 s by default) bounds idle connections, as in its own
        # workers; its --max-requests (with jitter: self.max_requests) begins a stop.
        self.connections = Connections(
            access=self.write_access if self._access_log_on() else None,
            keepalive=float(cfg.keepalive),
            io_timeout=_seconds_from(TIMEOUT_IO, IO_TIMEOUT) or IO_TIMEOUT,
            max_requests=self.max_requests,
            limits=limits_of(cfg),
            log=self.log,
        )
        #: Seconds a stopping worker still accepts new connections.
        self.drain_delay = _seconds_from(DRAIN_DELAY, 0.0)
        allowed = list(cfg.forwarded_allow_ips)
        self._trust_all = "*" in allowed
        self._trusted = [ipaddress.ip_network(a, strict=False) for a in allowed if a != "*"]
        self.trusts = lru_cache(maxsize=1024)(self._trusts)
        self._errors: Any = None
        self._proxied: Callable[..., Iterable[bytes]] | None = None

    def _access_log_on(self) -> bool:
        """Whether gunicorn writes access lines: its own test, so that none costs nothing."""
        enabled = getattr(self.log, "access_log_enabled", None)  # gunicorn 24+
        if enabled is not None:
            return bool(enabled)
        cfg = self.cfg
        return bool(
            cfg.accesslog
            or cfg.logconfig
            or getattr(cfg, "logconfig_dict", None)
            or getattr(cfg, "logconfig_json", None)
            or (cfg.syslog and not cfg.disable_redirect_access_to_syslog)
        )

    def write_access(
        self,
        environ: dict[str, Any],
        status: str,
        headers: list[tuple[str, str]],
        sent: int,
        seconds: float,
    ) -> None:
        """One access line through gunicorn's access log (``--access-logformat``'s atoms)."""
        if QUIET in environ:
            return
        request_headers = [
            (key[5:].replace("_", "-"), value)
            for key, value in environ.items()
            if key[:5] == "HTTP_" and type(value) is str
        ]
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if key in environ:
                request_headers.append((key.replace("_", "-"), environ[key]))
        if "REQUEST_METHOD" not in environ:  # refused while parsing: gunicorn's "-"
            environ = {**environ, "REQUEST_METHOD": "-", "RAW_URI": "-", "SERVER_PROTOCOL": "-"}
        response = _Response(status or "500 Internal Server Error", headers, sent)
        self.log.access(response, request_headers, environ, timedelta(seconds=seconds))

    def _trusts(self, peer: str) -> bool:
        """Whether *peer* is in ``--forwarded-allow-ips`` (an address or a network)."""
        if self._trust_all:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self._trusted)

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM (also how the arbiter retires a worker on reload): a graceful stop."""
        super().handle_exit(sig, frame)
        self.connections.stop()  # only a flag: from now on, every response says close

    def run(self) -> None:
        # Made in the worker, once its logging is set up: wsgi.errors writes to the error log.
        self._errors = WSGIErrorsWrapper(self.cfg)
        schemes = self.cfg.secure_scheme_headers
        self._proxied = _SchemeFromProxy(self.wsgi, schemes) if schemes else None
        ssl_args = {"ssl_context": ssl_context(self.cfg)} if self.cfg.is_ssl else {}
        servers, pools = [], []
        for listener in self.sockets:
            listener.setblocking(1)
            pool = Pool(self.worker_connections)
            server = StreamServer(
                listener, handle=partial(self.handle, listener), spawn=pool, **ssl_args
            )
            if self.cfg.workers > 1:
                server.max_accept = 1  # one at a time: the other workers get their share
            server.start()
            servers.append(server)
            pools.append(pool)
        gevent.spawn(self.connections.run_reaper)

        notified = 0.0
        while self.alive and not self.connections.stopping:  # type: ignore[has-type]
            if time.monotonic() - notified >= 1.0:
                self.notify()
                notified = time.monotonic()
            gevent.sleep(_WATCH_SECONDS)
        if self.alive:  # type: ignore[has-type]
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        self._stop(servers, pools)

    def _stop(self, servers: list[StreamServer], pools: list[Pool]) -> None:
        """Accept a while yet, stop accepting, let the connections finish, then the after() work."""
        self.connections.stop()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        accept_until = min(deadline, time.monotonic() + self.drain_delay)
        while time.monotonic() < accept_until:  # a load balancer sees /readyz 503 meanwhile
            self.notify()
            gevent.sleep(min(1.0, accept_until - time.monotonic()))
        for server in servers:
            server.close()
        while any(len(pool) for pool in pools):
            left = deadline - time.monotonic()
            if left <= 0:
                self.log.warning("Worker graceful timeout (pid:%s)", self.pid)
                for pool in pools:
                    pool.kill(block=True, timeout=1)
                return
            self.notify()
            for pool in pools:
                pool.join(timeout=min(left, 1.0))
        drain(max(0.0, deadline - time.monotonic()))

    def handle(self, listener: Any, client: socket.socket, addr: Any) -> None:
        client.setblocking(True)
        with contextlib.suppress(OSError):
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        scheme = "https" if self.cfg.is_ssl else "http"
        base = base_environ(client, addr, scheme)
        base["wsgi.multiprocess"] = self.cfg.workers > 1
        base["wsgi.errors"] = self._errors
        base["SERVER_SOFTWARE"] = SERVER_SOFTWARE
        app = self.wsgi
        if self._proxied is not None and (not isinstance(addr, tuple) or self.trusts(addr[0])):
            app = self._proxied  # a UNIX socket's peer is trusted, as gunicorn does
        Connection(app, client, base, self.connections).serve()


class Application(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """``microroute run --workers N``: gunicorn's arbiter, running N microroute workers.

    Not a process manager of its own: gunicorn's, with *options* (gunicorn
    setting names: ``bind``, ``workers``, ``keepalive``...) over what
    ``GUNICORN_CMD_ARGS`` says, and the app from *load*, called in each
    worker once it is monkey-patched. A start-up error is one line, and
    gunicorn stops.
    """

    def __init__(self, load: Callable[[], Any], options: dict[str, Any]) -> None:
        self._load = load
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        env_args = self.cfg.get_cmd_args_from_env()
        if env_args:
            parsed = self.cfg.parser().parse_args(env_args)
            for name, value in vars(parsed).items():
                if value is not None and name != "args":
                    self.cfg.set(name.lower(), value)
        for name, value in self._options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        try:
            return self._load()
        except StartupError as exc:
            raise AppImportError(f"error: {exc}") from None

    def run(self) -> None:
        """The arbiter until it stops: gunicorn ends the process with ``SystemExit``.

        gunicorn 27's arbiter can also let its ``HaltServer`` escape, with a
        traceback, when a second worker fails to load while it halts for the
        first: the same end, so the same exit.
        """
        try:
            super().run()
        except HaltServer as exc:
            raise SystemExit(exc.exit_status) from None
