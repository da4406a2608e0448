"""Request-scoped helpers: ``cookies()``, ``headers()`` and ``session()``.

As in Next.js, a handler reads and writes the current request's cookies
without taking a ``request`` parameter::

    from microroute import cookies, session

    @route.post("/login")
    def login(request):
        session()["user"] = request.json["name"]
        cookies().set("theme", "dark", max_age=3600)
        return {"ok": True}

The current request lives in a :class:`contextvars.ContextVar`. gevent gives
every greenlet its own context, so concurrent requests never see each other's
values. Cookies set here reach whatever response the handler returns, errors
and redirects included; a streamed response carries those set before its
first chunk.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from itsdangerous import BadData, BadSignature, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode
from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import dump_cookie, parse_cookie

from .lifecycle import Exchange
from .settings import Settings

if TYPE_CHECKING:
    from .requests import Request

__all__ = [
    "BUILD_MARK",
    "Cookies",
    "DynamicUsage",
    "RequestState",
    "Routes",
    "Session",
    "active",
    "bind",
    "cookies",
    "current",
    "headers",
    "on_disconnect",
    "session",
    "unbind",
]

# Each cookie name gets a salt of its own (":" cannot occur in a cookie name),
# so a value the app signed for one cookie never verifies as another.
_COOKIE_SALT = "microroute.cookie:"
_SESSION_SALT = "microroute.session:"
# RFC 6265 §4.1.1: a cookie name is an RFC 9110 token.
_COOKIE_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# A host name (RFC 1123 labels), as the Domain attribute takes it.
_DOMAIN = re.compile(r"\.?(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                     r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")  # fmt: skip
_DELETED: Any = object()

_current: ContextVar[RequestState] = ContextVar("microroute.request")

_UNESCAPED_CONTROLS = re.compile("[\x1a-\x1f]")


def _octal(match: re.Match[str]) -> str:
    return f"\\{ord(match.group()):03o}"


class Routes(Protocol):
    """What a helper may ask of the route table (CORS: does the route answer OPTIONS?)."""

    def has_handler(self, path: str, method: str) -> bool: ...


#: The environ key that marks a static build's synthetic request.
BUILD_MARK = "microroute.build"


class DynamicUsage(BaseException):
    """A static build called ``cookies()``, ``headers()`` or ``session()``.

    As Next.js's ``DynamicServerError``: the build is abandoned and its route
    is dynamic from then on. A ``BaseException``, so a handler's
    ``except Exception:`` does not swallow it.
    """

    def __init__(self, helper: str) -> None:
        super().__init__(helper)
        self.helper = helper


class RequestState:
    """Everything the helpers need about the request being served."""

    __slots__ = (
        "_cookies",
        "_request",
        "_session",
        "build",
        "dynamic_call",
        "environ",
        "exchange",
        "failed",
        "inner",
        "routes",
        "sent",
        "settings",
        "touched",
        "where",
    )

    #: What the innermost ``call_next`` of a route's scoped middleware runs
    #: (:mod:`microroute.dispatch`); set only for such a route, so that no
    #: other request pays for it.
    inner: Callable[[], Any]

    def __init__(
        self,
        settings: Settings,
        routes: Routes,
        environ: dict[str, Any],
        build: str | None = None,
        where: str = "",
    ) -> None:
        self.settings = settings
        self.routes = routes
        self.environ = environ
        #: The lifecycle's record of this request, when something observes it.
        self.exchange: Exchange | None = None
        self._request: Request | None = None
        self._cookies: Cookies | None = None
        self._session: Session | None = None
        #: ``None`` for a live request; for a static build, the route's
        #: ``dynamic`` setting, which decides what a helper call does.
        self.build = build
        #: The handler being built, for error messages.
        self.where = where
        #: The helper whose call abandoned this build.
        self.dynamic_call: str | None = None
        #: Set once headers have gone out: a cookie set later could not be sent.
        self.sent = False
        #: Whether cookies() or session() was used, so Set-Cookie may be due.
        self.touched = False
        #: The handler raised (its reply came from an error handler): never stored.
        self.failed = False

    @property
    def request(self) -> Request:
        """The request object, built on first use and shared by middleware and handler."""
        if self._request is None:
            from .requests import Request

            settings = self.settings
            request = Request(self.environ, None, settings.max_body_size)
            request.max_json_depth = settings.max_json_depth
            request.max_form_parts = settings.max_form_parts
            request.max_form_memory_size = settings.max_form_memory_size
            self._request = request
        return self._request

    def use_request(self, request: Request) -> None:
        """Serve *request* from now on: the one a middleware passed to ``call_next``."""
        if request is not self._request:
            self.environ = request.environ
            self._request = request

    @property
    def is_secure(self) -> bool:
        # Behind App(trust_proxy=N) the app has already applied ProxyFix to the
        # environ, so the scheme here is the one the nearest proxy reported.
        return bool(self.environ.get("wsgi.url_scheme") == "https")

    def check_build(self, helper: str) -> None:
        """A helper was called during a static build: abandon it, unless forced static.

        ``dynamic = "force-static"`` lets the handler read the synthetic
        request's empty cookies and headers; ``"error"`` makes the call an
        error naming the route; otherwise :class:`DynamicUsage` ends the build.
        """
        if self.build == "force-static":
            return
        if self.build == "error":
            raise RuntimeError(
                f'{helper} makes a request dynamic, and {self.where} sets dynamic = "error";'
                " remove the call or change the route's dynamic setting"
            )
        self.dynamic_call = helper
        raise DynamicUsage(helper)

    def set_cookie_headers(self) -> list[tuple[str, str]]:
        """The ``Set-Cookie`` headers this request produced, session included."""
        if self._session is not None and self._session.modified:
            self._session.save(self.cookies())
        if self._cookies is None:
            return []
        return [("Set-Cookie", value) for value in self._cookies.outgoing()]

    def cookies(self) -> Cookies:
        if self._cookies is None:
            self._cookies = Cookies(self)
            self.touched = True
        return self._cookies

    def session(self) -> Session:
        if self._session is None:
            self._session = Session.load(self)
            self.touched = True
        return self._session


def current(helper: str) -> RequestState:
    """The state of the request being served; *helper* names the caller in errors."""
    try:
        state = _current.get()
    except LookupError:
        raise RuntimeError(
            f"{helper} was called outside a request: call it while a route handler or"
            " middleware is running"
        ) from None
    if state.build is not None:
        state.check_build(helper)
    return state


def active() -> RequestState:
    """The current state, for the framework itself (marks nothing dynamic)."""
    return _current.get()


def bind(state: RequestState) -> Any:
    """Make *state* current; returns the token to pass to :func:`unbind`."""
    return _current.set(state)


def unbind(token: Any) -> None:
    _current.reset(token)


def _signing_keys(app: Settings) -> list[bytes]:
    """The app's keys, oldest first: itsdangerous signs with the last one."""
    key = app.secret_key
    if not key:
        raise RuntimeError(
            "signed cookies and session() need a secret key: pass App(secret_key=...)"
            " or set the MICROROUTE_SECRET_KEY environment variable"
        )
    keys = list(key) if isinstance(key, (list, tuple)) else [key]
    return [k.encode() if isinstance(k, str) else k for k in keys]


