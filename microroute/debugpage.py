"""The debug page: an error as a browser reads it, in debug mode only.

``App(debug=True)`` (``microroute dev``, ``microroute run --debug``) answers a
500 with its traceback. A browser (its ``Accept`` names ``text/html``) gets
an HTML page rendered by werkzeug's traceback renderer
(``werkzeug.debug.tbtools``), the user's code first: the frames of
microroute's own call into the handler are left out, so the page opens on
the handler's line. It has werkzeug's look and none of its console: no
script, no way to run code, nothing loaded from anywhere (a
``Content-Security-Policy`` that allows inline style only says so). An API
client (``curl``, ``fetch()``) gets JSON, the traceback as text, also starting
at the user's code. ``microroute dev`` shows a start-up error (a syntax error,
an import error) the same two ways.

Never turn debug mode on where anyone else can reach the server.
"""

from __future__ import annotations

import html
import importlib.resources
import re
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

from .responses import Reply, error_reply, status_line

__all__ = ["CSP", "debug_reply", "trimmed_traceback", "user_frames", "wants_html"]

#: The page runs nothing and loads nothing: inline style only.
CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

_PACKAGE = str(Path(__file__).resolve().parent)


def wants_html(environ: dict[str, Any]) -> bool:
    """A browser navigating asks for ``text/html``; ``fetch()`` and curl send ``*/*``."""
    return "text/html" in environ.get("HTTP_ACCEPT", "")


def user_frames(exc: BaseException) -> int:
    """How many leading frames of *exc*'s traceback are microroute's own call into user code."""
    skip = 0
    tb: TracebackType | None = exc.__traceback__
    # A syntax error names its file and line itself: none of its frames is the user's.
    last = 0 if isinstance(exc, SyntaxError) else 1
    while tb is not None and _ours(tb.tb_frame.f_code.co_filename):
        if tb.tb_next is None and last:
            break
        skip += 1
        tb = tb.tb_next
    return skip


def _ours(filename: str) -> bool:
    """microroute's frames, and the import machinery's (a route file failing to import)."""
    return filename.startswith((_PACKAGE, "<frozen importlib"))


def _untangled(exc: BaseException) -> BaseException:
    """*exc* without the failed static build it was raised next to, which is not its cause.

    A static build that raises is retried as a live request, inside the
    cache's ``except``: Python would show the build's failure as the context.
    """
    context = exc.__context__
    if context is not None and type(context).__name__ == "BuildFailed":
        exc.__suppress_context__ = True
    return exc


def trimmed_traceback(exc: BaseException) -> str:
    """The traceback's text, from the user's first frame (chained exceptions kept)."""
    exc = _untangled(exc)
    tb = exc.__traceback__
    for _ in range(user_frames(exc)):
        assert tb is not None
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def debug_reply(
    exc: BaseException | None,
    environ: dict[str, Any],
    status: int = 500,
    *,
    heading: str = "",
    summary: str = "",
) -> Reply:
    """*exc* as the debug page (a browser) or as JSON with its traceback (anyone else).

    *heading* replaces the page's title (the exception's type) and *summary*
    the line under it (the exception's message) and the JSON's ``error``:
    ``microroute dev`` says "The app could not start" and names the file.
    Without *exc*, the page and the JSON hold those two and no traceback.
    """
    if not wants_html(environ):
        message = summary or "Internal Server Error"
        if exc is None:
            return error_reply(status, message)
        return error_reply(status, message, traceback=trimmed_traceback(exc))
    page = render_page(exc, heading, summary).encode()
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(page))),
        ("Content-Security-Policy", CSP),
        ("Cache-Control", "no-store"),
    ]
    return status_line(status), headers, [page]


def render_page(exc: BaseException | None, heading: str = "", summary: str = "") -> str:
    """The HTML page: werkzeug's traceback rendering and style, without its console."""
    from werkzeug.debug.tbtools import DebugTraceback

    kind = type(exc).__name__ if exc is not None else "Error"
    text = summary
    if not text and exc is not None:
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    title = text.splitlines()[0] if text else kind
    parts = [
        "<!doctype html>\n",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)} // microroute</title>",
        f"<style>{_style()}</style></head>",
        '<body style="background-color: #fff"><div class="debugger">',
        f"<h1>{html.escape(heading or kind)}</h1>",
        f'<div class="detail"><p class="errormsg">{html.escape(text)}</p></div>',
    ]
    if exc is not None:
        trace = DebugTraceback(_untangled(exc), skip=user_frames(exc))
        plain = html.escape(trace.render_traceback_text())
        parts += [
            '<h2 class="traceback">Traceback <em>(most recent call last)</em></h2>',
            trace.render_traceback_html(include_title=False),
            '<div class="plain"><p>The traceback as text:</p>',
            f'<textarea cols="50" rows="10" name="code" readonly>{plain}</textarea></div>',
        ]
    parts.append(
        '<div class="explanation">microroute is in debug mode: this page shows your code to'
        " whoever can reach the server. Never run debug mode in production.</div>"
        "</div></body></html>\n"
    )
    return "".join(parts)


_STYLE: list[str] = []


def _style() -> str:
    """werkzeug's debugger style sheet, without the images its console uses."""
    if not _STYLE:
        try:
            css = (
                importlib.resources.files("werkzeug.debug")
                .joinpath("shared/style.css")
                .read_text(encoding="utf-8")
            )
        except OSError:  # a werkzeug without its shared files: plain is fine
            css = ""
        # The console's toggles load images from the debugger's own URL: no such URL here.
        css = re.sub(r"background-image:\s*url\([^)]*\);?", "", css)
        # werkzeug's script unfolds a frame's lines on a click; with no script, show them.
        css += (
            "div.traceback pre.before, div.traceback pre.after { display: block; }"
            "div.traceback span.ws { display: inline; }"
            "div.traceback pre + pre { border-top: none; }"
        )
        _STYLE.append(css)
    return _STYLE[0]
