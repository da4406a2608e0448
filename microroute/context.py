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
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any

from itsdangerous import BadData, BadSignature, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode
from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import dump_cookie, parse_cookie

if TYPE_CHECKING:
    from .app import App
    from .requests import Request

__all__ = [
    "Cookies",
    "RequestState",
    "Session",
    "active",
    "bind",
    "cookies",
    "current",
    "headers",
    "session",
    "unbind",
]

SecretKey = str | bytes | list[str | bytes] | tuple[str | bytes, ...]

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


class RequestState:
    """Everything the helpers need about the request being served."""

    __slots__ = (
        "_cookies",
        "_request",
        "_session",
        "app",
        "dynamic_call",
        "environ",
        "failed",
        "mode",
        "sent",
        "touched",
        "where",
        "writes",
        "writes_at_start",
    )

    def __init__(self, app: App, environ: dict[str, Any]) -> None:
        self.app = app
        self.environ = environ
        self._request: Request | None = None
        self._cookies: Cookies | None = None
        self._session: Session | None = None
        #: Set once headers have gone out: a cookie set later could not be sent.
        self.sent = False
        #: Whether cookies() or session() was used, so Set-Cookie may be due.
        self.touched = False
        #: The first helper the handler called ("cookies()", ...), if any.
        self.dynamic_call: str | None = None
        #: The running route's ``dynamic`` config when not "auto", and its name.
        self.mode: str | None = None
        self.where = ""
        #: The handler raised (its reply came from an error handler): never stored.
        self.failed = False
        #: Cookie and session writes so far, to tell the handler's own apart.
        self.writes = 0
        self.writes_at_start = 0

    @property
    def request(self) -> Request:
        """The request object, built on first use and shared by middleware and handler."""
        if self._request is None:
            from .requests import Request

            app = self.app
            request = Request(self.environ, None, app.max_body_size)
            request.max_json_depth = app.max_json_depth
            request.max_form_parts = app.max_form_parts
            request.max_form_memory_size = app.max_form_memory_size
            self._request = request
        return self._request

    @property
    def is_secure(self) -> bool:
        if self.environ.get("wsgi.url_scheme") == "https":
            return True
        if self.app.trust_proxy:
            proto = str(self.environ.get("HTTP_X_FORWARDED_PROTO", ""))
            return proto.split(",")[0].strip().lower() == "https"
        return False

    def enter_handler(self, mode: str, where: str) -> tuple[Any, ...]:
        """Start the handler's part of the request; returns what to restore after.

        What makes a response dynamic, or unfit to store, is judged on the
        handler alone: helper calls and cookie writes made by middleware do
        not count. A route's ``dynamic = "force-static"`` hands the handler an
        empty query, headers and cookies; ``"error"`` makes cookies(),
        headers() and session() raise, naming *where*. Both end with the
        handler, so middleware after ``call_next`` sees the real request.
        """
        saved = (self.environ, self._request)
        self.dynamic_call = None
        self.failed = False
        self.writes_at_start = self.writes
        if mode == "force-static" or mode == "error":
            self.mode = mode
            self.where = where
        if mode == "force-static":
            from .cache import static_environ

            self.environ = static_environ(self.environ)
            self._request = None
            self.cookies().hidden = True
        return saved

    def leave_handler(self, saved: tuple[Any, ...]) -> None:
        if self.mode == "force-static" and self._cookies is not None:
            self._cookies.hidden = False
        self.mode = None
        self.environ, self._request = saved

    @property
    def handler_wrote_cookies(self) -> bool:
        """Whether the handler itself set or deleted a cookie, or changed the session."""
        return self.writes != self.writes_at_start

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
    mode = state.mode
    if mode is None:
        if state.dynamic_call is None:
            state.dynamic_call = helper
    elif mode == "error":
        raise RuntimeError(
            f'{helper} makes a request dynamic, and {state.where} sets dynamic = "error";'
            " remove the call or change the route's dynamic setting"
        )
    return state


def active() -> RequestState:
    """The current state, for the framework itself (marks nothing dynamic)."""
    return _current.get()


def bind(state: RequestState) -> Any:
    """Make *state* current; returns the token to pass to :func:`unbind`."""
    return _current.set(state)


def unbind(token: Any) -> None:
    _current.reset(token)


def _signing_keys(app: App) -> list[bytes]:
    """The app's keys, oldest first: itsdangerous signs with the last one."""
    key = app.secret_key
    if not key:
        raise RuntimeError(
            "signed cookies and session() need a secret key: pass App(secret_key=...)"
            " or set the MICROROUTE_SECRET_KEY environment variable"
        )
    keys = list(key) if isinstance(key, (list, tuple)) else [key]
    return [k.encode() if isinstance(k, str) else k for k in keys]


def _signer(app: App, name: str) -> TimestampSigner:
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
        self._hidden_changes: dict[str, Any] | None = None

    @property
    def hidden(self) -> bool:
        """While a force-static handler runs, it sees none of the request's cookies.

        Neither those the browser sent nor those middleware set before it; its
        own sets and deletes still go out, and merge back when it is done.
        """
        return self._hidden_changes is not None

    @hidden.setter
    def hidden(self, value: bool) -> None:
        if value and self._hidden_changes is None:
            self._hidden_changes, self._changes = self._changes, {}
        elif not value and self._hidden_changes is not None:
            self._hidden_changes.update(self._changes)
            self._changes, self._hidden_changes = self._hidden_changes, None

    def _raw(self, name: str) -> str | None:
        value = self._changes.get(name, None)
        if value is _DELETED:
            return None
        if value is not None:
            return str(value)
        return None if self.hidden else self._incoming.get(name)

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
            return _signer(self._state.app, name).unsign(value, max_age=max_age).decode()
        except (BadData, UnicodeDecodeError):
            return default

    def has(self, name: str) -> bool:
        """Whether the request (as changed so far) has a cookie called *name*."""
        return self._raw(name) is not None

    def all(self) -> dict[str, str]:
        """Every cookie, as ``{name: value}`` (raw values, signatures included)."""
        names = set(self._changes) if self.hidden else set(self._incoming) | set(self._changes)
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
        proxy, with ``App(trust_proxy=True)``); ``samesite="none"`` forces it
        on, as browsers require (``secure=False`` with it is an error).
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
            value = _signer(self._state.app, name).sign(value).decode()
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
        self._headers[(name, path, domain)] = header
        self._changes[name] = value
        self._state.writes += 1

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
        self._state.writes += 1

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
        app = state.app
        raw = state.cookies().get(app.session_cookie)
        if raw is None:
            return cls(state=state)
        try:
            data = _serializer(app, app.session_cookie).loads(raw, max_age=app.session_max_age)
        except BadSignature:
            return cls(state=state)
        return cls(data if isinstance(data, dict) else {}, existed=True, state=state)

    def save(self, cookies: Cookies) -> None:
        app = cookies._state.app
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
        if self._state is not None:
            self._state.writes += 1

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


def _serializer(app: App, name: str) -> URLSafeTimedSerializer:
    """The session's serializer, salted with its cookie's *name* as signed cookies are."""
    return URLSafeTimedSerializer(_signing_keys(app), salt=_SESSION_SALT + name)


def cookies() -> Cookies:
    """The current request's cookies, readable and writable. See :class:`Cookies`."""
    return current("cookies()").cookies()


def headers() -> EnvironHeaders:
    """The current request's headers (read-only, case-insensitive)."""
    return EnvironHeaders(current("headers()").environ)


def session() -> Session:
    """The current request's session: a dict in a signed cookie (needs a secret key)."""
    return current("session()").session()
