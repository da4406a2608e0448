"""The base environ: the WSGI environ keys every request on one connection shares.

:func:`base_environ` is made once per connection — the server's and the
client's addresses, the ``wsgi.*`` keys — and each request's environ starts as
a copy of it, to which the parser adds what the request's head says. The
gunicorn worker calls it too, with gunicorn's ``url_scheme``, and then sets
``wsgi.multiprocess``.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from werkzeug.wsgi import FileWrapper

__all__ = ["base_environ"]


def base_environ(sock: socket.socket, address: Any, url_scheme: str = "http") -> dict[str, Any]:
    """The environ keys every request on one connection shares."""
    try:
        server_name, server_port = sock.getsockname()[:2]
    except (OSError, ValueError):
        server_name, server_port = "", 0
    remote = address if isinstance(address, tuple) else ("", 0)
    return {
        "SCRIPT_NAME": "",
        "SERVER_NAME": str(server_name),
        "SERVER_PORT": str(server_port),
        "REMOTE_ADDR": str(remote[0]),
        "REMOTE_PORT": str(remote[1]) if len(remote) > 1 else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url_scheme,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
    }
