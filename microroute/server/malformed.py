"""The error a request body's broken framing raises where the app reads it.

A module of its own because it derives from ``OSError``: the modules of the
request path may be compiled with mypyc (see ``setup.py``), which compiles no
class derived from a built-in type other than ``Exception``.
"""

from __future__ import annotations

__all__ = ["MalformedBody"]


class MalformedBody(OSError):
    """The request body's framing is broken (a bad chunk size): the client's error.

    Raised from ``wsgi.input`` reads; microroute's :class:`~microroute.Request`
    answers it with a 400, and the connection is closed after the response.
    """
