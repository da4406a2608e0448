"""The request object handlers receive when they ask for ``request``.

It is werkzeug's :class:`~werkzeug.wrappers.Request` with the Fetch API's
conveniences on top: ``request.json`` parses the body whatever its
Content-Type, ``request.text`` decodes it, ``request.params`` holds the path
parameters. The app builds one only for handlers (and middleware) that ask for
it, so a handler that takes no ``request`` costs no parsing at all.
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
from collections.abc import Callable
from typing import IO, Any
from urllib.parse import unquote_to_bytes

from werkzeug.datastructures import EnvironHeaders, MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.utils import cached_property
from werkzeug.wrappers import Request as _WerkzeugRequest
from werkzeug.wsgi import get_input_stream

from .errors import HTTPError
from .requestids import request_id

__all__ = ["Request"]

_UNSET: Any = object()

#: What reads a body of each non-JSON type, for the 400 of a ``request.json`` that fails.
_READERS = {
    "application/x-www-form-urlencoded": "request.form",
    "multipart/form-data": "request.form and request.files",
    "text/plain": "request.text",
}


def _wsgi_text(value: str) -> str:
    """A WSGI string (bytes as latin-1) as the UTF-8 text it spells."""
    return value.encode("latin-1").decode("utf-8", "replace")


def _server(environ: dict[str, Any]) -> tuple[str, int | None] | None:
    name = environ.get("SERVER_NAME")
    if name is None:
        return None
    try:
        return name, int(environ.get("SERVER_PORT"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return name, None  # a unix socket


# What werkzeug's Request.__init__ sets, computed the same way, on first use.
_LAZY_ATTRIBUTES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "method": lambda environ: environ.get("REQUEST_METHOD", "GET").upper(),
    "scheme": lambda environ: environ.get("wsgi.url_scheme", "http"),
    "server": _server,
    "root_path": lambda environ: _wsgi_text(environ.get("SCRIPT_NAME") or "").rstrip("/"),
    "path": lambda environ: "/" + _wsgi_text(environ.get("PATH_INFO") or "").lstrip("/"),
    "query_string": lambda environ: environ.get("QUERY_STRING", "").encode("latin-1"),
    "headers": EnvironHeaders,
    "remote_addr": lambda environ: environ.get("REMOTE_ADDR"),
}
DEFAULT_MAX_JSON_DEPTH = 64


class Request(_WerkzeugRequest):
    """An incoming request: werkzeug's API plus ``json``, ``text`` and ``params``.

    >>> @route.post("/echo")            # doctest: +SKIP
    ... def echo(request):
    ...     return request.json, 201
    """

    #: The path parameters of the matched route, e.g. ``{"id": "42"}``.
    params: dict[str, Any]

    #: JSON nested deeper than this is refused with a 400 (``App(max_json_depth=...)``).
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH

    def __init__(
        self,
        environ: dict[str, Any],
        params: dict[str, Any] | None = None,
        max_body_size: int | None = None,
    ) -> None:
        # werkzeug's __init__ computes eight attributes (method, path, headers,
        # ...) from the environ up front; most handlers read one or two, so
        # here each is computed on first use by __getattr__ below, then kept.
        self.environ = environ
        self.shallow = False
        environ["werkzeug.request"] = self
        self.params = params if params is not None else {}
        # Enforced by werkzeug while reading, so a chunked body with no
        # Content-Length cannot grow past the limit either.
        self.max_content_length = max_body_size
        self._json_value: Any = _UNSET

    @property
    def id(self) -> str | None:
        """This request's id (``X-Request-ID``; see :mod:`microroute.requestids`), or None."""
        return request_id()

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not set yet: the lazy werkzeug basics.
        compute = _LAZY_ATTRIBUTES.get(name)
        if compute is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value = compute(self.environ)
        setattr(self, name, value)
        return value

    @cached_property
    def stream(self) -> IO[bytes]:
        """The body stream, held to ``max_body_size`` even without a Content-Length.

        A body with a Content-Length (at most ``max_body_size``, which the app
        checked before anything ran) is read in one call: cheaper than
        werkzeug's stream wrappers, and safe since it is bounded. werkzeug stops
        a chunked body at the limit without saying so, which would hand the
        handler a truncated body; here going past it is a 413.
        """
        body = self._read_sized_body()
        if body is not None:
            return io.BytesIO(body)
        environ = self.environ
        limit = self.max_content_length
        chunked = not environ.get("CONTENT_LENGTH") and environ.get("wsgi.input_terminated")
        if chunked:
            return io.BufferedReader(_CappedStream(environ["wsgi.input"], limit))
        return get_input_stream(environ, max_content_length=limit)

    def _read_sized_body(self) -> bytes | None:
        """The fast path for a body with a Content-Length: one read, no stream wrappers.

        The app has already refused a Content-Length over ``max_body_size``.
        Returns ``None`` when there is no usable Content-Length (chunked bodies
        go through :attr:`stream`, which enforces the limit while reading).
        """
        length = self.environ.get("CONTENT_LENGTH")
        if not length or not length.isdigit():
            return None
        size = int(length)
        limit = self.max_content_length
        if limit is not None and size > limit:
            return None  # let werkzeug raise its 413
        read = self.environ["wsgi.input"].read
        body = _read_input(read, size) if size else b""
        while len(body) < size:  # a server may return short reads
            more = _read_input(read, size - len(body))
            if not more:
                raise HTTPError(400, "Request body shorter than its Content-Length")
            body += more
        return body

    @property
    def disconnected(self) -> bool:
        """Whether the client has closed the connection (the Fetch API's ``signal.aborted``).

        A long handler can check it between steps and stop early. It looks at
        the socket when read, so it is true as soon as the client is gone, on
        ``microroute run`` and both gunicorn workers; elsewhere (another server,
        a static build) it stays false. See :func:`microroute.on_disconnect`.
        """
        from .disconnect import DISCONNECT

        watch = self.environ.get(DISCONNECT)
        return watch is not None and watch.check()

    @cached_property
    def args(self) -> MultiDict[str, str]:
        """The query parameters; a query that is not UTF-8 is a 400, not a 500."""
        try:
            return super().args
        except UnicodeDecodeError:
            raise HTTPError(400, "Invalid query string: not valid UTF-8") from None

    def make_form_data_parser(self) -> FormDataParser:
        parser = super().make_form_data_parser()
        parser.silent = False  # a broken form is the client's error, not an empty form
        return parser

    def _load_form_data(self) -> None:
        if "form" not in self.__dict__ and self.mimetype == "application/x-www-form-urlencoded":
            self._check_urlencoded(self.get_data())
        try:
            super()._load_form_data()
        except RequestEntityTooLarge as exc:
            if exc.description and "Request body too large" in exc.description:
                raise
            raise HTTPError(
                413,
                f"Form too large: a field is over max_form_memory_size"
                f" ({self.max_form_memory_size} bytes) or it has more than max_form_parts"
                f" ({self.max_form_parts}) parts",
            ) from None
        except ValueError as exc:
            raise HTTPError(400, f"Malformed form body: {exc}") from None

    def _check_urlencoded(self, body: bytes) -> None:
        """Hold a URL-encoded form to the limits multipart has, before it is parsed.

        werkzeug applies ``max_form_parts`` and ``max_form_memory_size`` to
        multipart bodies only; a URL-encoded one of a million fields would be
        parsed into a million pairs first. Counting separators costs one pass
        at C speed; a field is decoded only when it could be over the limit.
        """
        parts = self.max_form_parts
        if parts is not None and body.count(b"&") >= parts:
            raise HTTPError(
                413, f"Form too large: it has more than max_form_parts ({parts}) fields"
            )
        limit = self.max_form_memory_size
        if limit is None or len(body) <= limit:
            return
        for field in body.split(b"&"):
            if len(field) > limit:
                value = unquote_to_bytes(field.partition(b"=")[2].replace(b"+", b" "))
                if len(value) > limit:
                    raise HTTPError(
                        413,
                        f"Form too large: a field is over max_form_memory_size ({limit} bytes)",
                    )

    def _get_stream_for_parsing(self) -> IO[bytes]:
        # Form parsing reads from the cached body, so middleware and handler
        # can each read it in any way (form, data, json), in any order. The
        # body is bounded by max_body_size, so buffering it is safe.
        return io.BytesIO(self.get_data())

    @property
    def json(self) -> Any:
        """The body parsed as JSON, whatever the Content-Type (like ``await request.json()``).

        An empty or malformed body raises :class:`~microroute.HTTPError` 400
        ``{"error": "Invalid JSON body: ..."}``; when the request said another
        Content-Type (a form: ``curl -d``), the message says so and names what
        reads that type (``request.form``). The result is cached.
        """
        if self._json_value is _UNSET:
            try:
                self._json_value = parse_json(self.whole_body(), self.max_json_depth)
            except HTTPError as exc:
                hint = self._not_json_hint()
                if hint is None:
                    raise
                raise HTTPError(exc.status, f"{exc.message}. {hint}", exc.headers) from None
        return self._json_value

    def _not_json_hint(self) -> str | None:
        """What to say when a body that failed to parse as JSON never claimed to be JSON."""
        if not self.environ.get("CONTENT_TYPE") or self.is_json:
            return None
        mimetype = self.mimetype
        reader = _READERS.get(mimetype, "request.get_data()")
        if mimetype == "application/x-www-form-urlencoded":
            mimetype += " (what curl -d sends)"
        return (
            f"The body was sent as {mimetype}, not JSON: read it with {reader}, or send"
            " Content-Type: application/json (curl --json)"
        )

    def whole_body(self) -> bytes:
        """The body as bytes, read once: ``get_data()``, without stream objects when sized.

        For the framework's own parsers (``json``, typed bodies): with a
        Content-Length the body is one read; otherwise ``get_data()``.
        """
        attributes = self.__dict__  # not getattr(): a miss would go through __getattr__
        body: bytes | None = attributes.get("_cached_data")
        if body is None and "stream" not in attributes:
            body = self._read_sized_body()  # the common case, without stream objects
            if body is not None:
                self._cached_data = body
        if body is None:
            body = self.get_data()
        return body

    @property
    def text(self) -> str:
        """The body decoded with the request's charset (UTF-8 when none is named).

        Undecodable bytes become U+FFFD. A charset that is no text encoding
        (``base64``, ``zlib``, ``rot13``), unknown, or that cannot decode this
        body (``idna``, ``punycode``) is a 400 naming the charset.
        """
        charset = self.mimetype_params.get("charset", "utf-8")
        try:
            # bytes.decode() itself refuses codecs that are not text
            # encodings, with a LookupError.
            return self.get_data().decode(charset, "replace")
        except (LookupError, ValueError):
            raise HTTPError(
                400, f"Invalid charset {charset[:40]!r}: the body cannot be read as text with it"
            ) from None

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        """werkzeug's ``get_json()``, parsed as :attr:`json` is: same parser, same limits.

        It needs a JSON Content-Type unless *force*; *silent* turns a failure
        into ``None``. The parsed value is cached whatever *cache* says.
        """
        if not (force or self.is_json):
            return None if silent else self.on_json_loading_failed(None)
        try:
            return self.json
        except HTTPError:
            if silent:
                return None
            raise

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        """werkzeug's ``get_json()`` failures become the same JSON 400 as ``request.json``."""
        raise HTTPError(400, f"Invalid JSON body: {e}" if e else "Invalid JSON body")