def _signer(app: Settings, name: str) -> TimestampSigner:
    """The signer for cookie *name*: its own salt, the app's keys (the last one signs)."""
    return TimestampSigner(_signing_keys(app), salt=_COOKIE_SALT + name)


class Cookies:
    """The cookies of the current request *and* its response.

    Reads see this request's cookies, updated by any ``set``/``delete`` made
    while handling it. Writes become ``Set-Cookie`` headers on the response.
    """

    def __init__(self, state: RequestState) -> None:
        self._state = state
        # werkzeug decodes the header strictly as UTF-8; invalid bytes become
        # U+FFFD first, so a garbled cookie cannot make cookies() a 500.
        raw: str = state.environ.get("HTTP_COOKIE", "")
        fixed = raw.encode("latin-1", "replace").decode("utf-8", "replace")
        self._incoming = parse_cookie(fixed.encode().decode("latin-1"))
        self._changes: dict[str, Any] = {}
        self._headers: dict[tuple[str, str, str | None], str] = {}

    def _raw(self, name: str) -> str | None:
        value = self._changes.get(name, None)
        if value is _DELETED:
            return None
        if value is not None:
            return str(value)
        return self._incoming.get(name)

    def get(
        self, name: str, default: Any = None, *, signed: bool = False, max_age: int | None = None
    ) -> Any:
        """The cookie's value, or *default*.

        With ``signed=True`` the signature is checked (and its age, with
        *max_age* seconds): a tampered, expired or unsigned value, or one
        signed for another cookie name, reads as missing.
        """
        value = self._raw(name)
        if value is None:
            return default
        if not signed:
            return value
        try:
            # base64's last character has spare bits: a changed one can decode
            # to the same signature. Only the canonical spelling is untampered.
            signature = value.rpartition(".")[2]
            if base64_encode(base64_decode(signature)).decode() != signature:
                return default
            return _signer(self._state.settings, name).unsign(value, max_age=max_age).decode()
        except (BadData, UnicodeDecodeError):
            return default

    def has(self, name: str) -> bool:
        """Whether the request (as changed so far) has a cookie called *name*."""
        return self._raw(name) is not None

    def all(self) -> dict[str, str]:
        """Every cookie, as ``{name: value}`` (raw values, signatures included)."""
        names = set(self._incoming) | set(self._changes)
        return {name: value for name in sorted(names) if (value := self._raw(name)) is not None}

    def __iter__(self) -> Iterator[str]:
        return iter(self.all())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.has(name)

    def set(
        self,
        name: str,
        value: str,
        *,
        max_age: int | None = None,
        expires: datetime | int | float | None = None,
        path: str = "/",
        domain: str | None = None,
        secure: bool | None = None,
        httponly: bool = True,
        samesite: str | None = "lax",
        signed: bool = False,
    ) -> None:
        """Set a cookie on the response.

        ``secure`` defaults to whether the request came over https (behind a
        proxy, as its ``X-Forwarded-Proto`` says, with ``App(trust_proxy=N)``);
        ``samesite="none"`` forces it on, as browsers require (``secure=False``
        with it is an error).
        ``signed=True`` signs the value with the app's secret key and the
        cookie's *name*, so it verifies under this name only; read it back
        with ``get(name, signed=True)``. *name* must be an RFC 6265 token and
        *domain* a host name; a bad one raises :class:`ValueError` naming
        the cookie, as does a CR, LF or NUL in *value*.
        """
        self._check_open(name, domain)
        if not isinstance(value, str):
            raise TypeError(f"cookie {name!r}: the value must be a str, got {type(value).__name__}")
        if "\r" in value or "\n" in value or "\x00" in value:
            raise ValueError(f"cookie {name!r}: the value contains a line break or a NUL")
        if signed:
            value = _signer(self._state.settings, name).sign(value).decode()
        if samesite is not None:
            samesite = samesite.capitalize()
            if samesite not in ("Lax", "Strict", "None"):
                raise ValueError(f"cookie {name!r}: samesite must be 'lax', 'strict' or 'none'")
            if samesite == "None":
                # Browsers drop a SameSite=None cookie that is not Secure, silently.
                if secure is False:
                    raise ValueError(
                        f"cookie {name!r}: samesite='none' needs secure=True (browsers drop"
                        " the cookie otherwise); leave secure unset or use samesite='lax'"
                    )
                secure = True
        header = dump_cookie(
            name,
            value,
            max_age=max_age,
            expires=expires,
            path=path,
            domain=domain,
            secure=self._state.is_secure if secure is None else secure,
            httponly=httponly,
            samesite=samesite,
        )
        # werkzeug escapes control characters in a cookie value as \ooo, but
        # misses \x1a-\x1f, which no server may send in a header: escape
        # those the same way (its parse_cookie reads them back).
        self._headers[(name, path, domain)] = _UNESCAPED_CONTROLS.sub(_octal, header)
        self._changes[name] = value

    def delete(self, name: str, *, path: str = "/", domain: str | None = None) -> None:
        """Expire the cookie in the browser (same *path* and *domain* as when set)."""
        self._check_open(name, domain)
        self._headers[(name, path, domain)] = dump_cookie(
            name,
            "",
            max_age=0,
            expires=0,
            path=path,
            domain=domain,
            secure=self._state.is_secure,
            httponly=True,
            samesite="Lax",
        )
        self._changes[name] = _DELETED

    def _check_open(self, name: str, domain: str | None) -> None:
        if self._state.sent:
            raise RuntimeError(
                f"cookie {name!r} set after the response headers were sent; in a streamed"
                " response, set cookies before the first chunk"
            )
        if not isinstance(name, str) or not _COOKIE_NAME.fullmatch(name):
            raise ValueError(
                f"invalid cookie name {name!r}: a cookie name is letters, digits and"
                " !#$%&'*+-.^_`|~ (an RFC 6265 token)"
            )
        if domain is not None and not (isinstance(domain, str) and _DOMAIN.fullmatch(domain)):
            raise ValueError(
                f"cookie {name!r}: domain {domain!r} is not a host name (like 'example.com')"
            )

    def outgoing(self) -> list[str]:
        return list(self._headers.values())

    def __repr__(self) -> str:
        return f"<Cookies {self.all()!r}>"


