"""The ``microroute`` command (also ``python -m microroute``).

``microroute run [TARGET] [--host H] [--port P] [--reload] [--debug]
[--no-access-log] [--workers N] [--drain-delay S]`` serves an app with
microroute's server (see :mod:`microroute.server`), after a banner with its
URL and route table; with ``--workers N``, N processes under gunicorn's
arbiter, each with that server (:class:`microroute.gunicorn.Application`).
``microroute dev [TARGET]`` serves it for development: reload on save, debug
on, static GETs built on every request (:mod:`microroute.devserver`).
``microroute routes [TARGET]`` prints that route table and exits;
``microroute openapi [TARGET]`` prints the app's OpenAPI 3.1 document. TARGET is
resolved by :mod:`microroute.targets`; a TARGET that cannot start prints one
``error: ...`` line naming the file and exits 1, for every command.

gevent must monkey-patch the standard library *before* anything else imports
``socket``, ``threading`` or ``ssl``, or those modules keep blocking versions
and one slow handler stalls every request. That is why this module imports
only the standard library at the top, why ``microroute/__init__.py`` imports
nothing eagerly, and why :func:`main` patches before it loads werkzeug or the
user's app.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess

    from _typeshed.wsgi import WSGIApplication

    from microroute.table import Route

__all__ = ["RouteRow", "format_route_table", "main", "route_rows"]

#: Set in the server process that ``--reload`` starts, so it serves instead of
#: supervising another child.
_RELOAD_CHILD_ENV = "MICROROUTE_RELOAD_CHILD"

#: How often ``--reload`` looks for changed ``.py`` files, in seconds.
_RELOAD_INTERVAL = 0.5

#: The exit status of a command whose reader closed the pipe (128 + SIGPIPE).
_EXIT_BROKEN_PIPE = 141

#: Folders never scanned for changes: caches, VCS data, virtualenvs.
_RELOAD_SKIP = {"__pycache__", "node_modules", "venv", "site-packages"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``microroute`` command with *argv* (default ``sys.argv[1:]``).

    Returns the process exit code: 0 after a clean stop (SIGTERM, Ctrl-C),
    1 when the app cannot start (the error is printed on one line to stderr),
    2 for a usage error.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(args_list)
    if args.command == "run":
        if not 0 <= args.port <= 65535:
            parser.error(f"--port must be 0-65535, got {args.port}")
        return _run(args, args_list)
    if args.command == "dev":
        if not 0 <= args.port <= 65535:
            parser.error(f"--port must be 0-65535, got {args.port}")
        return _dev(args, args_list)
    if args.command == "routes":
        return _routes(args.target)
    if args.command == "openapi":
        return _openapi(args.target)
    if args.command == "warm":
        return _warm(args.target, args.paths)
    parser.print_help(sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="microroute",
        description="Next.js-style route handlers for WSGI, served by gevent.",
    )
    from .version import describe  # the package's own module: imports nothing of the server

    parser.add_argument("--version", action="version", version=describe())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="serve an app with microroute's server (gevent + llhttp)",
        description="Serve TARGET with microroute's server (a greenlet per connection,"
        " llhttp parsing) until SIGTERM or Ctrl-C.",
    )
    target_help = (
        "a .py file (its `app`), module:attr, or a folder holding app/ "
        "(default: the current folder)"
    )
    run.add_argument("target", nargs="?", metavar="TARGET", help=target_help)
    run.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    run.add_argument("--port", type=int, default=8000, help="port to bind (default: %(default)s)")
    run.add_argument(
        "--reload", action="store_true", help="restart the server when a .py file changes"
    )
    run.add_argument(
        "--debug",
        action="store_true",
        help="tracebacks in 500 responses, and debug logging from microroute",
    )
    run.add_argument(
        "--unsafe-debug-on-network",
        dest="unsafe_debug",
        action="store_true",
        help="allow debug tracebacks on a non-loopback --host (never in production)",
    )
    run.add_argument(
        "--timeout-keep-alive",
        dest="keepalive",
        type=_seconds,
        default=65.0,
        metavar="SECONDS",
        help="close a keep-alive connection idle this long (default: 65, past the 60 s"
        " idle timeout of nginx's upstream pools and load balancers)",
    )
    run.add_argument(
        "--timeout-io",
        dest="io_timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="disconnect a client that stalls this long within a request or a response,"
        " or takes this long to send a request's headers (default: 30)",
    )
    run.add_argument(
        "--workers",
        type=_count,
        default=None,
        metavar="N",
        help="run N worker processes under gunicorn's arbiter, each with microroute's server"
        ' (needs the gunicorn extra: pip install "microroute[gunicorn]")',
    )
    run.add_argument(
        "--drain-delay",
        dest="drain_delay",
        type=_seconds_or_zero,
        default=0.0,
        metavar="SECONDS",
        help="on SIGTERM, keep accepting new connections this long while /readyz answers"
        " 503, so a load balancer polling it stops sending first (default: 0)",
    )
    run.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_false",
        help="do not log one line per request (the microroute.access logger)",
    )
    run.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default=None,
        help="the level of the root, microroute and microroute.access loggers (default: info)",
    )
    run.add_argument(
        "--log-config",
        metavar="FILE",
        default=None,
        help="configure logging from FILE: a logging.config.dictConfig JSON file (.json),"
        " or an INI file for fileConfig; replaces the default configuration",
    )
    dev = commands.add_parser(
        "dev",
        help="serve an app for development: reload on save, debug on, no caching",
        description="Serve TARGET for development, as `next dev` does: the server restarts"
        " when a .py file or microroute.toml changes (watchfiles when installed, else"
        " polling), 500s show their traceback (an HTML page in a browser), static GETs are"
        " built on every request (X-Microroute-Cache: DEV), and an app that cannot start"
        " answers every request with its error until the next save.",
    )
    dev.add_argument("target", nargs="?", metavar="TARGET", help=target_help)
    dev.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    dev.add_argument("--port", type=int, default=8000, help="port to bind (default: %(default)s)")
    dev.add_argument(
        "--unsafe-debug-on-network",
        dest="unsafe_debug",
        action="store_true",
        help="allow a non-loopback --host although tracebacks reach whoever connects",
    )
    routes = commands.add_parser(
        "routes",
        help="print the route table of an app",
        description="Print TARGET's routes: methods, path, static or dynamic, and source.",
    )
    routes.add_argument("target", nargs="?", metavar="TARGET", help=target_help)
    openapi = commands.add_parser(
        "openapi",
        help="print the OpenAPI 3.1 document of an app",
        description="Print TARGET's OpenAPI 3.1 document as JSON on stdout.",
    )
    openapi.add_argument("target", nargs="?", metavar="TARGET", help=target_help)
    warm = commands.add_parser(
        "warm",
        help="build a new build id's static entries in the shared cache before traffic arrives",
        description="Build TARGET's static GET responses into its cache store (a RedisStore"
        " shared with the servers): every static route without parameters, the paths"
        " each route file's generate_static_params() lists, and those in --paths FILE."
        " Exits 1 if a path failed or matched no GET route.",
    )
    warm.add_argument("target", nargs="?", metavar="TARGET", help=target_help)
    warm.add_argument(
        "--paths",
        metavar="FILE",
        default=None,
        help="also warm these paths: one per line, # comments ('-' reads stdin)",
    )
    return parser


def _count(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of processes >= 1, got {text!r}")
    return value


def _seconds_or_zero(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    if args.workers is not None:  # gunicorn's arbiter: never monkey-patched, its workers are
        return _run_workers(args)
    # First, before werkzeug, the user's app or anything that opens a socket.
    from gevent import monkey

    monkey.patch_all()

    if args.reload and os.environ.get(_RELOAD_CHILD_ENV) != "1":
        return _supervise(argv, _watch_root(args.target))

    import logging

    from microroute.errors import StartupError
    from microroute.logs import configure
    from microroute.server import serve
    from microroute.targets import load_app

    try:
        # Before the app loads: its module-level loggers and the access log
        # see the configuration from their first record.
        configure(args.log_config, args.log_level)
        if not args.access_log:
            logging.getLogger("microroute.access").setLevel(logging.WARNING)
        app = load_app(args.target)
        if args.debug:
            _enable_debug(app)
        _refuse_public_debug(app, args.host, args.unsafe_debug)
        serve(
            app,
            args.host,
            args.port,
            access_log=args.access_log,
            banner=_banner(app),
            keepalive=args.keepalive,
            io_timeout=args.io_timeout,
            drain_delay=args.drain_delay,
        )
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    # Stopped cleanly: a second SIGTERM or Ctrl-C while the interpreter exits
    # must not turn the exit status 0 into a signal death or a traceback.
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    return 0


def _dev(args: argparse.Namespace, argv: list[str]) -> int:
    """``microroute dev``: the supervisor here, the server in the process it starts."""
    from microroute.devserver import CHILD_ENV, develop

    if os.environ.get(CHILD_ENV) is None:  # the server process patches gevent first
        from types import SimpleNamespace

        from microroute.errors import StartupError

        debugging: Any = SimpleNamespace(debug=True)  # dev is always debug: check the host now
        try:
            _refuse_public_debug(debugging, args.host, args.unsafe_debug)
        except StartupError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
    return develop(args.target, args.host, args.port, argv, _dev_table)


def _dev_table(app: WSGIApplication) -> str | None:
    """``microroute dev``'s banner: the route table, None for another WSGI app."""
    rows = route_rows(app)
    return None if rows is None else format_route_table(rows, indent="  ")


