"""Replies: whatever a handler returns, made into what a WSGI server sends.

One module, one way: ``coerce`` looks at a return value's type and makes the
*reply* ``(status line, header list, body iterable)`` the table in README
describes (a dict is JSON, a str text, a generator a stream...), and ``prime``
takes the first chunk of any lazy body before its headers go out, so a failure
there is still a proper error response. Error handlers' and middleware's
return values come through here too.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from werkzeug.datastructures import Headers as _WerkzeugHeaders
from werkzeug.wrappers import Response as _WerkzeugResponse

from .context import BUILD_MARK
from .disconnect import DISCONNECT
from .responses import (
    BYTES_TYPE,
    JSON_TYPE,
    TEXT_TYPE,
    Headers,
    Reply,
    SafeHeaders,
    StreamBody,
    chunk_bytes,
    close_body,
    encode_json,
    merge_headers,
    standard_status,
    status_line,
)
from .sse import HEARTBEAT_KEY, EventStream, encode_event
from .typed import encode_model
from .wire import header_problem

__all__ = ["ReturnValueError", "coerce", "prime"]

_STREAM_HEADERS: Headers = [("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")]


class ReturnValueError(TypeError):
    """A handler returned something microroute cannot send."""


def _bytes_reply(body: bytes, content_type: str, status: int) -> Reply:
    return (
        status_line(status),
        SafeHeaders([("Content-Type", content_type), ("Content-Length", str(len(body)))]),
        [body],
    )


def _stream_reply(
    iterator: Iterator[Any],
    status: int,
    source: str,
    environ: dict[str, Any],
    encode: Callable[[Any], bytes] | None = None,
    closable: object = None,
) -> Reply:
    # From here on the client's leaving interrupts the generator, even blocked.
    watch = environ.get(DISCONNECT)
    if watch is not None:
        watch.watch(interrupt=True)
    # Prime before headers: an exception here still becomes an error response.
    try:
        first = next(iterator)
        if encode is not None:
            first = encode(first)
    except StopIteration:
        first_bytes, content_type = None, TEXT_TYPE
    except BaseException:
        close_body(closable or iterator)
        raise
    else:
        try:
            first_bytes = chunk_bytes(first, source)
        except TypeError as exc:
            close_body(closable or iterator)
            raise ReturnValueError(str(exc)) from None
        content_type = TEXT_TYPE if isinstance(first, str) else BYTES_TYPE
    headers = [("Content-Type", content_type), *_STREAM_HEADERS]
    return status_line(status), headers, StreamBody(first_bytes, iterator, source, encode, closable)


def _body_reply(body: Any, status: int, source: str, environ: dict[str, Any]) -> Reply:
    """Coerce a return value (not a tuple) per the table in DESIGN.md."""
    kind = type(body)
    if kind is dict or kind is list:
        data = encode_json(body)
        return _bytes_reply(data, JSON_TYPE, status)
    if kind is str:
        return _bytes_reply(body.encode(), TEXT_TYPE, status)
    if body is None:
        return status_line(204 if status == 200 else status), [], []
    if kind is bytes or isinstance(body, (bytes, bytearray, memoryview)):
        return _bytes_reply(bytes(body), BYTES_TYPE, status)
    if isinstance(body, _WerkzeugResponse):
        return _response_reply(body, environ, source)
    if isinstance(body, (Mapping, list)):
        return _bytes_reply(encode_json(body), JSON_TYPE, status)
    if isinstance(body, str):
        return _bytes_reply(body.encode(), TEXT_TYPE, status)
    if isinstance(body, EventStream):
        register = environ.get(HEARTBEAT_KEY)
        if register is not None:  # the server writes the heartbeats: no greenlet per stream
            body.hand_heartbeats_to(register)
        events = body.inline()
        if events is not None:  # the generator runs inline: pulled and encoded directly
            reply = _stream_reply(events, status, source, environ, encode_event, body)
        else:
            reply = _stream_reply(body, status, source, environ)
        line, headers, stream = reply
        return line, merge_headers(headers, EventStream.headers), stream
    if kind is types.GeneratorType or isinstance(body, Iterator):
        return _stream_reply(body, status, source, environ)
    model = encode_model(body)  # a msgspec.Struct, dataclass or pydantic model
    if model is not None:
        return _bytes_reply(model, JSON_TYPE, status)
    raise ReturnValueError(
        f"{source} returned a {kind.__module__}.{kind.__qualname__}; return a dict, list, str,"
        " bytes, None, a generator, a Response, a msgspec.Struct, dataclass or pydantic model,"
        " or a (body, status[, headers]) tuple"
    )


def _response_reply(response: _WerkzeugResponse, environ: dict[str, Any], source: str) -> Reply:
    """A werkzeug Response as a reply; a body already in memory stays a list."""
    if BUILD_MARK in environ:
        # A build's host is made up: keep a relative Location relative.
        response.autocorrect_location_header = False
    app_iter, line, headers = response.get_wsgi_response(environ)
    line = standard_status(line)
    for name, value in headers:
        problem = header_problem(name, value)
        if problem is not None:
            close_body(app_iter)
            raise ReturnValueError(f"{source} returned a Response with a bad header: {problem}")
    if not response.is_streamed:
        # Joined here so that a static GET returning a Response can be cached.
        body = b"".join(app_iter)
        close_body(app_iter)
        return line, list(headers), [body] if body else []
    return line, list(headers), app_iter


def _header_pairs(headers: Any, source: str) -> Headers:
    if isinstance(headers, (Mapping, _WerkzeugHeaders)):
        items = headers.items()
    elif isinstance(headers, (list, tuple)):
        items = headers
    else:
        raise ReturnValueError(
            f"{source} returned headers as a {type(headers).__name__}; use a dict or a list of"
            " (name, value) pairs"
        )
    pairs: Headers = []
    for item in items:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise ReturnValueError(f"{source} returned a bad header entry {item!r}")
        name, value = str(item[0]), str(item[1])
        problem = header_problem(name, value)
        if problem is not None:
            # A line break would let the value inject headers of its own.
            raise ReturnValueError(f"{source} returned a bad header: {problem}")
        pairs.append((name, value))
    return pairs


def _valid_status(status: Any, source: str) -> int:
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise ReturnValueError(f"{source} returned status {status!r}; use an int from 200 to 599")
    return int(status)


def coerce(result: Any, source: str, environ: dict[str, Any]) -> Reply:
    """Turn whatever a handler returned into a WSGI reply.

    ``dict``/``list`` -> JSON, ``str`` -> text, ``bytes`` -> octet-stream,
    ``None`` -> 204, a generator -> a stream, a ``Response`` as is, and
    ``(body, status)`` / ``(body, status, headers)`` for the rest.
    """
    if type(result) is dict:  # the hot path first
        data = encode_json(result)
        return _bytes_reply(data, JSON_TYPE, 200)
    if type(result) is not tuple:
        return _body_reply(result, 200, source, environ)
    if len(result) not in (2, 3):
        raise ReturnValueError(
            f"{source} returned a tuple of {len(result)}; return (body, status) or"
            " (body, status, headers)"
        )
    body, status = result[0], _valid_status(result[1], source)
    extra = _header_pairs(result[2], source) if len(result) == 3 else []
    if isinstance(body, _WerkzeugResponse):
        body.status_code = status
        for name, value in extra:
            body.headers[name] = value
        return _response_reply(body, environ, source)
    content: Iterable[bytes]
    if body is None:
        line, headers, content = status_line(status), [("Content-Length", "0")], []
        if status in (204, 304):
            headers = []
    else:
        line, headers, content = _body_reply(body, status, source, environ)
    return line, merge_headers(headers, extra) if extra else headers, content


def prime(environ: dict[str, Any], status: str, headers: Headers, body: Iterable[bytes]) -> Reply:
    """A lazy body made another way (``Response(generator)``, middleware's): primed.

    As for a handler's generator: its first chunk is taken before the headers
    go out, later chunks run in the request's context, and a failure after the
    first chunk cuts the body cleanly. What it raises before its first chunk
    is raised here, with the body closed, for the caller to render.
    """
    where = f"the response to {environ['REQUEST_METHOD']} {environ.get('PATH_INFO')}"
    watch = environ.get(DISCONNECT)
    if watch is not None:
        watch.watch(interrupt=True)
    try:
        iterator = iter(body)
        first = next(iterator, None)
        data = chunk_bytes(first, where) if first is not None else None
    except BaseException:
        close_body(body)
        raise
    return status, headers, StreamBody.around(body, data, iterator, where)
