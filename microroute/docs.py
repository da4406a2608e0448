"""The docs pages of ``App(docs="/docs")``: Swagger UI from the app itself, or a plain page.

:func:`docs_router` serves the OpenAPI document at ``/openapi.json`` and, at
the docs path, one of two pages (``App(docs_ui=...)``):

* ``"swagger"`` (the default): Swagger UI, with try-it-out and the document's
  security schemes (an *Authorize* button). Its assets come from the
  ``swagger-ui-py`` package (``pip install "microroute[docs]"``), which ships
  Swagger UI 5, the first to read OpenAPI 3.1; they are served by the app,
  from the docs path, so the page fetches nothing from another origin. The
  page has no inline script: the script that starts Swagger UI is a file of
  its own (``/docs/init.js``), so the page runs under a strict
  ``Content-Security-Policy`` (``script-src 'self'``, ``connect-src 'self'``).
* ``"plain"``: an HTML page written here, server-side, that loads nothing at
  all: no script, no stylesheet, no CDN. Every operation, grouped by tag, with
  its parameters' types, defaults and limits.

Both read the document once per request for the page (a static GET: cached
like any other). ``swagger_ui_assets()`` finds the package without importing it
(its ``__init__`` imports Jinja2 and PyYAML, which the page does not need).
"""

from __future__ import annotations

import functools
import html
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from .errors import StartupError
from .openapi import DOCS_MARK
from .responses import JSON_TYPE, Response
from .routing import Router

__all__ = ["DOCS_UIS", "DocsUI", "docs_router", "render_page", "swagger_ui_assets"]

DocsUI = Literal["swagger", "plain"]
#: The values ``App(docs_ui=...)`` takes.
DOCS_UIS: tuple[str, ...] = ("swagger", "plain")

DOCS_EXTRA = 'pip install "microroute[docs]"'

#: The files of the Swagger UI distribution the page loads, and their types.
_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "index.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
}

#: Swagger UI draws with its own stylesheet and inline SVG, and fetches the
#: document and the try-it-out requests from this origin: nothing else.
_SWAGGER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'none';"
    " frame-ancestors 'none'"
)
#: The plain page loads nothing: say so, and a stray injection could not either.
_PLAIN_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

