"""Texts of the current second, made at most once a second: the ``Date`` header's value.

A response's ``Date`` and an access-log line need the time only to the
second, and ``strftime`` costs more than the rest of a small response's head:
:class:`EverySecond` makes the text once, then hands it out until the clock
moves on.

>>> http_date()                                  # doctest: +SKIP
'Wed, 01 May 2024 12:00:00 GMT'
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["EverySecond", "http_date"]


class EverySecond:
    """A ``strftime`` text made at most once a second (the Date header, the access log)."""

    __slots__ = ("_convert", "_format", "_second", "_text")

    def __init__(self, format: str, convert: Callable[[float], time.struct_time]) -> None:
        self._format = format
        self._convert = convert
        self._second = -1
        self._text = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._text = time.strftime(self._format, self._convert(now))
            self._second = now
        return self._text


#: The ``Date`` header's value.
http_date = EverySecond("%a, %d %b %Y %H:%M:%S GMT", time.gmtime)