def _run_workers(args: argparse.Namespace) -> int:
    """``microroute run --workers N``: gunicorn's arbiter running N microroute workers.

    The arbiter stays unpatched and never imports the app: each worker
    monkey-patches, then loads it (gunicorn's way, and the only safe one
    with gevent). microroute's options become gunicorn's settings;
    ``GUNICORN_CMD_ARGS`` may add any other (``--max-requests``...).
    """
    import math

    if args.reload:
        print("error: --reload runs one process; drop --workers", file=sys.stderr, flush=True)
        return 2
    try:
        from microroute.gunicorn import DRAIN_DELAY, TIMEOUT_IO, Application
    except ImportError as exc:
        print(
            "error: --workers runs gunicorn's arbiter, which is not installed:"
            f' pip install "microroute[gunicorn]" ({exc})',
            file=sys.stderr,
            flush=True,
        )
        return 1
    import logging

    from microroute.errors import StartupError
    from microroute.logs import configure
    from microroute.server.listener import STOP_TIMEOUT
    from microroute.targets import load_app

    try:
        configure(args.log_config, args.log_level)
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    if not args.access_log:
        logging.getLogger("microroute.access").setLevel(logging.WARNING)

    def load() -> WSGIApplication:
        app = load_app(args.target)
        if args.debug:
            _enable_debug(app)
        _refuse_public_debug(app, args.host, args.unsafe_debug)
        return app

    host = f"[{args.host}]" if ":" in args.host else args.host

    def ready(arbiter: Any) -> None:
        where = ", ".join(str(listener) for listener in arbiter.LISTENERS)
        print(f"microroute serving on {where} ({args.workers} workers)", flush=True)

    # Read by each worker (it inherits the environment).
    os.environ[DRAIN_DELAY] = repr(args.drain_delay)
    os.environ[TIMEOUT_IO] = repr(args.io_timeout)
    options = {
        "bind": f"{host}:{args.port}",
        "workers": args.workers,
        "worker_class": "microroute.gunicorn.Worker",
        "keepalive": math.ceil(args.keepalive),
        # As microroute run: STOP_TIMEOUT for in-flight requests, after the drain.
        "graceful_timeout": math.ceil(args.drain_delay + STOP_TIMEOUT),
        "loglevel": args.log_level or "info",
        "proc_name": "microroute",
        "when_ready": ready,
    }
    arbiter = os.getpid()
    try:
        Application(load, options).run()
    except SystemExit as exc:  # gunicorn's arbiter ends the process this way
        if os.getpid() != arbiter:
            raise  # a forked worker leaving: its own exit status, for the arbiter
        code = exc.code
        if code in (3, 4):  # a worker failed to boot, or the app to load: said above
            return 1
        return code if isinstance(code, int) else 0
    return 0


