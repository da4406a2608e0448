"""``microroute dev [TARGET]``: the development server, as ``next dev`` and ``fastapi dev`` are.

::

    microroute dev                  # ./app/, on http://127.0.0.1:8000
    microroute dev hello.py --port 3000

Two processes. The **supervisor** never imports the app: it listens on the
port itself, starts a server process that inherits the listening socket,
watches the project's files (``.py`` and ``microroute.toml``; with
``watchfiles``, inotify-based, when it is installed, else by polling
modification times every half second) and on a save stops that server and
starts a new one. The port never closes: while a new server starts, the
kernel queues the connections that arrive, and they are answered by it.

The **server** (:func:`serve_child`) loads the app with debug on and every
static GET built on every request (:meth:`~microroute.App.develop`:
``X-Microroute-Cache: DEV``), prints the route table and serves. If the app
cannot start (a syntax error, an import error, a route conflict), it serves
anyway: every request gets the error, an HTML page for a browser and JSON
for anything else (:mod:`microroute.debugpage`), until the next save. On a
reload, requests in flight get :data:`STOP_SECONDS` and open streams end at
once (an ``EventSource`` reconnects to the new server by itself).

``MICROROUTE_DEV_POLL=1`` uses the poller even when ``watchfiles`` is
installed (file systems that send no change events: some network mounts,
some containers' bind mounts).

This module imports only the standard library at the top: the server process
monkey-patches with gevent before anything else is imported.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from .errors import StartupError

__all__ = ["CHILD_ENV", "POLL_ENV", "STOP_SECONDS", "develop", "serve_child"]

#: Set in the server process: the file descriptor of the inherited listening socket.
CHILD_ENV = "MICROROUTE_DEV_FD"
#: ``1``: watch by polling even when watchfiles is installed.
POLL_ENV = "MICROROUTE_DEV_POLL"
#: What a request in flight gets when a save restarts the server.
STOP_SECONDS = 0.25
#: How often the poller looks at modification times.
POLL_SECONDS = 0.5
#: Folders never watched: caches, VCS data, virtualenvs, dependencies.
SKIPPED = frozenset({"__pycache__", "node_modules", "venv", "site-packages", "build", "dist"})
#: Files whose change reloads: Python sources and the app's options.
WATCHED_SUFFIXES = (".py",)
WATCHED_NAMES = frozenset({"microroute.toml"})


def develop(
    target: str | None,
    host: str,
    port: int,
    argv: list[str],
    table: Callable[[WSGIApplication], str | None] = lambda app: None,
) -> int:
    """Run ``microroute dev``: the supervisor, or, in the process it starts, the server.

    *argv* is the command line from ``dev`` on, for the server process; *table*
    gives the route table the banner prints (None for another WSGI app).
    """
    fd = os.environ.get(CHILD_ENV)
    if fd is not None:
        return serve_child(target, int(fd), table)
    return _supervise(host, port, argv, _watch_root(target))


# -- the supervisor ------------------------------------------------------------------------


def _supervise(host: str, port: int, argv: list[str], root: Path) -> int:
    try:
        listener = _listen(host, port)
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    env = {**os.environ, CHILD_ENV: str(listener.fileno())}
    command = [sys.executable, "-m", "microroute", *argv]  # argv starts with "dev"
    how = _watcher_name()
    _say(f"watching {root} for changes ({how})")
    child = _start(command, env, listener)
    try:
        for changed in _changes(root, stop):
            _say(f"{_shown(changed, root)} changed; reloading")
            _stop(child)
            child = _start(command, env, listener)
    finally:
        _stop(child)
        listener.close()
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket every server process of the session inherits."""
    family, _, _, _, address = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _start(
    command: list[str], env: dict[str, str], listener: socket.socket
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, pass_fds=(listener.fileno(),))


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _say(message: str) -> None:
    print(f"microroute dev: {message}", file=sys.stderr, flush=True)


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _watch_root(target: str | None) -> Path:
    """The folder whose files reload the server: TARGET's folder, or the current one."""
    path = Path(target or ".")
    if path.is_dir():
        return path.resolve()
    if path.is_file():
        return path.resolve().parent
    return Path.cwd()


def _watched(path: Path) -> bool:
    return path.suffix in WATCHED_SUFFIXES or path.name in WATCHED_NAMES


