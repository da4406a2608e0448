"""Settings: the values ``App(...)``'s keyword arguments set, checked once, frozen.

Every stage below ``App`` reads its configuration from one :class:`Settings`
object instead of from the app itself, so no lower module needs to know that
an ``App`` exists (and none imports it). ``App`` builds it in ``__init__``;
a change after start-up (``app.debug = True`` from the CLI) makes a new one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .requests import DEFAULT_MAX_JSON_DEPTH

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_JSON_DEPTH",
    "DEFAULT_SESSION_MAX_AGE",
    "Settings",
    "proxy_hops",
]

DEFAULT_MAX_BODY_SIZE = 16 * 1024 * 1024
DEFAULT_SESSION_MAX_AGE = 14 * 24 * 3600
#: One signing key, or several with the newest last (the last one signs).
SecretKey = str | bytes | list[str | bytes] | tuple[str | bytes, ...]


@dataclass(frozen=True, slots=True)
class Settings:
    """What the stages of a request read; see :class:`~microroute.App` for each."""

    debug: bool = False
    secret_key: SecretKey | None = None
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    #: How many proxies' ``X-Forwarded-*`` headers are believed (0: none).
    trust_proxy: int = 0
    session_cookie: str = "session"
    session_max_age: int = DEFAULT_SESSION_MAX_AGE
    max_json_depth: int = DEFAULT_MAX_JSON_DEPTH
    max_form_parts: int = 1000
    max_form_memory_size: int = 500_000
    handler_timeout: float | None = None
    static_host: str = "localhost"
    static_by_default: bool = True

    def __post_init__(self) -> None:
        size = self.max_body_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"max_body_size must be a number of bytes, got {size!r}")
        timeout = self.handler_timeout
        if timeout is not None and not timeout > 0:
            raise ValueError(f"handler_timeout must be a number of seconds > 0, got {timeout!r}")

    @staticmethod
    def secret_from_env(given: SecretKey | None) -> SecretKey | None:
        """*given*, else ``MICROROUTE_SECRET_KEY``, else ``None``."""
        return given or os.environ.get("MICROROUTE_SECRET_KEY") or None


def proxy_hops(trust_proxy: bool | int) -> int:
    """``App(trust_proxy=...)`` as a number of proxies: ``True`` is one."""
    if isinstance(trust_proxy, bool):
        return int(trust_proxy)
    if isinstance(trust_proxy, int) and trust_proxy >= 0:
        return trust_proxy
    raise ValueError(f"trust_proxy must be True, False or a number of proxies, got {trust_proxy!r}")
