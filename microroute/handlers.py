"""Handler plans: how a handler is called, and how its return value is sent.

Everything about a handler that can be known before the first request is
decided here once, at registration: which arguments it takes (``request``,
``params``, ``context`` or path parameters by name), whether a request object
must be built at all, and a small calling function specialised for that shape.
Per request, :meth:`Endpoint.invoke` just calls, and :func:`coerce` turns the
result into a WSGI reply by looking at its type.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from werkzeug.datastructures import Headers as _WerkzeugHeaders
from werkzeug.wrappers import Response as _WerkzeugResponse

from .disconnect import DISCONNECT
from .errors import StartupError
from .requests import Request
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
    status_line,
)
from .routing import RESERVED_NAMES, RouteConfig
from .sse import HEARTBEAT_KEY, EventStream, encode_event
from .typed import Binder, encode_model, read_annotations
from .wire import header_problem

__all__ = ["BUILD_MARK", "Context", "Endpoint", "ReturnValueError", "coerce"]

#: The environ key that marks a static build's synthetic request.
BUILD_MARK = "microroute.build"

Invoke = Callable[[Request | None, dict[str, Any]], Any]

_STREAM_HEADERS: Headers = [("Cache-Control", "no-cache"), ("X-Accel-Buffering", "no")]


class Context:
    """The second argument of a Next.js route handler: ``context.params``."""

    __slots__ = ("params",)

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def __repr__(self) -> str:
        return f"Context(params={self.params!r})"


class ReturnValueError(TypeError):
    """A handler returned something microroute cannot send."""


class Endpoint:
    """One handler bound to one method of one route, with its calling plan."""

    __slots__ = (
        "config",
        "dynamic_reason",
        "handler",
        "invoke",
        "method",
        "needs_request",
        "source",
        "streams",
    )

    def __init__(
        self,
        handler: Callable[..., Any],
        method: str,
        path_params: Iterable[str],
        config: RouteConfig,
        source: str,
    ) -> None:
        self.handler = handler
        self.method = method
        self.config = config
        self.source = source
        self.invoke, self.needs_request = _plan(handler, tuple(path_params), source)
        #: A generator function: its response streams, known before it ever runs.
        self.streams = inspect.isgeneratorfunction(inspect.unwrap(handler))
        #: Why this handler's responses are not cached (None: a static GET);
        #: set by the app at start-up, and again when a build proves it dynamic.
        self.dynamic_reason: str | None = "not a GET" if method != "GET" else None

    def __repr__(self) -> str:
        return f"<Endpoint {self.method} {self.source}>"


def _plan(fn: Callable[..., Any], path_params: tuple[str, ...], source: str) -> tuple[Invoke, bool]:
    """Inspect *fn* once and return a function that calls it with the right arguments."""
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        # A WSGI app has no event loop: every request would get a coroutine
        # object back, a 500. Say so at start-up, naming the function.
        kind = "an async generator" if inspect.isasyncgenfunction(fn) else "a coroutine"
        raise StartupError(
            f"{source}: the handler is {kind} function (async def); microroute is WSGI and"
            " calls handlers synchronously (gevent gives them concurrency): use a plain def"
        )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise StartupError(f"{source}: cannot read the handler's signature: {exc}") from None
    # Annotations that ask for work (conversion, query, body) get a binder;
    # an untyped handler gets None and exactly the plans below.
    binder = read_annotations(fn, signature, path_params, source)
    typed_names = binder.names if binder is not None else frozenset()
    wanted: list[str] = []
    takes_rest = False
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            continue
        if parameter.kind is parameter.VAR_KEYWORD:
            takes_rest = True
            continue
        name = parameter.name
        if name in typed_names:
            continue
        known = name in RESERVED_NAMES or name in path_params
        if parameter.kind is parameter.POSITIONAL_ONLY and parameter.default is parameter.empty:
            raise StartupError(
                f"{source}: parameter {name!r} is positional-only; handler arguments are"
                " passed by name"
            )
        if known and parameter.kind is not parameter.POSITIONAL_ONLY:
            wanted.append(name)
        elif parameter.default is parameter.empty:
            choices = ", ".join([*sorted(RESERVED_NAMES), *path_params])
            raise StartupError(
                f"{source}: unknown parameter {name!r}; a handler may take {choices}"
            )
    if takes_rest:
        wanted.extend(p for p in path_params if p not in wanted)
    needs_request = "request" in wanted
    if binder is not None:
        return _typed_invoke(fn, wanted, binder), needs_request or binder.needs_request

    # The common shapes get a dedicated closure: no loop, no dict building.
    if not wanted:
        return (lambda request, params: fn()), False
    if set(wanted) == set(path_params) and len(wanted) == len(path_params):
        return (lambda request, params: fn(**params)), False
    if wanted == ["request"]:
        return (lambda request, params: fn(request=request)), True

    def invoke(request: Request | None, params: dict[str, Any]) -> Any:
        return fn(**_kwargs(wanted, request, params))

    return invoke, needs_request


def _kwargs(wanted: list[str], request: Request | None, params: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for name in wanted:
        if name == "request":
            kwargs[name] = request
        elif name == "params":
            kwargs[name] = params
        elif name == "context":
            kwargs[name] = Context(params)
        else:
            kwargs[name] = params[name]
    return kwargs


def _typed_invoke(fn: Callable[..., Any], wanted: list[str], binder: Binder) -> Invoke:
    """Call *fn* with its by-name arguments plus what its annotations read and convert."""
    bind, finish = binder.bind, binder.finish
    if not wanted and finish is None:  # the typed handler that takes only typed input
        return lambda request, params: fn(**bind(request, params))

    def invoke(request: Request | None, params: dict[str, Any]) -> Any:
        kwargs = _kwargs(wanted, request, params)
        kwargs.update(bind(request, params))
        result = fn(**kwargs)
        return finish(result) if finish is not None else result

    return invoke


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