#: Schema keywords the plain page shows as a parameter's limits.
_LIMITS = (
    ("minimum", ">= {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "<= {}"),
    ("exclusiveMaximum", "< {}"),
    ("multipleOf", "multiple of {}"),
    ("minLength", "length >= {}"),
    ("maxLength", "length <= {}"),
    ("pattern", "matches {}"),
    ("minItems", ">= {} items"),
    ("maxItems", "<= {} items"),
    ("format", "format {}"),
)


def swagger_ui_assets() -> Path:
    """The folder of Swagger UI's files, from the ``swagger-ui-py`` package.

    Raises :class:`~microroute.errors.StartupError` naming the extra when the
    package is not installed.
    """
    spec = importlib.util.find_spec("swagger_ui")
    folder = Path(spec.origin).parent / "static" if spec and spec.origin else None
    if folder is None or not (folder / "swagger-ui-bundle.js").is_file():
        raise StartupError(
            "App(docs=...) serves Swagger UI from the swagger-ui-py package, which is not"
            f' installed: {DOCS_EXTRA}, or App(docs=..., docs_ui="plain") for the page'
            " without script"
        )
    return folder


@functools.cache
def _asset(folder: Path, name: str) -> bytes:
    # Read once per process: the files are the package's, and never change under it.
    return (folder / name).read_bytes()


def docs_router(
    make_document: Callable[[], dict[str, Any]],
    docs_path: str,
    spec_path: str = "/openapi.json",
    ui: str = "swagger",
) -> Router:
    """A router serving *spec_path* (the JSON document) and, at *docs_path*, the page.

    *ui* is ``"swagger"`` (Swagger UI, whose files it serves below *docs_path*)
    or ``"plain"`` (a page without script). A missing Swagger UI package is a
    :class:`~microroute.errors.StartupError`, raised here, at start-up.
    """
    if ui not in DOCS_UIS:
        raise StartupError(f"docs_ui must be one of {', '.join(map(repr, DOCS_UIS))}; got {ui!r}")
    router = Router()
    docs_path = docs_path.rstrip("/") or "/"

    def openapi_json() -> Response:
        """The OpenAPI document."""
        data = json.dumps(make_document(), separators=(",", ":")).encode()
        return Response(data, content_type=JSON_TYPE)

    handlers: list[tuple[str, Callable[..., Any]]] = [(spec_path, openapi_json)]
    if ui == "plain":

        def plain_page() -> Response:
            """The API documentation page, without script."""
            page = render_page(make_document(), spec_path)
            return _page(page, _PLAIN_CSP)

        handlers.append((docs_path, plain_page))
    else:
        handlers.extend(_swagger_handlers(make_document, docs_path, spec_path))
    for path, handler in handlers:
        setattr(handler, DOCS_MARK, True)
        router.add(path, handler, methods=["GET"])
    return router


def _page(text: str, policy: str) -> Response:
    response = Response(text, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _swagger_handlers(
    make_document: Callable[[], dict[str, Any]], docs_path: str, spec_path: str
) -> list[tuple[str, Callable[..., Any]]]:
    folder = swagger_ui_assets()
    base = "" if docs_path == "/" else docs_path

    def swagger_page() -> Response:
        """The API documentation page: Swagger UI."""
        title = html.escape(str(make_document().get("info", {}).get("title", "API")))
        return _page(_SWAGGER_PAGE.format(title=title, base=html.escape(base)), _SWAGGER_CSP)

    config = {
        "url": spec_path,
        "dom_id": "#swagger-ui",
        "deepLinking": True,
        "validatorUrl": None,  # Swagger UI would ask validator.swagger.io otherwise
        "displayRequestDuration": True,
        "showExtensions": True,
        "showCommonExtensions": True,
        "defaultModelsExpandDepth": 1,
    }
    init_script = _SWAGGER_INIT.replace("CONFIG", json.dumps(config, indent=2)).encode()

    def swagger_init() -> Response:
        """The script that starts Swagger UI: a file, so the page needs no inline script."""
        return _asset_response(init_script, "text/javascript; charset=utf-8")

    handlers: list[tuple[str, Callable[..., Any]]] = [
        (docs_path, swagger_page),
        (f"{base}/init.js", swagger_init),
    ]
    for name, content_type in _ASSETS.items():
        handlers.append((f"{base}/{name}", _asset_handler(folder, name, content_type)))
    return handlers


def _asset_handler(folder: Path, name: str, content_type: str) -> Callable[[], Response]:
    def asset() -> Response:
        """A file of Swagger UI's distribution."""
        return _asset_response(_asset(folder, name), content_type)

    asset.__name__ = asset.__qualname__ = "swagger_ui_" + name.replace("-", "_").replace(".", "_")
    return asset


def _asset_response(data: bytes, content_type: str) -> Response:
    response = Response(data, content_type=content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="{base}/swagger-ui.css">
<link rel="stylesheet" href="{base}/index.css">
<link rel="icon" type="image/png" href="{base}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{base}/swagger-ui-bundle.js"></script>
<script src="{base}/init.js"></script>
</body>
</html>
"""

_SWAGGER_INIT = """// Starts Swagger UI on this app's OpenAPI document (microroute.docs).
window.ui = SwaggerUIBundle(
  Object.assign(CONFIG, {
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "BaseLayout",
  })
);
"""


# -- the plain page ----------------------------------------------------------------


def render_page(doc: dict[str, Any], spec_url: str) -> str:
    """An HTML page listing every operation of *doc*, grouped by tag; no script.

    Each parameter shows where it comes from, whether it is required, its
    type, its default and its limits, as the document's schema says.
    """
    esc = html.escape
    components = doc.get("components", {}).get("schemas", {})
    groups: dict[str, list[str]] = {}
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            params = "".join(
                f"<li>{_describe_parameter(p, components)}</li>"
                for p in operation.get("parameters", [])
            )
            body = operation.get("requestBody", {}).get("content", {}).get(JSON_TYPE, {})
            body_type = _type_of(body.get("schema", {}), components) if body else ""
            if body_type and operation.get("requestBody", {}).get("required"):
                body_type += ", required"
            row = (
                '<tr class="operation">'
                f'<td class="method">{esc(method.upper())}</td>'
                f'<td class="path"><code>{esc(path)}</code></td>'
                f"<td>{esc(operation.get('summary', ''))}</td>"
                f'<td class="parameters"><ul>{params}</ul></td>'
                f"<td>{esc(body_type)}</td>"
                f"<td>{esc(', '.join(operation.get('responses', {})))}</td>"
                "</tr>"
            )
            for tag in operation.get("tags") or ["default"]:
                groups.setdefault(tag, []).append(row)
    info = doc.get("info", {})
    title = esc(str(info.get("title", "API")))
    version = esc(str(info.get("version", "")))
    description = info.get("description")
    sections = "".join(
        f'<section class="tag"><h2>{esc(tag)}</h2><table><thead><tr><th>Method</th>'
        "<th>Path</th><th>Summary</th><th>Parameters</th><th>Body</th><th>Responses</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
        for tag, rows in groups.items()
    )
    schema_json = esc(json.dumps(doc.get("components", {}), indent=2))
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem}"
        "table{border-collapse:collapse;margin-bottom:1rem}td,th{border:1px solid #ccc;"
        "padding:.3rem .6rem;text-align:left;vertical-align:top}.method{font-weight:bold}"
        "ul{margin:0;padding-left:1rem}.version{color:#666;font-size:.6em}</style>"
        f'</head><body><h1>{title} <span class="version">{version}</span></h1>'
        + (f'<p class="description">{esc(str(description))}</p>' if description else "")
        + f'<p>OpenAPI document: <a href="{esc(spec_url)}">{esc(spec_url)}</a></p>'
        + sections
        + f"<h2>Schemas</h2><pre>{schema_json}</pre></body></html>\n"
    )


def _describe_parameter(parameter: dict[str, Any], components: dict[str, Any]) -> str:
    """``limit`` (query, integer, default 10, >= 1, <= 100), escaped for HTML."""
    schema = _resolve(parameter.get("schema", {}), components)
    parts = [parameter.get("in", ""), _type_of(parameter.get("schema", {}), components)]
    if parameter.get("required"):
        parts.append("required")
    if "default" in schema:
        parts.append(f"default {json.dumps(schema['default'])}")
    if "enum" in schema:
        parts.append("one of " + ", ".join(json.dumps(v) for v in schema["enum"]))
    for keyword, text in _LIMITS:
        if keyword in schema:
            parts.append(text.format(schema[keyword]))
    items = _resolve(schema.get("items", {}), components)
    for keyword, text in _LIMITS:
        if keyword in items and keyword not in ("minItems", "maxItems"):
            parts.append("each " + text.format(items[keyword]))
    name = html.escape(str(parameter.get("name", "")))
    details = html.escape(", ".join(p for p in parts if p))
    return f'<code class="name">{name}</code> <span class="details">({details})</span>'


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """A ``$ref`` to a component, followed (once is enough for a parameter's schema)."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        found = components.get(ref.rsplit("/", 1)[-1])
        if isinstance(found, dict):
            return found
    return schema


def _type_of(schema: dict[str, Any], components: dict[str, Any]) -> str:
    """A schema's type in a word or two: ``integer``, ``array of string``, ``NewBook``."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        found = components.get(name, {})
        return name if "properties" in found or "enum" not in found else _type_of(found, {})
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            return " or ".join(_type_of(s, components) for s in schema[combinator])
    kind = schema.get("type", "")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return f"array of {_type_of(schema.get('items', {}), components) or 'any'}"
    if not kind and "enum" in schema:
        return "enum"
    return str(kind)
