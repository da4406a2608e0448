"""The request scope: what holds for a whole request, around middleware and handler.

Its limits are checked before anything reads the body (a Content-Length over
``max_body_size`` is a 413 before a byte is read), and when the reply is
decided, the ``Set-Cookie`` headers that ``cookies()`` and ``session()``
produced are added to it, whoever made it.
"""

from __future__ import annotations

from .context import RequestState
from .errorpages import ErrorPages
from .errors import HTTPError
from .responses import Reply, close_body

__all__ = ["check_length", "with_cookies"]


def check_length(length: str, max_body_size: int) -> HTTPError | None:
    """413 (or 400) from Content-Length alone, before a byte of the body is read.

    The error still goes through middleware and error handlers (CORS
    headers included, or a browser reports an opaque network error), but
    no handler runs.
    """
    digits = length.strip()
    # Digits only: int() would also take "+5" or "0_5", which the body
    # reader does not, and the two would disagree on where the body ends.
    size = int(digits) if digits.isascii() and digits.isdigit() else -1
    if size < 0:
        return HTTPError(400, f"Invalid Content-Length header: {length[:40]!r}")
    if size > max_body_size:
        return HTTPError(413, f"Request body too large: the limit is {max_body_size} bytes")
    return None


def with_cookies(state: RequestState, reply: Reply, errors: ErrorPages) -> Reply:
    """Add the ``Set-Cookie`` headers of cookies()/session() to any reply."""
    status, headers, body = reply
    try:
        extra = state.set_cookie_headers()
    except Exception as exc:  # e.g. a session with no secret key to sign it
        close_body(body)
        return errors.render(exc, state.environ, "saving cookies")
    return status, headers + extra if extra else headers, body
