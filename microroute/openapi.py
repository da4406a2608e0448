"""OpenAPI 3.1: the route table described as a document.

:func:`document` walks the app's routes once per call: each path (Next.js
segments written ``{id}``), each method with a handler, its docstring as the
summary, its typed parameters (:mod:`microroute.typed`) as path and query
parameters, its body as the request body and its return annotation as the
response. The JSON Schemas come from the validating engine itself
(``msgspec.json.schema_components``, pydantic's ``model_json_schema``), so the
document says exactly what the validation accepts: a parameter's type, its
default and its limits are in its schema.

Operations are tagged by their path's first segment (past ``api`` and a
version such as ``v1``), so docs pages group them. A handler whose return
annotation is ``tuple[Model, Literal[201]]`` is documented with that status.
The pages that show the document are :mod:`microroute.docs`.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from .errors import StartupError
from .responses import JSON_TYPE
from .table import Route
from .typed import Binder, read_annotations, resolve_annotations, response_type

__all__ = ["DOCS_MARK", "document", "operation_tag"]

#: Set on the docs' own handlers, which the document leaves out.
DOCS_MARK = "__microroute_docs__"

_REF = "#/components/schemas/{name}"
#: Leading path segments that say nothing about what an operation is about.
_PREFIX_SEGMENT = re.compile(r"api|v\d+(\.\d+)*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INVALID = {
    "description": "Invalid request: every problem, with its location and kind",
    "content": {
        JSON_TYPE: {
            "schema": {
                "type": "object",
                "required": ["error", "detail"],
                "properties": {
                    "error": {"type": "string"},
                    "detail": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["loc", "msg", "type"],
                            "properties": {
                                "loc": {
                                    "type": "array",
                                    "items": {"type": ["string", "integer"]},
                                },
                                "msg": {"type": "string"},
                                "type": {"type": "string"},
                            },
                        },
                    },
                },
            }
        }
    },
}
_ERROR = {
    "content": {
        JSON_TYPE: {
            "schema": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            }
        }
    }
}


def openapi_path(route: Route) -> list[str]:
    """The route's path(s) in OpenAPI's spelling: ``/posts/[id]`` -> ``/posts/{id}``.

    An optional catch-all (``[[...slug]]``) is two paths: without it and with it.
    """
    parts: list[str] = []
    bare: str | None = None
    for kind, text in route.pattern.segments:
        if kind == "static":
            parts.append(text)
            continue
        found = _NAME.findall(text.split(":")[-1]) if kind == "werkzeug" else _NAME.findall(text)
        if kind == "optional":
            bare = "/" + "/".join(parts)
        parts.append("{" + found[-1] + "}")
    full = "/" + "/".join(parts)
    return [bare, full] if bare is not None else [full]


class _Schemas:
    """Collects the types an app's operations mention; one components section for all."""

    def __init__(self) -> None:
        self.msgspec_types: list[Any] = []
        self.components: dict[str, Any] = {}
        self._refs: list[tuple[dict[str, Any], Any]] = []
        self._models: list[tuple[dict[str, Any], Any, str]] = []

    def ref(self, tp: Any, *, sent: bool = False) -> dict[str, Any]:
        """A placeholder schema for *tp*, filled in by :meth:`finish`.

        *sent*: *tp* is a response, described as it is serialized (a pydantic
        model's aliases and computed fields can make that differ from its input).
        """
        holder: dict[str, Any] = {}
        pydantic = sys.modules.get("pydantic")
        if pydantic is not None and isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
            self._models.append((holder, tp, "serialization" if sent else "validation"))
            return holder
        if self.describable(tp):
            self._refs.append((holder, tp))
        return holder

    @staticmethod
    def describable(tp: Any) -> bool:
        """Whether the engine can write a schema for *tp* (a Response cannot)."""
        pydantic = sys.modules.get("pydantic")
        if pydantic is not None and isinstance(tp, type) and issubclass(tp, pydantic.BaseModel):
            return True
        try:
            msgspec.json.schema(tp)
        except TypeError:
            return False
        return True

    def finish(self) -> None:
        if self._models:
            # All at once: pydantic names a model whose input and output differ
            # "Model-Input" and "Model-Output", and keeps nested names apart.
            from pydantic.json_schema import models_json_schema

            keys: Any = list(dict.fromkeys((tp, mode) for _, tp, mode in self._models))
            found: Any
            found, top = models_json_schema(keys, ref_template=_REF.replace("{name}", "{model}"))
            for holder, tp, mode in self._models:
                holder.update(found[tp, mode])
            self.components.update(top.get("$defs", {}))
        if not self._refs:
            return
        types = [tp for _, tp in self._refs]
        schemas, components = msgspec.json.schema_components(types, ref_template=_REF)
        for (holder, _), schema in zip(self._refs, schemas, strict=True):
            holder.update(_typed_enum(schema))
        self.components.update({name: _typed_enum(c) for name, c in components.items()})


