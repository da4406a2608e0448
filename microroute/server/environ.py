"""The WSGI environ's parts that do not come from the request line: what every request shares.

:func:`base_environ` is made once per connection (the server's and client's
addresses, the ``wsgi.*`` keys); each request's environ starts as a copy of
it. :func:`environ_key` turns a header name into its environ key, and
:data:`ENVIRON_KEYS` remembers the answer, so a request's usual headers cost
one dict lookup each.

>>> environ_key(b"X-Request-Id")
'HTTP_X_REQUEST_ID'
"""

from __future__ import annotations

import socket
import sys
from typing import Any

from werkzeug.wsgi import FileWrapper

__all__ = ["ENVIRON_KEYS", "base_environ", "environ_key"]

#: Header name -> environ key (``b"X-Id"`` -> ``"HTTP_X_ID"``), learnt as names come.
ENVIRON_KEYS: dict[bytes, str] = {}
#: Names learnt at most: a client inventing names cannot grow the table without bound.
_ENVIRON_KEYS_MAX = 1024


def environ_key(name: bytes) -> str:
    """The environ key of header *name*; ``""`` for a name with ``_`` (dropped)."""
    if b"_" in name:
        return ""
    key = name.decode("latin-1").upper().replace("-", "_")
    if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        key = "HTTP_" + key
    if len(ENVIRON_KEYS) < _ENVIRON_KEYS_MAX:
        ENVIRON_KEYS[name] = key
    return key


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
