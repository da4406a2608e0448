"""Call a WSGI app in-process through the ``requests`` API.

``TestClient`` is a ``requests.Session`` whose transport is the app itself, so
tests read like client code and keep everything ``requests`` gives for free:
cookies kept across calls, redirects, ``json=``/``files=`` encoding, auth::

    from microroute.testing import TestClient

    client = TestClient(app)
    assert client.get("/api/users").json() == []

    with client.get("/api/events", stream=True) as resp:
        for chunk in resp.iter_content(None):  # each chunk as the app yields it
            ...

Unlike werkzeug's test client, nothing is buffered behind the test's back: a
``stream=True`` response pulls one chunk from the app per read, and closing it
early calls the app iterable's ``close()`` (PEP 3333), which is how a test
proves that a streaming generator's ``finally:`` runs when the client leaves.

It is as strict as a real server: what gunicorn or ``microroute run`` would
refuse, answer with a 500, or send in a way that desynchronises a keep-alive
connection raises :class:`WSGIProtocolError` (a bad status line or header, a
hop-by-hop header, ``start_response`` called twice, a body on a HEAD, 1xx, 204
or 304 response, a body that disagrees with its ``Content-Length``). So a test
passes only where production would serve the response.

It needs the ``testing`` extra (``pip install "microroute[testing]"``: requests
and pytest); without it, importing this module says so.

It works for any WSGI app, not just microroute's: beside ``requests`` and the
standard library it only hands the app a :class:`~microroute.disconnect.Disconnect`
(``environ["microroute.disconnect"]``) that fires when a test closes a streamed
response before its end, as a browser closing its tab would.
"""

from __future__ import annotations

import copy
import http.client
import io
import re
import sys
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote_to_bytes, urljoin, urlsplit

try:
    import requests
except ImportError as exc:  # the extra is not installed: say which one
    raise ImportError(
        'microroute.testing needs requests: pip install "microroute[testing]"',
        name=exc.name,
    ) from None
from requests.adapters import BaseAdapter
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3 import HTTPHeaderDict

from .after_response import INLINE as AFTER_INLINE
from .disconnect import DISCONNECT, Disconnect
from .wire import HOP_BY_HOP, TOKEN, VALUE

if TYPE_CHECKING:
    from _typeshed import OptExcInfo, WriteableBuffer
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

__all__ = ["TestClient", "WSGIAdapter", "WSGIProtocolError", "build_environ"]

_READ_SIZE = 64 * 1024

# What gunicorn (gunicorn/http/wsgi.py) accepts on the wire, which is RFC 9110's
# grammar (microroute.wire holds it for the app's own check): a status is
# 3DIGIT SP reason, a header name a token, a header value SP / HTAB / VCHAR /
# obs-text; hop-by-hop headers are the server's (PEP 3333).
_STATUS_RE = re.compile(r"[1-5][0-9]{2} [ \t\x21-\x7e\x80-\xff]*")
_TOKEN_RE = TOKEN
_VALUE_RE = VALUE
_HOP_BY_HOP = HOP_BY_HOP


class WSGIProtocolError(AssertionError):
    """The app broke a rule a real WSGI server or HTTP client enforces.

    Raised by :class:`TestClient` where ``microroute run`` or gunicorn would
    answer 500, cut the connection or put bytes on the wire that desynchronise
    a keep-alive connection: a malformed status line, a header name that is not
    a token, a header value with CR/LF/NUL or characters beyond latin-1, a
    hop-by-hop header, ``start_response`` called twice, a body on a HEAD, 1xx,
    204 or 304 response, or a body whose length disagrees with its
    ``Content-Length``. An ``AssertionError``, as pywsgi's and wsgiref's are.
    """


# Typed alias: some requests stubs leave this function unannotated.
_extract_cookies: Callable[[Any, requests.PreparedRequest, object], None] = extract_cookies_to_jar