def _load_for_table(target: str | None) -> Any:
    """TARGET's ``App``, or an exit status after printing why there is none.

    ``microroute routes`` and ``microroute openapi`` both need a microroute
    App (a route table); a start-up error or another WSGI app is one
    ``error:`` line and exit status 1.
    """
    from microroute.app import App
    from microroute.errors import StartupError
    from microroute.targets import load_app

    try:
        app = load_app(target)
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    if not isinstance(app, App):
        print(
            f"error: {target or '.'} is a {type(app).__name__}, not a microroute App: "
            "it has no route table",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return app


def _routes(target: str | None) -> int:
    app = _load_for_table(target)
    if isinstance(app, int):
        return app
    rows = route_rows(app)
    assert rows is not None  # an App always has its table
    return _print(format_route_table(rows))


def _openapi(target: str | None) -> int:
    import json

    app = _load_for_table(target)
    if isinstance(app, int):
        return app
    return _print(json.dumps(app.openapi(), indent=2))


def _warm(target: str | None, paths_file: str | None) -> int:
    from microroute.stores import MemoryStore

    app = _load_for_table(target)
    if isinstance(app, int):
        return app
    if app.cache_store is None:
        print("error: the app's cache is off (App(cache=False) or MICROROUTE_CACHE=0)",
              file=sys.stderr, flush=True)  # fmt: skip
        return 1
    if isinstance(app.cache_store, MemoryStore):
        print("warning: the app keeps its cache in process memory, so warming it here"
              " does not reach the servers: give it a RedisStore",
              file=sys.stderr, flush=True)  # fmt: skip
    given: list[str] = []
    if paths_file is not None:
        try:
            text = sys.stdin.read() if paths_file == "-" else Path(paths_file).read_text("utf-8")
        except OSError as exc:
            print(f"error: --paths {paths_file}: {exc.strerror}", file=sys.stderr, flush=True)
            return 1
        lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
        given = [line for line in lines if line]
    print(f"warming build {app.build_id}", flush=True)
    failed = 0
    for path, outcome in app.warm(given):
        print(f"  {outcome:<12} {path}", flush=True)
        failed += outcome in ("failed", "no route", "no GET handler")
    return 1 if failed else 0


def _print(text: str) -> int:
    """Print *text* on stdout; exit status 0, or 141 if the reader left early.

    ``microroute routes | head`` closes the pipe after ten lines: like any
    command killed by SIGPIPE (status 128 + 13), stop quietly, no traceback.
    """
    try:
        # Line by line: one huge write to a pipe whose reader has gone can come
        # back short without an error, and what is left would vanish unnoticed.
        for line in text.splitlines(keepends=True):
            sys.stdout.write(line)
        sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:
        # The interpreter flushes stdout again at exit, which would fail and
        # print once more: point it at /dev/null (as the Python docs advise).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return _EXIT_BROKEN_PIPE
    return 0


def _banner(app: WSGIApplication) -> str:
    """The route table printed under ``microroute serving on URL``."""
    rows = route_rows(app)
    if rows is None:
        return f"  serving the WSGI application {type(app).__name__} (no route table)"
    return format_route_table(rows, indent="  ")


def _refuse_public_debug(app: WSGIApplication, host: str, forced: bool) -> None:
    """Debug mode puts tracebacks in responses: only for this machine's eyes."""
    import ipaddress

    from microroute.errors import StartupError

    if forced or not getattr(app, "debug", False):
        return
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise StartupError(
            f"refusing to serve with debug on {host}: tracebacks would reach anyone who can"
            " connect; use --host 127.0.0.1, or --unsafe-debug-on-network to force it"
        )


def _enable_debug(app: WSGIApplication) -> None:
    import logging

    from microroute.app import App

    logging.getLogger("microroute").setLevel(logging.DEBUG)
    if isinstance(app, App):
        app.debug = True
    else:
        print(
            f"warning: --debug only applies to a microroute.App, not a {type(app).__name__}; "
            "pass App(debug=True) yourself",
            file=sys.stderr,
            flush=True,
        )


# The route table ------------------------------------------------------------


@dataclass(frozen=True)
class RouteRow:
    """One line of the route table (``microroute routes`` and the banner)."""

    methods: str
    path: str
    source: str
    #: "static" or "dynamic", with why (from ``App.route_table()``); None
    #: prints no column.
    cache: str | None = None


def route_rows(app: WSGIApplication) -> list[RouteRow] | None:
    """The rows of *app*'s route table, sorted by path; None for a non-microroute app."""
    from microroute.app import App

    if not isinstance(app, App):
        return None
    caching = {row["path"]: row for row in app.route_table()}
    rows = []
    for route in app.routes:
        found = caching.get(route.pattern.path)
        cache = None
        if found is not None:
            cache = f"{found['mode']} ({found['reason']})" if found["reason"] else found["mode"]
        rows.append(
            RouteRow(" ".join(route.methods), route.pattern.path, _route_source(route), cache)
        )
    return rows


def _route_source(route: Route) -> str:
    """A discovered route's file; otherwise the handlers' ``file:line function()``."""
    if route.file is not None:
        return _relative(route.file)
    sources = dict.fromkeys(route.sources[method] for method in route.methods)
    return ", ".join(_relative(source) for source in sources)


def _relative(source: str) -> str:
    cwd = os.getcwd() + os.sep
    return source[len(cwd) :] if source.startswith(cwd) else source


def format_route_table(rows: list[RouteRow], indent: str = "") -> str:
    """Aligned columns: METHODS, PATH, SOURCE (and CACHE when known).

    >>> print(format_route_table([RouteRow("GET", "/hello/[name]", "hello.py:30 hello()")]))
    METHODS  PATH           SOURCE
    GET      /hello/[name]  hello.py:30 hello()
    """
    if not rows:
        return f"{indent}(no routes)"
    with_cache = any(row.cache is not None for row in rows)
    table = [["METHODS", "PATH", *(["CACHE"] if with_cache else []), "SOURCE"]]
    for row in rows:
        cache = [row.cache or "-"] if with_cache else []
        table.append([row.methods, row.path, *cache, row.source])
    # Every column but the last is padded; the source may be long.
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]) - 1)]
    return "\n".join(
        indent
        + "  ".join([*(cell.ljust(w) for cell, w in zip(line, widths, strict=False)), line[-1]])
        for line in table
    )


