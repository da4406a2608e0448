"""What may go on the wire: response header names and values, and bodiless replies.

Every WSGI server writes header strings as latin-1 and gunicorn refuses
anything outside RFC 9110's grammar, so a header that passed an in-process
test would be a 500 (or, on a lax server, an injected header) in production.
:func:`check_header` applies the one rule everywhere a header is made:
``abort()``/``HTTPError`` headers, a handler's ``(body, status, headers)``, a
returned :class:`~microroute.Response`, and finally the whole reply in
``App.__call__``. Hop-by-hop headers (``Connection``, ``Transfer-Encoding``,
...) are the server's (PEP 3333) and refused too. Its errors name the header,
never echo the whole value.

:func:`without_body` is the other wire rule: a HEAD, 1xx, 204 or 304 response
has no body (RFC 9110 §6.4.1), whatever the handler returned.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = [
    "HOP_BY_HOP",
    "TOKEN",
    "VALUE",
    "check_header",
    "header_problem",
    "headers_problem",
    "without_body",
]

# RFC 9110 §5.1 token and §5.5 field-value (SP / HTAB / VCHAR / obs-text), the
# same expressions gunicorn enforces on responses.
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-zA-Z]+")
VALUE = re.compile(r"[ \t\x21-\x7e\x80-\xff]*")


# PEP 3333: hop-by-hop headers are the server's. gunicorn drops them and pywsgi
# sends them, so a "Connection: close" would behave differently on each.
HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
     "trailer", "trailers", "transfer-encoding", "upgrade")
)  # fmt: skip


def header_problem(name: object, value: object) -> str | None:
    """Why ``name: value`` cannot be sent, or ``None`` when it can."""
    if not isinstance(name, str) or not TOKEN.fullmatch(name):
        return f"header name {name!r} is not an HTTP token"
    if name.lower() in HOP_BY_HOP:
        return f"header {name!r} is hop-by-hop: the server sets it (PEP 3333)"
    if not isinstance(value, str):
        return f"header {name!r} has a {type(value).__name__} value; header values are str"
    if not VALUE.fullmatch(value):
        if any(c in value for c in "\r\n\0"):
            return f"header {name!r} has a line break or NUL in its value"
        if any(ord(c) > 0xFF for c in value):
            return (
                f"header {name!r} has characters beyond latin-1 in its value; encode it"
                " (werkzeug.urls.iri_to_uri for a URL, RFC 8187 for a filename)"
            )
        return f"header {name!r} has a control character in its value"
    return None


_BAD_VALUE_CHAR = re.compile(r"[^ \t\x21-\x7e\x80-\xff]")
#: Header names already found sendable: a reply's names are nearly always
#: among a few dozen, so each costs one set lookup. Bounded, in case they vary.
_GOOD_NAMES: set[str] = set()
_GOOD_NAMES_MAX = 1024


def headers_problem(headers: list[tuple[str, str]]) -> str | None:
    """Why one of *headers* cannot be sent, or ``None``: every reply goes through this.

    Known names cost a set lookup each and all values one regular expression;
    the per-header walk that names the culprit runs only when one objects.
    """
    try:
        for name, _ in headers:
            if name not in _GOOD_NAMES:
                return _first_problem(headers)
        if not _BAD_VALUE_CHAR.search("".join([value for _, value in headers])):
            return None
    except TypeError:  # a name or value that is not a str
        pass
    return _first_problem(headers)


def _first_problem(headers: list[tuple[str, str]]) -> str | None:
    for name, value in headers:
        problem = header_problem(name, value)
        if problem is not None:
            return problem
        if len(_GOOD_NAMES) < _GOOD_NAMES_MAX:
            _GOOD_NAMES.add(name)
    return None


def check_header(name: object, value: object, where: str) -> None:
    """Raise ``ValueError`` naming *where* and the header if it cannot be sent."""
    problem = header_problem(name, value)
    if problem is not None:
        raise ValueError(f"{where}: {problem}")


def _nothing() -> Iterator[bytes]:
    return
    yield  # pragma: no cover - makes this a generator


def without_body(headers: list[tuple[str, str]], body: Iterable[bytes], status: int) -> Any:
    """The body to send for a response that must not have one; closes *body*.

    A body with a known length stays a list, so the server keeps GET's
    ``Content-Length`` (or, for a 204, none at all). A streamed one becomes an
    empty iterator *without* ``__len__``: the server then frames the HEAD as it
    frames the GET (chunked), instead of announcing ``Content-Length: 0``.
    """
    # (Not responses.close_body: wire.py sits below errors.py, which responses imports.)
    close = getattr(body, "close", None)
    if close is not None:
        close()
    if status == 204 or any(name.lower() == "content-length" for name, _ in headers):
        return []
    return _nothing()