class TestClient(requests.Session):
    """A ``requests.Session`` that sends every request to ``app``, in-process.

    Relative URLs are resolved against ``base_url`` (``http://testserver``);
    absolute ``http://`` and ``https://`` URLs reach the app too, whatever
    their host, and ``https`` sets ``wsgi.url_scheme``. Exceptions raised by
    the app propagate to the test instead of becoming a 500, so a failing
    test shows the real traceback; so do :class:`WSGIProtocolError`, for
    responses no real server would send as they are.

    Use it as a context manager (or call ``close()``) so streamed responses
    left open are closed, running their generators' ``finally:`` blocks::

        with TestClient(app) as client:
            assert client.post("/echo", json={"a": 1}).status_code == 201
    """

    # Named Test*, but not a test class: keeps pytest from trying to collect it.
    __test__ = False

    def __init__(self, app: WSGIApplication, base_url: str = "http://testserver") -> None:
        from .app import App
        from .routing import Router

        if isinstance(app, Router):
            raise TypeError(
                "TestClient() takes an app, not a Router; wrap it: TestClient(App(route))"
            )
        if isinstance(app, App):
            app.check()  # the app starts here: a parameter nothing provides stops it
        super().__init__()
        self.app = app
        self.base_url = base_url
        # Proxy variables and ~/.netrc describe the network; there is none here.
        self.trust_env = False
        # requests advertises br/zstd when their packages happen to be installed;
        # only promise what WSGIAdapter can decode, so tests behave the same everywhere.
        self.headers["Accept-Encoding"] = "gzip, deflate"
        adapter = WSGIAdapter(app)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        """Resolve a relative URL against ``base_url``, then prepare as usual.

        Done here rather than in ``request()`` so ``client.send(client.prepare_request(
        Request("GET", "/x")))`` works too. The caller's ``Request`` is not modified.
        """
        url = request.url
        if isinstance(url, bytes):
            url = url.decode("utf-8")
        joined = urljoin(self.base_url, url)
        if joined != url:
            request = copy.copy(request)
            request.url = joined
        return super().prepare_request(request)