def parse_json(body: bytes, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> Any:
    """Parse a request body, turning every failure into a 400 that says why."""
    try:
        text = body.decode()  # JSON is UTF-8 (RFC 8259)
    except UnicodeDecodeError:
        raise HTTPError(400, "Invalid JSON body: not valid UTF-8") from None
    if not text.strip():
        raise HTTPError(400, "Invalid JSON body: the body is empty")
    if _too_deep(text, max_depth):
        raise HTTPError(400, f"Invalid JSON body: nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise HTTPError(400, f"Invalid JSON body: {exc}") from None
    except RecursionError:
        raise HTTPError(400, "Invalid JSON body: nested too deeply") from None
    except ValueError:
        # int() refuses more than sys.get_int_max_str_digits() digits (4300).
        limit = sys.get_int_max_str_digits()
        message = f"Invalid JSON body: an integer has more than {limit} digits"
        raise HTTPError(400, message) from None
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        # "\ud800" parses, but is no character: it could not be stored or sent back.
        raise HTTPError(400, "Invalid JSON body: a \\u escape names half a surrogate pair")
    return value


def _no_constant(name: str) -> Any:
    raise HTTPError(400, f"Invalid JSON body: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    # "1e999" is valid JSON, but as a float it is inf: as unrepresentable as NaN.
    value = float(text)
    if not math.isfinite(value):
        raise HTTPError(400, f"Invalid JSON body: {text[:40]} is too large for a number")
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_AS_PARENS = str.maketrans("[{]}", "(())")


def _too_deep(text: str, max_depth: int) -> bool:
    """Whether brackets outside strings nest deeper than *max_depth*.

    Checked before parsing, so a hostile body cannot make the parser recurse.
    Each pass (C speed) peels the innermost level off; a body with fewer
    brackets than the limit cannot exceed it and is not scanned at all.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).translate(_AS_PARENS)
    for _ in range(max_depth):
        peeled = brackets.replace("()", "")
        if peeled == brackets:
            return False  # unbalanced leftovers: let the parser say why
        brackets = peeled
        if not brackets:
            return False
    return True


_MALFORMED = "Malformed request body"


def _read_input(read: Callable[[int], bytes], size: int) -> bytes:
    """Read from the server's input; a failure there is the client's doing: a 400.

    The server parses the chunked framing while the body is read, so a bad
    chunk size surfaces here as the server's own exception (gevent's
    ``_InvalidClientInput``, gunicorn's ``InvalidChunkSize``, a socket error
    when the client went away), none of which is a bug in the app.
    """
    try:
        return read(size)
    except Exception as exc:
        # microroute's own server already says what this is (its MalformedBody):
        # say it once, not "Malformed request body: Malformed request body: ...".
        detail = str(exc).removeprefix(_MALFORMED).removeprefix(": ")
        detail = detail[:100] or type(exc).__name__
        raise HTTPError(400, f"{_MALFORMED}: {detail}") from None


class _CappedStream(io.RawIOBase):
    """A server-terminated (chunked) input that raises 413 past *limit* bytes, if any."""

    def __init__(self, stream: IO[bytes], limit: int | None) -> None:
        self._stream = stream
        self._limit = limit
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left is None:
            data = _read_input(self._stream.read, len(buffer))
        else:
            # Ask for one byte more than allowed, so an overflow is seen, not cut.
            data = _read_input(self._stream.read, min(len(buffer), self._left + 1))
            if len(data) > self._left:
                raise RequestEntityTooLarge(
                    f"Request body too large: the limit is {self._limit} bytes"
                )
            self._left -= len(data)
        size = len(data)
        buffer[:size] = data
        return size
