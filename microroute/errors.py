"""Errors, control flow, and how both render as JSON.

Two families live here:

* **Control flow** — :func:`redirect`, :func:`permanent_redirect`,
  :func:`not_found` and :func:`abort` raise a :class:`ControlFlow`, which derives
  from :class:`BaseException`. A handler's ``except Exception:`` cannot swallow
  it (Next.js users trip on exactly that with ``redirect()`` inside ``try``);
  the app catches it and renders the response.
* **Errors** — :class:`HTTPError` and :class:`ValidationError` are ordinary
  exceptions a handler (or ``request.json``) raises to answer with a JSON
  ``{"error": message}`` and a 4xx/5xx status.

:class:`StartupError` is raised while an :class:`~microroute.App` is built:
route conflicts, bad segment names, import errors. Its message names the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any, NoReturn
from urllib.parse import unquote

from .wire import check_header

__all__ = [
    "ControlFlow",
    "HTTPError",
    "RequestValidationError",
    "StartupError",
    "ValidationError",
    "abort",
    "not_found",
    "permanent_redirect",
    "redirect",
    "safe_location",
    "status_phrase",
]

HeaderItems = Mapping[str, str] | Iterable[tuple[str, str]]


def status_phrase(status: int) -> str:
    """Return the reason phrase for *status* (``"Not Found"`` for 404)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown Status"


def _header_list(headers: HeaderItems | None, where: str) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs = [(str(name), str(value)) for name, value in items]
    for name, value in pairs:
        # Refused here, where the caller is in the traceback, not at the server:
        # a CR/LF would inject a header of its own ("1\r\nSet-Cookie: ...").
        check_header(name, value, where)
    return pairs


class StartupError(Exception):
    """The app cannot start: a route conflict, a bad segment name, an import error.

    The message always names the file (or the function) the user must fix.
    """


class HTTPError(Exception):
    """An error that renders as JSON ``{"error": message}`` with *status*.

    >>> raise HTTPError(409, "Username taken")            # doctest: +SKIP
    >>> raise HTTPError(429, "Slow down", {"Retry-After": "30"})  # doctest: +SKIP
    """

    def __init__(self, status: int, message: str | None = None, headers: HeaderItems | None = None):
        if not 400 <= status <= 599:
            raise ValueError(f"HTTPError status must be 400-599, got {status!r}")
        self.status = status
        self.message = message if message is not None else status_phrase(status)
        self.headers = _header_list(headers, f"HTTPError({status})")
        super().__init__(status, self.message)

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


class ValidationError(HTTPError):
    """Bad input from the client: a 400 with the message shown to the caller."""

    def __init__(self, message: str, headers: HeaderItems | None = None):
        super().__init__(400, message, headers)


class RequestValidationError(HTTPError):
    """Typed input that failed validation: a 422 listing every problem.

    Renders as ``{"error": "Invalid request", "detail": [{"loc": [...], "msg": ...,
    "type": ...}]}`` (pydantic's and FastAPI's shape), where ``loc`` starts with
    ``"body"``, ``"query"`` or ``"path"`` and goes on with the field names and list
    indexes that lead to the bad value, and ``type`` is pydantic's name for the
    problem (``missing``, ``int_parsing``...).
    """

    def __init__(self, detail: list[dict[str, Any]], headers: HeaderItems | None = None):
        super().__init__(422, "Invalid request", headers)
        self.detail = detail


class ControlFlow(BaseException):
    """Raised by :func:`redirect`, :func:`not_found` and :func:`abort`.

    It derives from ``BaseException`` on purpose, so that a handler's
    ``except Exception:`` does not swallow a redirect. Catch it by name if you
    really mean to.
    """

    def __init__(
        self,
        status: int,
        message: str | None = None,
        headers: HeaderItems | None = None,
        location: str | None = None,
    ):
        self.status = status
        self.message = message if message is not None else status_phrase(status)
        self.headers = _header_list(headers, f"abort({status})")
        self.location = location
        super().__init__(status, self.message)

    def __str__(self) -> str:
        if self.location is not None:
            return f"{self.status}: redirect to {self.location}"
        return f"{self.status}: {self.message}"


_REDIRECT_STATUSES = (301, 302, 303, 307, 308)


# RFC 3986 §3.1: a scheme is a letter, then letters, digits, "+", "-" or ".".
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def safe_location(url: str, allow_external: bool = False) -> str:
    """Return *url* if it is a safe redirect target, else raise a 400 :class:`HTTPError`.

    Only a relative reference stays on this site: a path (``/login``,
    ``page``, ``?next=1``) with no scheme and no host. Everything a browser
    would send elsewhere is refused unless *allow_external* is true: a scheme
    in any case (``https://evil.example``, ``HTTPS:evil.example``,
    ``javascript:...``), a scheme-relative ``//evil.example``, and the
    spellings browsers read the same way: backslashes (``/\\evil.example``),
    leading whitespace, percent-encoded slashes (``/%2F%2Fevil.example``). An
    absolute URL naming this site's own host is refused too: the Host header
    is the client's to choose, so write the path instead. Control characters
    are refused always, *allow_external* or not.
    """
    if not isinstance(url, str):
        raise TypeError(f"a redirect target must be a str, got {type(url).__name__}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise HTTPError(400, "Unsafe redirect target: it contains control characters")
    if allow_external:
        return url
    decoded = unquote(url)
    for candidate in (url, decoded, unquote(decoded)):
        # The URL parser strips leading spaces and reads a backslash as "/".
        stripped = candidate.lstrip().replace("\\", "/")
        if stripped.startswith("//") or _SCHEME.match(stripped):
            raise HTTPError(
                400,
                "Unsafe redirect target: it leaves the site; redirect to a path, or pass"
                " allow_external=True to redirect to another site",
            )
    return url


def redirect(url: str, status: int = 307, *, allow_external: bool = False) -> NoReturn:
    """Stop the handler and redirect to *url* (307 Temporary Redirect).

    Relative URLs are resolved against the request. Cookies set before the
    call still go out on the redirect. A target on another site is a 400
    unless *allow_external* is true, so ``redirect(request.args["next"])``
    cannot become an open redirect; see :func:`safe_location`.

    >>> redirect("/login")                                            # doctest: +SKIP
    >>> redirect("https://accounts.example/oauth", allow_external=True)  # doctest: +SKIP
    """
    if status not in _REDIRECT_STATUSES:
        raise ValueError(f"redirect status must be 301, 302, 303, 307 or 308, got {status!r}")
    raise ControlFlow(status, location=safe_location(url, allow_external))


def permanent_redirect(url: str, *, allow_external: bool = False) -> NoReturn:
    """Stop the handler and redirect to *url* for good (308); see :func:`redirect`."""
    raise ControlFlow(308, location=safe_location(url, allow_external))


def not_found(message: str | None = None) -> NoReturn:
    """Stop the handler with a JSON 404."""
    raise ControlFlow(404, message)


def abort(status: int, message: str | None = None, headers: HeaderItems | None = None) -> NoReturn:
    """Stop the handler with a JSON ``{"error": message}`` and *status*.

    >>> abort(403, "Admins only")  # doctest: +SKIP
    """
    if not 400 <= status <= 599:
        raise ValueError(f"abort() takes a 4xx or 5xx status, got {status!r}")
    raise ControlFlow(status, message, headers)