class Session(dict[str, Any]):
    """A dict kept in a signed cookie; written to the response only when changed.

    Emptying it (``session().clear()``) deletes the cookie. Mutating a nested
    value in place is invisible to it: assign again, or set
    ``session().modified = True``.
    """

    modified: bool

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        existed: bool = False,
        state: RequestState | None = None,
    ) -> None:
        super().__init__(data or {})
        self.modified = False
        self._existed = existed
        self._state = state

    @classmethod
    def load(cls, state: RequestState) -> Session:
        app = state.settings
        raw = state.cookies().get(app.session_cookie)
        if raw is None:
            return cls(state=state)
        try:
            data = _serializer(app, app.session_cookie).loads(raw, max_age=app.session_max_age)
        except BadSignature:
            return cls(state=state)
        return cls(data if isinstance(data, dict) else {}, existed=True, state=state)

    def save(self, cookies: Cookies) -> None:
        app = cookies._state.settings
        if not self:
            if self._existed:
                cookies.delete(app.session_cookie)
            return
        value = _serializer(app, app.session_cookie).dumps(dict(self))
        assert isinstance(value, str)
        cookies.set(app.session_cookie, value, max_age=app.session_max_age)

    def _changed(self) -> None:
        if self._state is not None and self._state.sent:
            # Saved with the response headers, which are gone: fail loudly
            # rather than drop the change.
            raise RuntimeError(
                "session() changed after the response headers were sent; in a streamed"
                " response, change the session before the first chunk"
            )
        self.modified = True

    def __setitem__(self, key: str, value: Any) -> None:
        self._changed()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._changed()
        super().__delitem__(key)

    def clear(self) -> None:
        self._changed()
        super().clear()

    def pop(self, key: str, *default: Any) -> Any:
        self._changed()
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        self._changed()
        return super().popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self._changed()
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._changed()
        super().update(*args, **kwargs)