class WSGIAdapter(BaseAdapter):
    """A ``requests`` transport adapter that answers requests by calling a WSGI app.

    ``TestClient`` mounts one for ``http://`` and ``https://``; mount it on any
    other ``requests.Session`` the same way. ``timeout``, ``verify``, ``cert`` and
    ``proxies`` are accepted and ignored: there is no network.
    """

    def __init__(self, app: WSGIApplication) -> None:
        super().__init__()
        self.app = app
        # Streamed responses whose app iterable is still open; close() closes them
        # so a test that forgets resp.close() still runs the generator's finally:.
        self._open: set[WSGIResponseStream] = set()

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """Run the app on ``request`` and wrap what it returns in a ``requests.Response``.

        The app is called and its iterable advanced to the first non-empty chunk
        (a real server sends headers only then, and the app may call
        ``start_response`` lazily until then). Without ``stream`` the whole body
        is read here, so app errors raise from the request call itself.
        """
        environ = build_environ(request)
        # No socket to watch in-process: closing a streamed response before its
        # end is this client's way to leave (on_disconnect callbacks run then).
        watch = environ[DISCONNECT] = Disconnect(None, spawn=False)
        environ[AFTER_INLINE] = True  # after() work runs in close(), so a test sees its effect
        call = _AppCall()
        iterable = self.app(environ, call.start_response)
        body = _AppBody(iterable, call, watch)
        first = body.next_chunk()  # makes the status and headers final
        if call.status is None:
            body.close()
            raise RuntimeError(f"WSGI app {self.app!r} returned without calling start_response()")
        call.headers_sent = True
        try:
            body.expected = _expected_length(environ["REQUEST_METHOD"], call.status, call.headers)
            body.count(first)
        except WSGIProtocolError:
            body.close()
            raise
        body.held = first  # already counted: handed out first, as is

        raw = WSGIResponseStream(call.status, call.headers, body, self._open.discard)
        if not body.closed:
            self._open.add(raw)
        if not stream:
            raw.preload()
        return self._build_response(request, raw)

    def close(self) -> None:
        """Close every streamed response still open (the session is closing)."""
        for raw in list(self._open):
            raw.close()

    def _build_response(
        self, request: requests.PreparedRequest, raw: WSGIResponseStream
    ) -> requests.Response:
        # Mirrors HTTPAdapter.build_response, minus the parts that need a socket.
        response = requests.Response()
        response.status_code = raw.status
        response.reason = raw.reason
        response.headers = CaseInsensitiveDict(raw.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = raw
        url = request.url
        response.url = url.decode("utf-8") if isinstance(url, bytes) else (url or "")
        response.request = request
        # Digest auth re-sends through response.connection; requests types it as
        # HTTPAdapter, but it only ever calls send() on it.
        response.connection = self  # type: ignore[assignment]
        # The Session also extracts cookies into its own jar from the same raw.
        _extract_cookies(response.cookies, request, raw)
        return response


def build_environ(request: requests.PreparedRequest) -> WSGIEnvironment:
    """Build the PEP 3333 environ a WSGI server would pass for ``request``.

    ``PATH_INFO`` is percent-decoded and carried as latin-1 ``str`` (the WSGI
    "bytes as latin-1" rule), so ``/caf%C3%A9`` arrives as the UTF-8 bytes of
    ``/café`` and ``/a%2Fb`` as ``/a/b``; ``RAW_URI``/``REQUEST_URI`` keep the
    undecoded form, as gunicorn and werkzeug's server do. A chunked body (a
    generator passed as ``data=``) has no ``CONTENT_LENGTH``, is read lazily and
    sets ``wsgi.input_terminated``, like gevent's server.
    """
    url = request.url
    if isinstance(url, bytes):
        url = url.decode("utf-8")
    parts = urlsplit(url or "/")
    scheme = parts.scheme or "http"
    default_port = 443 if scheme == "https" else 80
    port = parts.port or default_port
    hostname = parts.hostname or "testserver"
    host = hostname if port == default_port else f"{hostname}:{port}"
    raw_path = parts.path or "/"
    raw_uri = f"{raw_path}?{parts.query}" if parts.query else raw_path

    environ: WSGIEnvironment = {
        "REQUEST_METHOD": (request.method or "GET").upper(),
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(raw_path).decode("latin-1"),
        "QUERY_STRING": parts.query,
        "RAW_URI": raw_uri,
        "REQUEST_URI": raw_uri,
        "SERVER_NAME": hostname,
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": host,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in request.headers.items():
        if "_" in name:
            # As nginx, gunicorn and microroute's servers do: "X_User" would
            # otherwise reach the app as X-User's HTTP_X_USER.
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        text = text.strip(" \t")  # OWS is no part of a value (RFC 9112 section 5)
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        environ[key] = text

    body: object = request.body
    transfer_encoding = environ.get("HTTP_TRANSFER_ENCODING", "")
    chunked = "chunked" in transfer_encoding.lower()
    if chunked:
        # RFC 9112: Transfer-Encoding overrides any Content-Length.
        environ.pop("CONTENT_LENGTH", None)
        environ["wsgi.input"] = io.BufferedReader(_IteratorInput(_iter_body(body)))
        environ["wsgi.input_terminated"] = True
    else:
        data = _body_bytes(body)
        environ["wsgi.input"] = io.BytesIO(data)
        if data and "CONTENT_LENGTH" not in environ:
            environ["CONTENT_LENGTH"] = str(len(data))
    return environ


def _to_bytes(chunk: object) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, (bytes, bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"request body chunks must be bytes or str, not {type(chunk).__name__}")


def _iter_body(body: object) -> Iterator[bytes]:
    """Yield a streamed request body piece by piece, never all at once."""
    if body is None:
        return
    read = getattr(body, "read", None)
    if read is not None:
        while chunk := read(_READ_SIZE):
            yield _to_bytes(chunk)
        return
    if isinstance(body, (str, bytes, bytearray, memoryview)):
        yield _to_bytes(body)
        return
    if not isinstance(body, Iterable):
        raise TypeError(f"cannot send a request body of type {type(body).__name__}")
    for chunk in body:
        if chunk:
            yield _to_bytes(chunk)


def _body_bytes(body: object) -> bytes:
    if body is None:
        return b""
    if isinstance(body, (str, bytes, bytearray, memoryview)):
        return _to_bytes(body)
    return b"".join(_iter_body(body))


class _IteratorInput(io.RawIOBase):
    """``wsgi.input`` for a chunked request: pulls the body iterator on demand."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        view = memoryview(buffer).cast("B")
        size = min(len(view), len(self._pending))
        view[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _checked_header(item: object) -> tuple[str, str]:
    """One ``(name, value)`` pair as a WSGI server takes it, or :class:`WSGIProtocolError`."""
    if not (isinstance(item, tuple) and len(item) == 2):
        raise WSGIProtocolError(f"a WSGI header must be a (name, value) tuple, got {item!r}")
    name, value = item
    if not isinstance(name, str) or not _TOKEN_RE.fullmatch(name):
        raise WSGIProtocolError(f"invalid header name {name!r}: it must be an RFC 9110 token")
    if not isinstance(value, str) or not _VALUE_RE.fullmatch(value):
        # A CR/LF would inject headers of its own; past latin-1 gunicorn and
        # pywsgi fail with a 500 (the app's problem, so say which header).
        raise WSGIProtocolError(
            f"header {name!r} has a value a server cannot send: {value!r} (CR, LF, NUL and"
            " other control characters are refused, and values must be latin-1)"
        )
    if name.lower() in _HOP_BY_HOP:
        raise WSGIProtocolError(
            f"header {name!r} is hop-by-hop: PEP 3333 leaves it to the server (gunicorn drops it)"
        )
    return name, value


def _expected_length(method: str, status: str, headers: list[tuple[str, str]]) -> int | None:
    """How many body bytes the response may carry: 0 when it must have none."""
    code = int(status[:3])
    lengths = [value for name, value in headers if name.lower() == "content-length"]
    if len(lengths) > 1:
        raise WSGIProtocolError(f"Content-Length given {len(lengths)} times: {lengths!r}")
    if lengths and not (lengths[0].isascii() and lengths[0].strip().isdigit()):
        raise WSGIProtocolError(f"invalid Content-Length {lengths[0]!r}")
    if code in (204, 304) or code < 200:
        if lengths and int(lengths[0]) != 0:
            # pywsgi (microroute run): "Invalid Content-Length for 204 response", a 500,
            # and the same for a 304, though RFC 9110 would allow it there.
            raise WSGIProtocolError(f"a {code} response must not have Content-Length {lengths[0]}")
        return 0
    if method == "HEAD":
        # RFC 9110 §9.3.2: no body; Content-Length may describe GET's.
        return 0
    return int(lengths[0]) if lengths else None


class _AppCall:
    """State of one app invocation: what ``start_response`` and ``write`` received."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.headers_sent = False
        # Bytes given to the legacy write() callable, sent before the next chunk.
        self.pending: deque[bytes] = deque()

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None = None,
        /,
    ) -> Callable[[bytes], object]:
        if exc_info is not None and exc_info[1] is not None:
            # PEP 3333: after headers went out an error page is impossible; re-raise.
            if self.headers_sent:
                raise exc_info[1].with_traceback(exc_info[2])
        elif self.status is not None:
            raise WSGIProtocolError(
                "start_response() was called twice without exc_info (PEP 3333 forbids it)"
            )
        if not isinstance(status, str) or not _STATUS_RE.fullmatch(status):
            raise WSGIProtocolError(f"invalid WSGI status {status!r}: expected e.g. '200 OK'")
        checked = [_checked_header(item) for item in headers]
        self.status = status
        self.headers = checked
        return self.write

    def write(self, data: bytes) -> None:
        if self.status is None:
            raise RuntimeError("write() was called before start_response()")
        if not isinstance(data, bytes):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        if data:
            self.headers_sent = True
            self.pending.append(data)


class _AppBody:
    """The app's response iterable, advanced one chunk at a time.

    ``close()`` runs exactly once: when the iterable is exhausted, when it
    raises, or when the response is closed early.
    """

    def __init__(
        self, iterable: Iterable[bytes], call: _AppCall, watch: Disconnect | None = None
    ) -> None:
        self._iterable = iterable
        self._call = call
        self._watch = watch
        #: The app's iterable ran to its end (closing it then is no disconnect).
        self._finished = False
        self.closed = False
        #: Body bytes the response may carry (0: none at all), once headers are final.
        self.expected: int | None = None
        self._seen = 0
        #: The first chunk, read (and counted) before the headers were final.
        self.held = b""
        try:
            self._iterator = iter(iterable)
        except BaseException:
            self.close()
            raise

    def count(self, chunk: bytes) -> None:
        """Hold the body to what its status, method and Content-Length allow."""
        self._seen += len(chunk)
        expected = self.expected
        if expected is not None and self._seen > expected:
            what = "no body" if expected == 0 else f"Content-Length {expected}"
            raise WSGIProtocolError(
                f"the app sent {self._seen} body bytes on a response that allows {what}"
                " (a HEAD, 1xx, 204 or 304 has no body): on a keep-alive connection the"
                " extra bytes would be read as the next response"
            )

    def _ended(self) -> None:
        expected = self.expected
        if expected and self._seen < expected:
            raise WSGIProtocolError(
                f"the body ended after {self._seen} bytes but Content-Length is {expected}:"
                " a client would wait for the rest"
            )

    def next_chunk(self) -> bytes:
        """Return the next non-empty chunk, or ``b""`` once the body is over."""
        if self.held:
            chunk, self.held = self.held, b""
            return chunk
        while True:
            if self._call.pending:
                chunk = self._call.pending.popleft()
                if self.expected is not None:
                    self._count_or_close(chunk)
                return chunk
            if self.closed:
                return b""
            try:
                chunk = next(self._iterator)
            except StopIteration:
                self._finished = True
                self.close()
                if self.expected is not None:
                    self._ended()
                continue
            except BaseException:
                self.close()
                raise
            if not isinstance(chunk, bytes):
                self.close()
                raise TypeError(f"WSGI app yielded {type(chunk).__name__}; PEP 3333 requires bytes")
            if chunk:
                if self.expected is not None:
                    self._count_or_close(chunk)
                return chunk

    def _count_or_close(self, chunk: bytes) -> None:
        try:
            self.count(chunk)
        except WSGIProtocolError:
            self.close()
            raise

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        watch = self._watch
        if watch is not None:
            if not self._finished:
                watch.fire()  # the test left before the end, as a client would
            watch.stop()
        close = getattr(self._iterable, "close", None)
        if close is not None:
            close()


class _HeaderMessage(http.client.HTTPMessage):
    """Response headers in the shape ``http.cookiejar`` reads Set-Cookie from."""

    def getheaders(self, name: str) -> list[str]:
        return list(self.get_all(name, []))


class _OriginalResponse:
    # requests' extract_cookies_to_jar looks for raw._original_response.msg.
    def __init__(self, msg: _HeaderMessage) -> None:
        self.msg = msg


class WSGIResponseStream:
    """``response.raw``: the app's body, read as the app produces it.

    Offers the parts of urllib3's ``HTTPResponse`` that ``requests`` uses:
    ``stream()`` (what ``iter_content`` calls), ``read()``, ``close()`` and
    ``release_conn()``, plus ``status``, ``reason`` and ``headers``. gzip and
    deflate bodies are decoded when ``decode_content`` is true, as urllib3 does.
    """

    def __init__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        body: _AppBody,
        on_close: Callable[[WSGIResponseStream], None],
    ) -> None:
        self.status = int(status[:3])
        self.reason = status[4:]
        self.version = 11
        self.headers = HTTPHeaderDict()
        msg = _HeaderMessage()
        for name, value in headers:
            self.headers.add(name, value)
            msg[name] = value  # appends: repeated Set-Cookie headers all survive
        self._original_response = _OriginalResponse(msg)
        self._body = body
        self._on_close = on_close
        self._buffer = bytearray()
        self._decoder = _decoder_for(self.headers.get("Content-Encoding", ""))
        self.closed = False

    def _pull(self, decode: bool) -> bool:
        """Append the next app chunk to the buffer; False once the body is over."""
        while True:
            try:
                chunk = self._body.next_chunk()
            except BaseException:
                self._on_close(self)  # the body closed itself before raising
                raise
            if not chunk:
                if decode and self._decoder is not None:
                    self._buffer += self._decoder.flush()
                    self._decoder = None
                self._on_close(self)
                return False
            if decode and self._decoder is not None:
                chunk = self._decoder.decompress(chunk)
                if not chunk:
                    continue  # e.g. only a gzip header so far
            self._buffer += chunk
            return True

    def _take(self, amt: int | None) -> bytes:
        size = len(self._buffer) if amt is None else min(amt, len(self._buffer))
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def stream(
        self, amt: int | None = 2**16, decode_content: bool | None = None
    ) -> Iterator[bytes]:
        """Yield the body as the app produces it, pieces at most ``amt`` bytes.

        A chunk larger than ``amt`` is split; a smaller one is yielded at once,
        never held back to fill ``amt``, so a test sees each chunk as it comes.
        """
        decode = decode_content is not False
        while self._buffer or self._pull(decode):
            yield self._take(amt)

    def read(
        self,
        amt: int | None = None,
        decode_content: bool | None = None,
        cache_content: bool = False,
    ) -> bytes:
        """Read ``amt`` bytes (fewer only at the end), or everything left when ``None``."""
        decode = decode_content is not False
        while (amt is None or len(self._buffer) < amt) and self._pull(decode):
            pass
        return self._take(amt)

    def preload(self) -> None:
        """Read the whole body into memory now (``stream=False``)."""
        while self._pull(True):
            pass

    def readable(self) -> bool:
        return True

    def isclosed(self) -> bool:
        return self.closed

    def release_conn(self) -> None:
        """Stop the app's iterable; called by ``Response.close()``."""
        self._body.close()
        self._on_close(self)

    def close(self) -> None:
        """Drop what is unread and close the app's iterable (PEP 3333 ``close()``)."""
        self.closed = True
        self._buffer.clear()
        self.release_conn()


class _Decompressor(Protocol):
    def decompress(self, data: bytes, /) -> bytes: ...
    def flush(self) -> bytes: ...


def _decoder_for(content_encoding: str) -> _Decompressor | None:
    encoding = content_encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return _DeflateDecoder()
    return None


class _DeflateDecoder:
    """``deflate`` should be zlib-wrapped, but some servers send it raw; accept both.

    Same approach as urllib3: try zlib, and on the first error restart raw.
    """

    def __init__(self) -> None:
        self._obj = zlib.decompressobj()
        self._seen: bytes | None = b""

    def decompress(self, data: bytes, /) -> bytes:
        if self._seen is None:
            return self._obj.decompress(data)
        self._seen += data
        try:
            out = self._obj.decompress(data)
        except zlib.error:
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
            seen, self._seen = self._seen, None
            return self._obj.decompress(seen)
        if out:
            self._seen = None
        return out

    def flush(self) -> bytes:
        return self._obj.flush()
