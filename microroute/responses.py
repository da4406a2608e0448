"""Responses: the public :class:`Response`, and the WSGI replies the app sends.

Handlers mostly return plain values (a dict, a str, a generator); the app turns
those straight into a *reply* — ``(status line, header list, body iterable)``,
exactly what WSGI wants — without building a werkzeug ``Response`` on the way.
:class:`Response` is there for when a handler wants full control.

Streaming lives here too: :class:`StreamBody` sends a generator's chunks one by
one and closes the generator when the server closes the body (PEP 3333), so a
handler's ``finally:`` runs when the client goes away.
"""

from __future__ import annotations

import contextvars
import dataclasses
import datetime
import decimal
import enum
import json
import logging
import math
import uuid
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any

from gevent import GreenletExit
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Response as _WerkzeugResponse

from .errors import safe_location

__all__ = [
    "ClosingBody",
    "Reply",
    "Response",
    "SafeHeaders",
    "StreamAborted",
    "StreamBody",
    "close_body",
    "encode_json",
    "error_reply",
    "json_reply",
    "standard_status",
]

logger = logging.getLogger("microroute")

Headers = list[tuple[str, str]]
#: What the app hands to the WSGI server: status line, headers, body.
Reply = tuple[str, Headers, Iterable[bytes]]

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain; charset=utf-8"
BYTES_TYPE = "application/octet-stream"

_STATUS_LINES = {int(s): f"{int(s)} {s.phrase}" for s in HTTPStatus}


def status_line(status: int) -> str:
    """``200`` -> ``"200 OK"``; precomputed for every status Python knows."""
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = f"{status} Unknown"
    return line


# werkzeug writes the phrase of a status it set in capitals ("204 NO CONTENT").
_WERKZEUG_LINES = {
    f"{code} {HTTP_STATUS_CODES.get(code, 'Unknown').upper()}": status_line(code)
    for code in range(100, 600)
}


def standard_status(line: str) -> str:
    """A werkzeug Response's ``"204 NO CONTENT"`` -> ``"204 No Content"``, as every other reply.

    A phrase the app chose itself (``Response(status="299 Mine")``) is kept.
    """
    return _WERKZEUG_LINES.get(line, line)


