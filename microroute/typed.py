"""Typed handlers: a handler's annotations, read once at registration.

A handler's parameters are still filled by name; annotations add meaning:

* a path parameter annotated ``int``, ``float``, ``bool``, ``uuid.UUID``,
  ``datetime.date``/``datetime.datetime``, an ``Enum`` or a ``Literal`` is
  converted; a value that does not convert is a 404, as a route converter's is;
* a parameter named ``body``, or annotated with a structured type (a dataclass,
  a ``TypedDict``, a ``msgspec.Struct`` or a pydantic ``BaseModel``), is the
  request body, decoded and validated (JSON, or a multipart form for a body of
  flat fields; see :mod:`microroute.bodies`);
* any other annotated parameter of a scalar or ``list[scalar]`` type is read
  from the query string; a default makes it optional.

Bad input raises :class:`~microroute.errors.RequestValidationError`: a 422
listing every problem with its location and kind, the same shape whichever
engine validated (:mod:`microroute.validation`). msgspec does the decoding,
conversion and validation; pydantic models are validated by pydantic. This
module decides, per parameter, which engine call to make; the body's own
reading (which Content-Types, the 415) is :mod:`microroute.bodies`, and the
check that numbers are finite, which neither engine can be told to make, is
:mod:`microroute.finite`.

An annotation is resolved at registration, one by one: one that does not
resolve (a name imported under ``if TYPE_CHECKING:``) stops start-up only where
it decides how input is read.

>>> import msgspec
>>> class NewUser(msgspec.Struct):
...     name: str
...     age: int
>>> @route.post("/teams/[team]/users")              # doctest: +SKIP
... def create(team: int, body: NewUser, notify: bool = False):
...     return {"team": team, "name": body.name}, 201
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import sys
import types
import typing
from collections.abc import Callable
from typing import Any

import msgspec

from .bodies import NoBody, body_reader
from .errors import RequestValidationError, StartupError, not_found
from .finite import finite_check
from .requests import Request
from .responses import JSON_TYPE, Response
from .routing import RESERVED_NAMES
from .typeinfo import (
    bare,
    is_scalar,
    is_scalar_list,
    is_structured,
    optional_inner,
    pydantic_model,
    structured_by_name,
    type_name,
)
from .validation import every_problem, problem

__all__ = [
    "Binder",
    "encode_model",
    "is_structured",
    "read_annotations",
    "resolve_annotations",
    "response_type",
]

logger = logging.getLogger("microroute")

# -- the plan ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class QueryParam:
    """A parameter read from the query string."""

    name: str
    annotation: Any
    required: bool
    default: Any
    many: bool


@dataclasses.dataclass(frozen=True)
class Binder:
    """What a handler's annotations ask for, decided once at registration.

    ``bind(request, params)`` returns the keyword arguments this binder fills
    (converted path parameters, query parameters, the body). ``finish`` encodes
    the handler's result when its return annotation names a structured type.
    """

    source: str
    path: dict[str, Any]
    query: tuple[QueryParam, ...]
    body_name: str | None
    body_type: Any
    body_required: bool
    returns: Any
    names: frozenset[str]
    needs_request: bool
    bind: Callable[[Request | None, dict[str, Any]], dict[str, Any]]
    finish: Callable[[Any], Any] | None


def resolve_annotations(
    fn: Callable[..., Any], source: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """*fn*'s annotations as types, and why each one that does not resolve does not.

    Resolved one by one, so that a name imported only under ``if TYPE_CHECKING:``
    (``-> Response``, ``request: Request``) costs only its own annotation.
    """
    try:
        return typing.get_type_hints(fn, include_extras=True), {}
    except Exception as exc:
        first_error = exc
    annotations = getattr(fn, "__annotations__", None)
    if not isinstance(annotations, dict):
        raise StartupError(
            f"{source}: cannot resolve the handler's annotations: {first_error}"
        ) from None
    # Where get_type_hints looks names up: the module of the innermost wrapped function.
    globalns = getattr(inspect.unwrap(fn), "__globals__", {})
    hints: dict[str, Any] = {}
    unresolved: dict[str, str] = {}
    for name, annotation in annotations.items():
        one = types.SimpleNamespace(__annotations__={name: annotation})
        try:
            hints[name] = typing.get_type_hints(one, globalns, include_extras=True)[name]
        except Exception as exc:
            unresolved[name] = f"{type(exc).__name__}: {exc}"
    return hints, unresolved


def read_annotations(
    fn: Callable[..., Any],
    signature: inspect.Signature,
    path_params: tuple[str, ...],
    source: str,
    *,
    log_unresolved: bool = True,
) -> Binder | None:
    """The handler's typed parameters, or None when its annotations ask for nothing.

    An untyped handler (or one annotated only with ``str``) gets None, and so
    the very same calling plan as before typed handlers existed.

    An annotation that does not resolve (a name imported under ``if
    TYPE_CHECKING:``) stops start-up only where it decides how input is read
    (a path, query or body parameter); elsewhere (the return annotation,
    ``request: Request``) it is left out, logged at debug level unless
    *log_unresolved* is false (the OpenAPI document reads a handler again).
    """
    raw = {name: p.annotation for name, p in signature.parameters.items()}
    has_return = signature.return_annotation is not inspect.Signature.empty
    untyped = all(a is inspect.Parameter.empty for n, a in raw.items() if n not in RESERVED_NAMES)
    if untyped and not has_return and "body" not in raw:
        return None
    hints, unresolved = resolve_annotations(fn, source)
    for name, why in unresolved.items():
        parameter = signature.parameters.get(name)
        if parameter is not None and _reads_input(parameter):
            # It decides how the parameter is read: a guess would read it wrong.
            raise StartupError(
                f"{source}: parameter {name!r}: cannot resolve its annotation ({why}); it"
                " decides how the parameter is read, so it must name a type importable at"
                " run time, not only under `if TYPE_CHECKING:`"
            )
        if log_unresolved:
            what = "the return annotation" if name == "return" else f"parameter {name!r}"
            logger.debug(
                "%s: cannot resolve %s (%s); not needed to read input, so the route is"
                " served and documented without it",
                source,
                what,
                why,
            )

    path: dict[str, Any] = {}
    query: list[QueryParam] = []
    body_name: str | None = None
    body_type: Any = Any
    body_required = True
    for name, parameter in signature.parameters.items():
        if name in RESERVED_NAMES or parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            continue
        tp = hints.get(name, inspect.Parameter.empty)
        where = f"{source}: parameter {name!r}"
        if name in path_params:
            if not _needs_conversion(tp):
                continue
            if not (is_scalar(tp) or is_scalar_list(tp)):
                raise StartupError(
                    f"{where} is a path parameter annotated {type_name(tp)}; use str, int,"
                    " float, bool, uuid.UUID, datetime.date, an Enum or a Literal"
                )
            path[name] = tp
        elif name == "body" or is_structured(optional_inner(tp)) or structured_by_name(bare(tp)):
            if body_name is not None:
                raise StartupError(
                    f"{where}: the body is already parameter {body_name!r}; a handler takes"
                    " one body"
                )
            body_name, body_type = name, Any if tp is inspect.Parameter.empty else tp
            body_required = parameter.default is parameter.empty
            if not pydantic_model(optional_inner(body_type)):
                _check_type(where, body_type)
        elif tp is inspect.Parameter.empty:
            continue  # an unannotated extra with a default: left to its default, as before
        elif is_scalar(tp) or is_scalar_list(tp):
            query.append(
                QueryParam(
                    name=name,
                    annotation=tp,
                    required=parameter.default is parameter.empty,
                    default=parameter.default,
                    many=is_scalar_list(tp),
                )
            )
        elif parameter.default is not parameter.empty:
            continue  # not a query type, and a default: left to its default, as before
        else:
            raise StartupError(
                f"{where} is annotated {type_name(tp)}: a query parameter must be a scalar"
                " (str, int, float, bool, UUID, date, Enum, Literal) or a list of one;"
                " name it body to read the request body"
            )

    returns = hints.get("return", inspect.Signature.empty)
    finish = _finisher(returns, source)
    if not path and not query and body_name is None and finish is None:
        return None
    names = frozenset([*path, *(q.name for q in query), *([body_name] if body_name else [])])
    return Binder(
        source=source,
        path=path,
        query=tuple(query),
        body_name=body_name,
        body_type=body_type,
        body_required=body_required,
        returns=returns,
        names=names,
        needs_request=bool(query) or body_name is not None,
        bind=_binder(path, tuple(query), body_name, body_type, body_required),
        finish=finish,
    )


def _reads_input(parameter: inspect.Parameter) -> bool:
    """Whether the parameter's annotation may decide how input is read (not ``request``)."""
    return parameter.name not in RESERVED_NAMES and parameter.kind not in (
        parameter.VAR_POSITIONAL,
        parameter.VAR_KEYWORD,
    )


