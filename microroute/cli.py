"""The ``microroute`` command (also ``python -m microroute``).

``microroute run [TARGET] [--host H] [--port P] [--reload] [--debug]`` serves
an app with gevent's WSGI server (see :mod:`microroute.server`); TARGET is
resolved by :mod:`microroute.loading`.

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
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

    from _typeshed.wsgi import WSGIApplication

__all__ = ["main"]

#: Set in the server process that ``--reload`` starts, so it serves instead of
#: supervising another child.
_RELOAD_CHILD_ENV = "MICROROUTE_RELOAD_CHILD"

#: How often ``--reload`` looks for changed ``.py`` files, in seconds.
_RELOAD_INTERVAL = 0.5

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
    parser.print_help(sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="microroute",
        description="Next.js-style route handlers for WSGI, served by gevent.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="serve an app with gevent's WSGI server",
        description="Serve TARGET with gevent's WSGI server until SIGTERM or Ctrl-C.",
    )
    run.add_argument(
        "target",
        nargs="?",
        metavar="TARGET",
        help="a .py file (serves its `app`), module:attr, or a folder holding app/ "
        "(default: the current folder)",
    )
    run.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    run.add_argument("--port", type=int, default=8000, help="port to bind (default: %(default)s)")
    run.add_argument(
        "--reload", action="store_true", help="restart the server when a .py file changes"
    )
    run.add_argument(
        "--debug",
        action="store_true",
        help="tracebacks in 500 responses, and an access log on stderr",
    )
    return parser


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    # First, before werkzeug, the user's app or anything that opens a socket.
    from gevent import monkey

    monkey.patch_all()

    if args.reload and os.environ.get(_RELOAD_CHILD_ENV) != "1":
        return _supervise(argv, _watch_root(args.target))

    from microroute.errors import StartupError
    from microroute.loading import load_app
    from microroute.server import serve

    try:
        app = load_app(args.target)
        if args.debug:
            _enable_debug(app)
        serve(app, args.host, args.port, access_log=args.debug)
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def _enable_debug(app: WSGIApplication) -> None:
    from microroute.app import App

    if isinstance(app, App):
        app.debug = True
    else:
        print(
            f"warning: --debug only applies to a microroute.App, not a {type(app).__name__}; "
            "pass App(debug=True) yourself",
            file=sys.stderr,
            flush=True,
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