def _typed_enum(schema: dict[str, Any]) -> dict[str, Any]:
    """An enum of strings (or of integers) says so: pages show its type, not "any"."""
    values = schema.get("enum")
    if "type" in schema or not isinstance(values, list) or not values:
        return schema
    if all(isinstance(v, str) for v in values):
        return {**schema, "type": "string"}
    if all(type(v) is int for v in values):
        return {**schema, "type": "integer"}
    return schema


def _operation(
    route: Route,
    method: str,
    handler: Callable[..., Any],
    source: str,
    schemas: _Schemas,
    provided: tuple[str, ...] = (),
) -> dict[str, Any]:
    path_params = route.pattern.params
    binder: Binder | None = None
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        if provided:  # filled by providers, not read from the request
            kept = [p for p in signature.parameters.values() if p.name not in provided]
            signature = signature.replace(parameters=kept)
        binder = read_annotations(handler, signature, path_params, source, log_unresolved=False)
    operation: dict[str, Any] = {}
    doc = inspect.getdoc(handler)
    if doc:
        summary, _, rest = doc.partition("\n")
        operation["summary"] = summary.strip()
        if rest.strip():
            operation["description"] = rest.strip()
    parameters: list[dict[str, Any]] = []
    for name in path_params:
        tp = binder.path.get(name) if binder is not None else None
        catch_all = name in route.pattern.empty_lists or any(
            kind in ("catchall", "optional") and name in text
            for kind, text in route.pattern.segments
        )
        schema: dict[str, Any] = {"type": "string"}
        if tp is not None and not catch_all:
            schema = schemas.ref(tp)
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    responses: dict[str, Any] = {}
    if binder is not None:
        for q in binder.query:
            schema = schemas.ref(q.annotation)
            if not q.required:
                _add_default(schema, q.default)
            item: dict[str, Any] = {
                "name": q.name,
                "in": "query",
                "required": q.required,
                "schema": schema,
            }
            if q.many:
                item["style"], item["explode"] = "form", True
            parameters.append(item)
        if binder.body_name is not None:
            operation["requestBody"] = {
                "required": binder.body_required,
                "content": {JSON_TYPE: {"schema": schemas.ref(binder.body_type)}},
            }
        if binder.query or binder.body_name is not None:
            responses["422"] = _INVALID
        if binder.body_name is not None:
            responses["415"] = {"description": "The body is not JSON", **_ERROR}
        if binder.path:
            responses["404"] = {"description": "No such resource", **_ERROR}
    if parameters:
        operation["parameters"] = parameters
    returns = binder.returns if binder is not None else _return_hint(handler, source)
    body, status = response_type(returns)
    if body is None:
        responses[str(status)] = {"description": "No Content"}
    elif returns is inspect.Signature.empty or returns is Any or not schemas.describable(body):
        responses["default"] = {"description": "The handler's response (no return annotation)"}
    else:
        responses[str(status)] = {
            "description": "Success",
            "content": {JSON_TYPE: {"schema": schemas.ref(body, sent=True)}},
        }
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def _add_default(schema: dict[str, Any], default: Any) -> None:
    """The parameter's Python default, in the schema, as JSON (pages show it)."""
    if default is None:
        return
    with contextlib.suppress(TypeError):  # a default JSON cannot spell is left out
        schema["default"] = msgspec.to_builtins(default)