def _json_default(value: Any) -> Any:
    # The types a JSON API returns every day and the stdlib refuses.
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value  # as orjson does
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _finite(value: Any) -> Any:
    """*value* with NaN and ±Infinity as ``None``, as ``JSON.stringify`` and orjson write them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_finite(item) for item in value]
    return value


# One encoder built once: json.dumps() with options builds a new one per call.
# allow_nan=False: "NaN" is not JSON; a non-finite float raises and is encoded
# again below as null, so the output is the same with and without orjson.
_encoder = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), default=_json_default, allow_nan=False
)
_finite_encoder = json.JSONEncoder(
    ensure_ascii=False,
    separators=(",", ":"),
    default=lambda value: _finite(_json_default(value)),
    allow_nan=False,
)


def _encode_stdlib(data: Any) -> bytes:
    try:
        return _encoder.encode(data).encode()
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise  # a circular reference, say
        return _finite_encoder.encode(_finite(data)).encode()


try:  # the `fast` extra: pip install "microroute[fast]"
    import orjson

    HAS_ORJSON = True
except ImportError:  # pragma: no cover - depends on the environment
    HAS_ORJSON = False


if HAS_ORJSON:
    _ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS

    def encode_json(data: Any) -> bytes:
        """Compact UTF-8 JSON; dates, UUIDs, decimals, enums, dataclasses and sets included.

        orjson (when installed) writes the same JSON as the standard library
        setup below, about eight times faster: NaN and ±Infinity as ``null``,
        an ``Enum`` as its value. What it cannot encode (integers over 64
        bits, say) falls back to the standard library.
        """
        try:
            return orjson.dumps(data, default=_json_default, option=_ORJSON_OPTIONS)
        except orjson.JSONEncodeError:
            return _encode_stdlib(data)

else:  # pragma: no cover - depends on the environment
    encode_json = _encode_stdlib


class SafeHeaders(list[tuple[str, str]]):
    """Headers microroute made from its own constants and a length: nothing to check.

    Every reply's headers are checked before they go on the wire
    (:mod:`microroute.wire`), except these: the JSON, text and bytes replies'
    ``Content-Type`` and ``Content-Length``. Adding to such a list (cookies,
    a handler's headers) makes a plain list, which is checked.
    """

    __slots__ = ()


def json_reply(data: Any, status: int = 200) -> Reply:
    body = encode_json(data)
    return (
        status_line(status),
        SafeHeaders([("Content-Type", JSON_TYPE), ("Content-Length", str(len(body)))]),
        [body],
    )


def error_reply(status: int, message: str, headers: Headers | None = None, **extra: Any) -> Reply:
    """The JSON error every failure renders as: ``{"error": message}``."""
    line, base, body = json_reply({"error": message, **extra}, status)
    if headers:
        base = merge_headers(base, headers)
    return line, base, body


def merge_headers(defaults: Headers, given: Headers) -> Headers:
    """*given* replaces any default of the same name (Content-Type included)."""
    names = {name.lower() for name, _ in given}
    return [h for h in defaults if h[0].lower() not in names] + given


class StreamAborted(RuntimeError):
    """A streamed response failed after its headers went out; the body is cut.

    Raised (from the original error) to the server by :class:`StreamBody`,
    whatever the generator raised: an exception, a ``redirect()``/``abort()``
    (too late to change the status), a ``gevent.Timeout``. It is an
    ``Exception`` on purpose: gunicorn and pywsgi then log it and close the
    connection without the chunked body's last chunk, so the client sees an
    incomplete body, never an error page spliced into it; ``microroute run``
    does the same without logging it twice.
    """


class StreamBody:
    """A streamed body: chunks go out as the generator yields them, never buffered.

    The app primes the generator (takes its first chunk) before it sends
    headers, so an exception before the first chunk still becomes a proper
    error response; that chunk is held here and sent first. Later chunks run
    in the request's own context (:attr:`context`).
    """

    __slots__ = ("_closable", "_encode", "_first", "_iterator", "_source", "context")

    def __init__(
        self,
        first: bytes | None,
        iterator: Iterator[Any],
        source: str,
        encode: Callable[[Any], bytes] | None = None,
        closable: object = None,
    ) -> None:
        self._first = first
        self._iterator = iterator
        #: What close() closes: the iterator, or what it came from (an EventStream).
        self._closable: object = iterator if closable is None else closable
        self._source = source
        #: Turns each item into bytes (an EventStream's events), or None.
        self._encode = encode
        #: The request's context, entered for each chunk, so cookies(),
        #: headers() and session() work inside the generator and nothing it
        #: sets leaks into the next request on the connection.
        self.context: contextvars.Context | None = None

    @classmethod
    def around(
        cls, body: Iterable[bytes], first: bytes | None, iterator: Iterator[Any], source: str
    ) -> StreamBody:
        """Any other lazy body (a ``Response(generator)``, middleware's own), primed.

        *first* is the chunk already taken from *iterator* (``iter(body)``).
        Later chunks run in the request's context, a failure after the first
        chunk cuts the body as it does for a handler's generator, and
        ``close()`` reaches *body* itself (PEP 3333).
        """
        wrapped = cls(first, iterator, source)
        wrapped._closable = body
        return wrapped

    def __iter__(self) -> StreamBody:
        return self

    def __next__(self) -> bytes:
        # An iterator, not a generator: a stream held open costs no generator
        # frame, and one C stack level less in every parked greenlet.
        first = self._first
        if first is not None:
            self._first = None
            if first:
                return first
        iterator, context, encode = self._iterator, self.context, self._encode
        while True:
            try:
                # Called here, not through a helper: every C call on this path
                # is stack a parked stream's greenlet keeps.
                chunk = next(iterator) if context is None else context.run(next, iterator)
                if encode is not None:
                    chunk = encode(chunk)
            except StopIteration:
                raise
            except (GeneratorExit, GreenletExit):
                self.close()  # the server is closing the stream or killing its greenlet
                raise
            except BaseException as exc:
                # Headers are gone: the status can no longer change. Log it,
                # close the generator, then let the server cut the connection
                # so the client sees a broken stream, not a complete one.
                logger.error(
                    "Error while streaming the response of %s: %s after the first chunk;"
                    " the body was cut",
                    self._source,
                    type(exc).__name__,
                    exc_info=exc,
                )
                self.close()
                raise StreamAborted(
                    f"{self._source} raised {type(exc).__name__} after the first chunk"
                    f" ({exc}); the body was cut"
                ) from exc
            data = chunk_bytes(chunk, self._source)
            if data:  # an empty chunk would end a chunked response early
                return data

    def close(self) -> None:
        close_body(self._closable)


def close_body(body: object) -> None:
    """Call *body*'s ``close()`` if it has one (PEP 3333: what a server does when done)."""
    close = getattr(body, "close", None)
    if close is not None:
        close()


class ClosingBody:
    """A response body whose ``close()`` closes it, then runs *then*.

    PEP 3333 servers call ``close()`` once the last byte is out (or the client
    left), so *then* runs after the response: ``after()`` work, the end of a
    disconnect watch. ``close()`` acts once, whoever calls it; the body's own
    ``finally:`` runs before *then*.
    """

    __slots__ = ("_body", "_closed", "_then")

    def __init__(self, body: Iterable[bytes], then: Callable[[], None]) -> None:
        self._body = body
        self._then = then
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close_body(self._body)
        finally:
            self._then()


def chunk_bytes(chunk: Any, source: str) -> bytes:
    """A streamed chunk as bytes: ``str`` is sent as UTF-8."""
    if isinstance(chunk, str):
        return chunk.encode()
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(
        f"{source} streamed a {type(chunk).__name__}; stream chunks must be str or bytes"
    )


class _JSONAccessor:
    """``Response.json(data)`` builds a JSON response; ``response.json`` reads one.

    werkzeug's ``Response.json`` is a property that parses the body; DESIGN
    wants a constructor under the same name. A descriptor gives both, so code
    written for either keeps working.
    """

    def __get__(self, obj: Response | None, owner: type[Response]) -> Any:
        if obj is None:
            return owner._from_json
        return obj.get_json()


class Response(_WerkzeugResponse):
    """A werkzeug Response with JSON and redirect constructors.

    >>> Response.json({"ok": True}, status=201)                  # doctest: +SKIP
    >>> Response.redirect("/login")                              # doctest: +SKIP
    >>> Response("plain text", headers={"X-Custom": "1"})        # doctest: +SKIP
    """

    default_mimetype = "text/plain"
    # Relative redirect targets are resolved against the request URL, as
    # Next.js's NextResponse.redirect does.
    autocorrect_location_header = True

    json = _JSONAccessor()

    @classmethod
    def _from_json(
        cls, data: Any, status: int = 200, headers: dict[str, str] | Headers | None = None
    ) -> Response:
        return cls(encode_json(data), status=status, headers=headers, mimetype=JSON_TYPE)

    @classmethod
    def redirect(cls, url: str, status: int = 307, *, allow_external: bool = False) -> Response:
        """A redirect to *url* (307 keeps the method and body; pass 308 for permanent).

        A target on another site (a scheme, ``//evil.example`` and the like) is
        refused with a 400 unless *allow_external* is true; see
        :func:`microroute.errors.safe_location`.
        """
        if status not in (301, 302, 303, 307, 308):
            raise ValueError(f"redirect status must be 301, 302, 303, 307 or 308, got {status}")
        location = safe_location(url, allow_external)
        return cls(b"", status=status, headers={"Location": location})
