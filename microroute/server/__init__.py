"""The server behind ``microroute run``: gevent greenlets, llhttp parsing, one write a response.

gevent's ``pywsgi`` parses and writes in pure Python: ~55 µs a request, the
whole cost of serving a small JSON answer. This server keeps gevent's model —
a greenlet per connection, so plain synchronous handlers get concurrency once
the process is monkey-patched — and does the rest the way uvicorn's httptools
protocol does: requests are parsed by ``httptools`` (Node's llhttp, strict:
no obs-fold, no bare LF, conflicting framing refused), the WSGI environ is
built straight from its callbacks, and a response's status line, headers and
first body bytes leave in one ``sendall``.

One :class:`Connection` per socket::

    recv -> llhttp (on_url, on_header, on_headers_complete, on_body,
    on_message_complete) -> ready requests, in order -> app(environ,
    start_response) -> framing (Content-Length, chunked, or none for
    HEAD/204/304) -> sendall

Keep-alive and pipelining live in :meth:`Connection.serve` (responses in
request order); a request's body is pulled from the socket only when the app
reads ``wsgi.input`` (``Expect: 100-continue`` answered then). The limits —
request line 8 KiB (414), header section 64 KiB (431), 100 headers (400) —
are checked while parsing. ``gunicorn -k microroute.gunicorn.Worker`` runs
the same :class:`Connection` under gunicorn's process management.

One idea a module, each importing only those below it:

==================  ==================================================================
``listener``        :func:`serve`, :class:`Server`, :func:`make_listener`,
                    :func:`listening_url`: the socket, signals, the graceful stop
``connection``      :class:`Connection`: one socket's loop (keep-alive, pipelining,
                    drain), reads and writes, running the app, heartbeats
``response``        the response writer: ``start_response``, framing, the head
``parser``          llhttp's callbacks: bytes in, parsed requests or refusals out
``request``         a parsed request and its body reader (``wsgi.input``)
``malformed``       :class:`MalformedBody`, what a body with broken framing raises
``reaper``          :class:`Connections`: timeouts, heartbeats, the stop's first step
``accesslog``       the access-log line
``dates``           the ``Date`` header's text, made once a second
``environ``         :func:`base_environ`: what every request on a connection shares
``limits``          every size limit and timeout
==================  ==================================================================

>>> from microroute.server import serve          # doctest: +SKIP
>>> serve(app, host="0.0.0.0", port=8000)        # doctest: +SKIP
"""

from __future__ import annotations

from .connection import Connection
from .environ import base_environ as base_environ
from .limits import IO_TIMEOUT as IO_TIMEOUT
from .limits import KEEPALIVE_TIMEOUT as KEEPALIVE_TIMEOUT
from .limits import MAX_DRAIN as MAX_DRAIN
from .limits import MAX_HEADER_BYTES, MAX_HEADERS, MAX_REQUEST_LINE
from .limits import READ_SIZE as READ_SIZE
from .listener import BACKLOG, STOP_TIMEOUT, Server, listening_url, make_listener, serve
from .malformed import MalformedBody as MalformedBody
from .reaper import Connections

# What ``import *`` gave before the split. The ``X as X`` names above stay importable
# from here as they were (the gunicorn worker imports base_environ).
__all__ = [
    "BACKLOG",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "MAX_REQUEST_LINE",
    "STOP_TIMEOUT",
    "Connection",
    "Connections",
    "Server",
    "listening_url",
    "make_listener",
    "serve",
]