# --reload ------------------------------------------------------------------
#
# The supervising process never imports the app: it starts `python -m
# microroute <same argv>` as a child, polls file modification times, and on a
# change stops the child and starts a new one. A child that fails to start (a
# typo in a route file) is simply restarted after the next save. SIGTERM and
# Ctrl-C stop the child and then the supervisor, so no server is left behind.


def _watch_root(target: str | None) -> Path:
    path = Path(target or ".")
    if path.is_dir():
        return path.resolve()
    if path.is_file():
        return path.resolve().parent
    return Path.cwd()


def _snapshot(root: Path) -> dict[str, int]:
    mtimes: dict[str, int] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _RELOAD_SKIP]
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                try:
                    mtimes[path] = os.stat(path).st_mtime_ns
                except OSError:  # deleted between listing and stat
                    continue
    return mtimes


def _supervise(argv: list[str], root: Path) -> int:
    import signal
    import subprocess

    import gevent
    from gevent.event import Event

    stop = Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, stop.set)
    env = {**os.environ, _RELOAD_CHILD_ENV: "1"}
    command = [sys.executable, "-m", "microroute", *argv]
    print(f"microroute: reloading on changes to .py files under {root}", file=sys.stderr)
    while not stop.is_set():
        before = _snapshot(root)
        child = subprocess.Popen(command, env=env)
        reported = False
        while not stop.wait(_RELOAD_INTERVAL):
            if _snapshot(root) != before:
                print("microroute: change detected, restarting", file=sys.stderr, flush=True)
                break
            if child.poll() is not None and not reported:
                print("microroute: waiting for a file change", file=sys.stderr, flush=True)
                reported = True
        _stop_child(child)
    return 0


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    import subprocess

    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