def _serializer(app: Settings, name: str) -> URLSafeTimedSerializer:
    """The session's serializer, salted with its cookie's *name* as signed cookies are."""
    return URLSafeTimedSerializer(_signing_keys(app), salt=_SESSION_SALT + name)


def cookies() -> Cookies:
    """The current request's cookies, readable and writable. See :class:`Cookies`."""
    return current("cookies()").cookies()


def headers() -> EnvironHeaders:
    """The current request's headers (read-only, case-insensitive)."""
    return EnvironHeaders(current("headers()").environ)


def on_disconnect(callback: Callable[[], Any]) -> None:
    """Run *callback* (no arguments) once, if the client goes before the response is done.

    The Fetch API's ``request.signal`` for Python: close an upstream call, stop
    a long computation. It runs in a greenlet of its own, in the request's
    context, as soon as the server sees the connection close (or at once if
    it already has); its errors are logged. Without a server that watches the
    connection (``microroute run``, either gunicorn worker) it never runs; the
    TestClient runs it when a test closes a streamed response early. See
    :mod:`microroute.disconnect`.
    """
    from .disconnect import DISCONNECT

    watch = current("on_disconnect()").environ.get(DISCONNECT)
    if watch is not None:
        watch.on_disconnect(callback)


def session() -> Session:
    """The current request's session: a dict in a signed cookie (needs a secret key)."""
    return current("session()").session()