def _watcher_name() -> str:
    if os.environ.get(POLL_ENV) == "1":
        return f"polling every {POLL_SECONDS:g}s ({POLL_ENV}=1)"
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        return f"polling every {POLL_SECONDS:g}s; pip install watchfiles to be told at once"
    return "watchfiles"


def _changes(root: Path, stop: threading.Event) -> Iterator[Path]:
    """Each changed file, one per save, until *stop* is set."""
    if os.environ.get(POLL_ENV) != "1":
        try:
            import watchfiles
        except ImportError:
            pass
        else:

            def keep(change: Any, name: str) -> bool:
                path = Path(name)
                try:
                    parts = path.relative_to(root).parts
                except ValueError:
                    return False
                if any(part in SKIPPED or part.startswith(".") for part in parts):
                    return False
                # A new folder too: a file written into it at once may beat its watch.
                return _watched(path) or (change == watchfiles.Change.added and path.is_dir())

            for batch in watchfiles.watch(
                root, watch_filter=keep, stop_event=stop, debounce=100, raise_interrupt=False
            ):
                yield Path(sorted(name for _, name in batch)[0])
            return
    before = _snapshot(root)
    while not stop.wait(POLL_SECONDS):
        now = _snapshot(root)
        if now != before:
            changed = sorted(set(now.items()) ^ set(before.items()))
            before = now
            yield Path(changed[0][0])


def _snapshot(root: Path) -> dict[str, int]:
    mtimes: dict[str, int] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIPPED]
        for name in files:
            if _watched(Path(name)):
                path = os.path.join(folder, name)
                try:
                    mtimes[path] = os.stat(path).st_mtime_ns
                except OSError:  # deleted between the listing and the stat
                    continue
    return mtimes


# -- the server process ----------------------------------------------------------------------


def serve_child(target: str | None, fd: int, table: Callable[[WSGIApplication], str | None]) -> int:
    """Load the app for development and serve it on the inherited socket until told to stop."""
    from gevent import monkey

    monkey.patch_all()

    import gevent
    from gevent.event import Event

    from .app import App
    from .errors import StartupError
    from .logs import configure
    from .server import Server, listening_url
    from .targets import load_app

    configure()
    app: WSGIApplication
    try:
        app = load_app(target)
    except StartupError as exc:
        app = StartupFailed(exc)
        print(f"error: {exc}", file=sys.stderr, flush=True)
    if isinstance(app, App):
        app.develop()
    listener = socket.socket(fileno=fd)  # gevent's socket, once patched
    listener.setblocking(False)
    server = Server(listener, app, access_log=True)
    stopping = Event()

    def shutdown() -> None:
        # Runs in the hub, which must not block: the main greenlet does the stop.
        server.connections.stop()
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, shutdown)
    gevent.spawn(_orphaned, os.getppid(), shutdown)
    server.start()
    print(f"microroute dev serving on {listening_url(listener)}", flush=True)
    routes = table(app)
    if isinstance(app, StartupFailed):
        print("  the app could not start: every request gets the error until the next save")
    elif routes is None:
        print(f"  serving the WSGI application {type(app).__name__} (not a microroute App:")
        print("  no debug page, no route table, no builds on every request)")
    else:
        print(routes)
        print(
            "  development: debug on, static GETs built on every request"
            " (X-Microroute-Cache: DEV), reload on save"
        )
    print("Press Ctrl-C to stop.", flush=True)
    stopping.wait()
    server.stop(0.0, STOP_SECONDS)
    from .after_response import drain

    drain(1.0)
    return 0


def _orphaned(parent: int, shutdown: Callable[[], None]) -> None:
    """Stop when the supervisor is gone (killed rather than stopped): no server left behind."""
    import gevent

    while os.getppid() == parent:
        gevent.sleep(1.0)
    shutdown()


class StartupFailed:
    """The app ``microroute dev`` serves when the real one cannot start: the error, to all.

    A browser gets the debug page (the one line naming the file, then the
    traceback of what failed: a syntax error's line, an import's), anything
    else ``{"error": ..., "traceback": ...}``; the status is 500.
    """

    def __init__(self, error: StartupError) -> None:
        self.error = error

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        from .debugpage import debug_reply

        # The error's cause (the user's SyntaxError, ImportError...) has the
        # traceback worth reading; a conflict found by microroute has none.
        status, headers, body = debug_reply(
            self.error.__cause__,
            environ,
            500,
            heading="The app could not start",
            summary=str(self.error),
        )
        start_response(status, headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else list(body)