def _check_type(where: str, tp: Any) -> None:
    """A type msgspec cannot decode is refused now, not at the first request."""
    try:
        msgspec.json.Decoder(tp)
    except TypeError as exc:
        raise StartupError(
            f"{where} is annotated {type_name(tp)}, which msgspec cannot decode: {exc}"
        ) from None


def _needs_conversion(tp: Any) -> bool:
    """``str``, ``Any`` and ``list[str]`` are what the router already gives."""
    return tp not in (str, Any, inspect.Parameter.empty, list[str])


def _binder(
    path: dict[str, Any],
    query: tuple[QueryParam, ...],
    body_name: str | None,
    body_type: Any,
    body_required: bool,
) -> Callable[[Request | None, dict[str, Any]], dict[str, Any]]:
    path_items = tuple((name, tp, finite_check(tp)) for name, tp in path.items())
    query_items = tuple((q, finite_check(q.annotation)) for q in query)
    read_body = body_reader(body_type) if body_name is not None else None
    if read_body is not None and body_name is not None and not path and not query:
        return _body_binder(body_name, read_body, body_required)

    def bind(request: Request | None, params: dict[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        for name, tp, finite in path_items:
            try:
                kwargs[name] = msgspec.convert(params[name], tp, strict=False)
            except msgspec.ValidationError:
                not_found()  # as a converter would: this URL names nothing
            if finite is not None and finite(kwargs[name]) is not None:
                not_found()  # /items/nan: no more an item than /items/abc
        problems: list[dict[str, Any]] = []
        if query_items:
            assert request is not None
            args = request.args
            for q, finite in query_items:
                if q.many:
                    values: Any = args.getlist(q.name)
                    if not values:
                        if q.required:
                            problems.append(_required(["query", q.name]))
                        continue
                elif q.name in args:
                    values = args[q.name]
                else:
                    if q.required:
                        problems.append(_required(["query", q.name]))
                    continue
                try:
                    value = msgspec.convert(values, q.annotation, strict=False)
                except msgspec.ValidationError:
                    problems.extend(every_problem(values, q.annotation, ["query", q.name]))
                    continue
                found = finite(value) if finite is not None else None
                if found is not None:
                    loc = ["query", q.name, *found[0]]
                    problems.append(problem(loc, found[1], "finite_number"))
                    continue
                kwargs[q.name] = value
        if read_body is not None:
            assert request is not None and body_name is not None
            try:
                kwargs[body_name] = read_body(request)
            except NoBody:
                if body_required:
                    problems.append(_required(["body"]))
            except RequestValidationError as exc:
                problems.extend(exc.detail)
        if problems:
            raise RequestValidationError(problems)
        return kwargs

    return bind


def _body_binder(
    name: str, read_body: Callable[[Request], Any], required: bool
) -> Callable[[Request | None, dict[str, Any]], dict[str, Any]]:
    """The common typed POST: a body and nothing else, without the general loop."""

    def bind(request: Request | None, params: dict[str, Any]) -> dict[str, Any]:
        assert request is not None
        try:
            return {name: read_body(request)}
        except NoBody:
            if required:
                raise RequestValidationError([_required(["body"])]) from None
            return {}

    return bind


def _required(loc: list[Any]) -> dict[str, Any]:
    return problem(loc, "Field required", "missing")


# -- results -------------------------------------------------------------------


def _mentions_structured(tp: Any) -> bool:
    if is_structured(tp):
        return True
    return any(_mentions_structured(arg) for arg in typing.get_args(tp))


def response_type(returns: Any) -> tuple[Any, int]:
    """The body type and status a return annotation documents.

    ``User`` -> ``(User, 200)``; ``tuple[User, Literal[201]]`` -> ``(User, 201)``;
    ``None`` -> ``(None, 204)``.
    """
    if returns is None or returns is type(None):
        return None, 204
    if typing.get_origin(returns) is tuple:
        args = typing.get_args(returns)
        if len(args) == 2 and typing.get_origin(args[1]) is typing.Literal:
            statuses = typing.get_args(args[1])
            if len(statuses) == 1 and type(statuses[0]) is int:
                return args[0], statuses[0]
    return returns, 200


def _finisher(returns: Any, source: str) -> Callable[[Any], Any] | None:
    """A function encoding a result of the annotated return type, or None."""
    if returns is inspect.Signature.empty:
        return None
    body, _ = response_type(returns)
    if not _mentions_structured(body) or is_structured(optional_inner(body)):
        return None  # nothing to encode, or a model, which the reply encodes itself
    inner = optional_inner(body)
    encode: Callable[[Any], bytes]
    if pydantic_model(inner) or any(pydantic_model(a) for a in typing.get_args(inner)):
        # By alias, as the document describes the models (and as FastAPI sends them).
        encode = functools.partial(
            sys.modules["pydantic"].TypeAdapter(body).dump_json, by_alias=True
        )
    else:
        encode = msgspec.json.Encoder().encode

    def finish(result: Any) -> Any:
        # A model itself is left to the reply (encode_model): no Response built.
        if type(result) is tuple:
            if result and _encodable(result[0]):
                return (_json_response(encode(result[0])), *result[1:])
            return result
        if _encodable(result):
            return _json_response(encode(result))
        return result

    return finish


def _encodable(value: Any) -> bool:
    # A Response, text, bytes, None or a stream keep their usual meaning; a model
    # is encoded by encode_model when the reply is made, more cheaply.
    return (
        value is not None
        and not isinstance(
            value, (Response, str, bytes, bytearray, memoryview, types.GeneratorType)
        )
        and not _is_model(value)
    )


def _is_model(value: Any) -> bool:
    if isinstance(value, msgspec.Struct):
        return True
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return True
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(value, pydantic.BaseModel)


def _json_response(data: bytes) -> Response:
    return Response(data, content_type=JSON_TYPE)


def encode_model(value: Any) -> bytes | None:
    """JSON for a returned msgspec.Struct, dataclass or pydantic model; None otherwise."""
    if isinstance(value, msgspec.Struct) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    ):
        data: bytes = msgspec.json.encode(value)
        return data
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        # By alias, as the OpenAPI document describes the model (FastAPI does the same).
        text: str = value.model_dump_json(by_alias=True)
        return text.encode()
    return None