def _return_hint(handler: Callable[..., Any], source: str) -> Any:
    try:
        hints, _ = resolve_annotations(handler, source)
    except StartupError:  # no annotations to read (a callable object): nothing to document
        return inspect.Signature.empty
    return hints.get("return", inspect.Signature.empty)  # unresolvable: not documented


def _operation_id(method: str, path: str) -> str:
    """``GET /users/{id}/posts`` -> ``get_users_by_id_posts``.

    A parameter is ``by_<name>``, so ``/users/{id}`` and ``/users/id`` differ.
    """
    words = re.findall(r"\{[^}]*\}|[A-Za-z0-9]+", path)
    words = [f"by_{w[1:-1]}" if w.startswith("{") else w for w in words]
    return "_".join([method.lower(), *words])


def _unique_operation_ids(paths: dict[str, dict[str, Any]]) -> None:
    """Give every operation an operationId no other has (OpenAPI requires it).

    Spellings a name cannot tell apart (``/a-b`` and ``/a_b``) keep the plain
    id for the first path in sorted order; the others get ``_2``, ``_3``...
    """
    ids = {
        (path, method): _operation_id(method, path)
        for path, item in paths.items()
        for method in item
    }
    taken = set(ids.values())
    seen: set[str] = set()
    for (path, method), wanted in sorted(ids.items()):
        chosen = wanted
        if wanted in seen:
            n = 2
            while f"{wanted}_{n}" in taken:
                n += 1
            chosen = f"{wanted}_{n}"
            taken.add(chosen)
        seen.add(chosen)
        paths[path][method] = {"operationId": chosen, **paths[path][method]}


def operation_tag(path: str) -> str:
    """The tag that groups an operation: its path's first segment past ``api`` and a
    version (``/api/v1/users/{id}`` -> ``users``); ``default`` for ``/``.

    A parameter segment never names a group: ``/{lang}/posts`` -> ``posts``.
    """
    segments = [s for s in path.split("/") if s]
    static = [s for s in segments if not s.startswith("{")]
    for segment in static:
        if not _PREFIX_SEGMENT.fullmatch(segment):
            return segment
    return static[-1] if static else "default"


def document(
    routes: Iterable[Route],
    *,
    title: str = "microroute app",
    version: str = "0.1.0",
    description: str | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of *routes* (what ``app.openapi()`` returns)."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    security: dict[str, Any] = {}  # the schemes providers declared, by provider name
    for route in routes:
        for method in route.methods:
            endpoint = route.endpoints[method]
            if getattr(endpoint.handler, DOCS_MARK, False):
                continue
            operation = _operation(
                route, method, endpoint.handler, endpoint.source, schemas, endpoint.provided
            )
            if endpoint.security:
                security.update(endpoint.security)
                operation["security"] = [{name: [] for name in sorted(endpoint.security)}]
            for path in openapi_path(route):
                item = {"tags": [operation_tag(path)], **operation}
                if path != openapi_path(route)[-1]:  # an optional catch-all, absent
                    item["parameters"] = [
                        p
                        for p in operation.get("parameters", [])
                        if p["in"] != "path" or "{" + p["name"] + "}" in path
                    ]
                    if not item["parameters"]:
                        del item["parameters"]
                paths.setdefault(path, {})[method.lower()] = item
    schemas.finish()
    _unique_operation_ids(paths)
    info = {"title": title, "version": version}
    if description:
        info["description"] = description
    tags = sorted({tag for item in paths.values() for op in item.values() for tag in op["tags"]})
    result: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": info,
        "tags": [{"name": tag} for tag in tags],
        "paths": dict(sorted(paths.items())),
    }
    if schemas.components:
        result["components"] = {"schemas": dict(sorted(schemas.components.items()))}
    if security:
        result.setdefault("components", {})["securitySchemes"] = dict(sorted(security.items()))
    return result
