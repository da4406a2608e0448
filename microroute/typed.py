"""Typed handlers: a handler's annotations, read once at registration.

A handler's parameters are still filled by name; annotations add meaning:

* a path parameter annotated ``int``, ``float``, ``bool``, ``uuid.UUID``,
  ``datetime.date``/``datetime.datetime``, an ``Enum`` or a ``Literal`` is
  converted; a value that does not convert is a 404, as a route converter's is;
* a parameter named ``body``, or annotated with a structured type (a dataclass,
  a ``TypedDict``, a ``msgspec.Struct`` or a pydantic ``BaseModel``), is the
  request body, decoded and validated (JSON; a form body for flat types);
* any other annotated parameter of a scalar or ``list[scalar]`` type is read
  from the query string; a default makes it optional.

Bad input raises :class:`~microroute.errors.RequestValidationError`: a 422
listing each problem with its location, the same shape whichever engine
validated. msgspec (``pip install "microroute[typed]"``) does the decoding,
conversion and validation; pydantic models are validated by pydantic. This
module decides, per parameter, which engine call to make, and maps the
engine's errors onto ``{"loc": [...], "msg": ...}``. It validates one thing by
hand, because neither engine can be told to: a number is finite (no NaN, no
Infinity, no ``Decimal("1E+999999999")``); see "finite numbers" below.

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

import collections.abc
import dataclasses
import datetime
import decimal
import enum
import functools
import inspect
import logging
import math
import re
import sys
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any

from .errors import RequestValidationError, StartupError, not_found
from .requests import Request
from .responses import JSON_TYPE, Response
from .routing import RESERVED_NAMES

try:
    import msgspec
except ImportError:  # pragma: no cover - the extra is installed in the test venv
    msgspec = None  # type: ignore[assignment]

__all__ = [
    "Binder",
    "encode_model",
    "is_structured",
    "read_annotations",
    "resolve_annotations",
    "response_type",
]

logger = logging.getLogger("microroute")

EXTRA_HINT = 'pip install "microroute[typed]"'

_SCALARS: tuple[type, ...] = (
    int,
    float,
    bool,
    str,
    uuid.UUID,
    datetime.date,
    datetime.datetime,
    datetime.time,
    decimal.Decimal,
)
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# msgspec names the place of an error as a JSONPath: "$.items[0].name", "$['a b']".
_AT = re.compile(r" - at `\$(.*)`$")
# "[...]" is a value under some key of a dict: the location stops at the dict.
_STEP = re.compile(r"\[\.\.\.\]|\.([^.\[]+)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]")
_MISSING = re.compile(r"missing required field `([^`]*)`")


def _pydantic_model(tp: Any) -> bool:
    # Only a program that imported pydantic can annotate with one of its models.
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def is_structured(tp: Any) -> bool:
    """Whether *tp* is a body type: a dataclass, TypedDict, msgspec.Struct or pydantic model."""
    if not isinstance(tp, type):
        return False
    if dataclasses.is_dataclass(tp) or typing.is_typeddict(tp):
        return True
    if msgspec is not None and issubclass(tp, msgspec.Struct):
        return True
    return _pydantic_model(tp)


def _structured_by_name(tp: Any) -> bool:
    """A class that would be a body type if its library were there (msgspec missing)."""
    return isinstance(tp, type) and any(
        f"{base.__module__}.{base.__qualname__}" == "msgspec.Struct" for base in tp.__mro__
    )


def _bare(tp: Any) -> Any:
    """``Annotated[X, Meta(...)]`` -> ``X``: constraints don't change a type's kind."""
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _optional_inner(tp: Any) -> Any:
    """``X | None`` -> ``X`` (and ``Annotated`` unwrapped); anything else as is."""
    tp = _bare(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _bare(args[0])
    return tp


def _is_scalar(tp: Any) -> bool:
    tp = _optional_inner(tp)
    if typing.get_origin(tp) is typing.Literal:
        return True
    return isinstance(tp, type) and (issubclass(tp, _SCALARS) or issubclass(tp, enum.Enum))


def _is_scalar_list(tp: Any) -> bool:
    tp = _optional_inner(tp)
    if typing.get_origin(tp) not in (list, tuple, set, frozenset):
        return False
    args = typing.get_args(tp)
    if len(args) == 2 and args[1] is Ellipsis:  # tuple[int, ...]
        args = args[:1]
    return len(args) == 1 and _is_scalar(_bare(args[0]))


def _needs_conversion(tp: Any) -> bool:
    """``str``, ``Any`` and ``list[str]`` are what the router already gives."""
    return tp not in (str, Any, inspect.Parameter.empty, list[str])


def _type_name(tp: Any) -> str:
    return getattr(tp, "__qualname__", None) or repr(tp)


# -- errors ------------------------------------------------------------------


def _msgspec_problem(where: str, exc: Exception) -> dict[str, Any]:
    """One msgspec error as ``{"loc": [...], "msg": ...}``."""
    message = str(exc)
    loc: list[str | int] = [where]
    found = _AT.search(message)
    if found is not None:
        message = message[: found.start()]
        for key, index, quoted in _STEP.findall(found.group(1)):
            if index:
                loc.append(int(index))
            elif key or quoted:
                loc.append(key or quoted.replace("\\'", "'"))
    missing = _MISSING.search(message)
    if missing is not None:
        loc.append(missing.group(1))
        message = "Field required"
    return {"loc": loc, "msg": message.replace("`", "")}


def _pydantic_problems(where: str, exc: Any) -> list[dict[str, Any]]:
    return [
        {"loc": [where, *error["loc"]], "msg": error["msg"]}
        for error in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


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
            if not (_is_scalar(tp) or _is_scalar_list(tp)):
                raise StartupError(
                    f"{where} is a path parameter annotated {_type_name(tp)}; use str, int,"
                    " float, bool, uuid.UUID, datetime.date, an Enum or a Literal"
                )
            _require_msgspec(where, tp)
            path[name] = tp
        elif name == "body" or is_structured(_optional_inner(tp)) or _structured_by_name(_bare(tp)):
            if body_name is not None:
                raise StartupError(
                    f"{where}: the body is already parameter {body_name!r}; a handler takes"
                    " one body"
                )
            body_name, body_type = name, Any if tp is inspect.Parameter.empty else tp
            body_required = parameter.default is parameter.empty
            if not _pydantic_model(_optional_inner(body_type)):
                _require_msgspec(where, body_type)
                _check_type(where, body_type)
        elif tp is inspect.Parameter.empty:
            continue  # an unannotated extra with a default: left to its default, as before
        elif _is_scalar(tp) or _is_scalar_list(tp):
            _require_msgspec(where, tp)
            query.append(
                QueryParam(
                    name=name,
                    annotation=tp,
                    required=parameter.default is parameter.empty,
                    default=parameter.default,
                    many=_is_scalar_list(tp),
                )
            )
        elif parameter.default is not parameter.empty:
            continue  # not a query type, and a default: left to its default, as before
        else:
            raise StartupError(
                f"{where} is annotated {_type_name(tp)}: a query parameter must be a scalar"
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
            f"{where} is annotated {_type_name(tp)}, which msgspec cannot decode: {exc}"
        ) from None


def _require_msgspec(where: str, tp: Any) -> None:
    if msgspec is None:
        raise StartupError(
            f"{where} is annotated {_type_name(tp)}; typed handlers need msgspec: {EXTRA_HINT}"
        )


def _binder(
    path: dict[str, Any],
    query: tuple[QueryParam, ...],
    body_name: str | None,
    body_type: Any,
    body_required: bool,
) -> Callable[[Request | None, dict[str, Any]], dict[str, Any]]:
    path_items = tuple((name, tp, _finite_check(tp)) for name, tp in path.items())
    query_items = tuple((q, _finite_check(q.annotation)) for q in query)
    read_body = _body_reader(body_type) if body_name is not None else None
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
                            problems.append({"loc": ["query", q.name], "msg": "Field required"})
                        continue
                elif q.name in args:
                    values = args[q.name]
                else:
                    if q.required:
                        problems.append({"loc": ["query", q.name], "msg": "Field required"})
                    continue
                try:
                    value = msgspec.convert(values, q.annotation, strict=False)
                except msgspec.ValidationError as exc:
                    problem = _msgspec_problem("query", exc)
                    problem["loc"][1:1] = [q.name]
                    problems.append(problem)
                    continue
                found = finite(value) if finite is not None else None
                if found is not None:
                    problems.append({"loc": ["query", q.name, *found[0]], "msg": found[1]})
                    continue
                kwargs[q.name] = value
        if read_body is not None:
            assert request is not None and body_name is not None
            try:
                kwargs[body_name] = read_body(request)
            except _NoBody:
                if body_required:
                    problems.append({"loc": ["body"], "msg": "Field required"})
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
        except _NoBody:
            if required:
                raise RequestValidationError([{"loc": ["body"], "msg": "Field required"}]) from None
            return {}

    return bind


class _NoBody(Exception):
    """The request has no body at all."""


def _form_data(request: Request) -> dict[str, Any]:
    # A repeated field is a list; a single one its value (flat types).
    return {
        key: values if len(values) > 1 else values[0]
        for key, values in request.form.lists()
        if values
    }


def _is_form(request: Request) -> bool:
    # Most bodies are JSON: a substring test spares parsing the Content-Type.
    content_type = request.environ.get("CONTENT_TYPE")
    if not content_type or content_type.startswith("application/json"):
        return False
    return request.mimetype in _FORM_TYPES


def _body_reader(tp: Any) -> Callable[[Request], Any]:
    inner = _optional_inner(tp)
    # Checked in the reader itself: the common typed POST pays no extra call.
    finite = _finite_check(tp)
    if _pydantic_model(inner):
        model: Any = inner
        pydantic_error: Any = sys.modules["pydantic"].ValidationError

        def read_pydantic(request: Request) -> Any:
            try:
                if _is_form(request):
                    body = model.model_validate(_form_data(request))
                else:
                    data = request.whole_body()
                    if not data:
                        raise _NoBody
                    body = model.model_validate_json(data)
            except pydantic_error as exc:
                raise RequestValidationError(_pydantic_problems("body", exc)) from None
            if finite is not None and (found := finite(body)) is not None:
                raise _not_finite(found)
            return body

        return read_pydantic

    # Lax, as pydantic is by default and as JSON Schema reads the document:
    # JSON has one number type, so 974.0 is a valid "integer" (and "36" an int).
    decoder = msgspec.json.Decoder(tp, strict=False)

    def read_msgspec(request: Request) -> Any:
        try:
            if _is_form(request):
                body = msgspec.convert(_form_data(request), tp, strict=False)
            else:
                data = request.whole_body()
                if not data:
                    raise _NoBody
                body = decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise RequestValidationError([_msgspec_problem("body", exc)]) from None
        except msgspec.DecodeError as exc:
            problem = {"loc": ["body"], "msg": f"Invalid JSON: {exc}"}
            raise RequestValidationError([problem]) from None
        except UnicodeDecodeError:  # msgspec lets the codec's error through
            problem = {"loc": ["body"], "msg": "Invalid JSON: not valid UTF-8"}
            raise RequestValidationError([problem]) from None
        except RecursionError:  # msgspec stops a hostile nesting at the recursion limit
            problem = {"loc": ["body"], "msg": "Invalid JSON: nested too deeply"}
            raise RequestValidationError([problem]) from None
        if finite is not None and (found := finite(body)) is not None:
            raise _not_finite(found)
        return body

    return read_msgspec


def _not_finite(found: _Problem) -> RequestValidationError:
    return RequestValidationError([{"loc": ["body", *found[0]], "msg": found[1]}])


# -- finite numbers ------------------------------------------------------------
#
# JSON has no NaN nor Infinity, yet a lax float reads the strings "nan" and
# "inf", a Decimal reads "NaN", "sNaN", "Infinity" and "1E+999999999", and
# pydantic's float reads all of these: values a handler's arithmetic raises on
# or never finishes with (int(Decimal("1E+999999999"))). Neither engine can be
# told to refuse them, so the value it returns is checked where its type can
# hold a float or a Decimal, along paths worked out here once, at registration.

_NOT_FINITE = "Input should be a finite number"
_OUT_OF_RANGE = "Number out of range"
#: A Decimal's exponent is held to a float's range: within 1E-308..1E+308.
_DECIMAL_EXPONENT = 308

#: Where a value's bad number is, and what is wrong with it; None when it is fine.
_Problem = tuple[list[Any], str]
_Check = Callable[[Any], "_Problem | None"]


def _finite_check(tp: Any) -> _Check | None:
    """A function finding a non-finite number in a value of type *tp*; None if it cannot hold one.

    ``Annotated[float, msgspec.Meta(extra={"allow_inf_nan": True})]``, pydantic's
    ``Field(allow_inf_nan=True)`` and a pydantic model whose ``model_config``
    sets ``allow_inf_nan`` opt out.
    """
    try:
        return _FiniteChecks().build(tp)
    except Exception:  # a type the engine accepted but this walk does not know
        logger.debug("no finite-number check for %r", tp, exc_info=True)
        return None


def _float_problem(value: Any) -> _Problem | None:
    if isinstance(value, float) and not math.isfinite(value):
        return [], _NOT_FINITE
    return None


def _decimal_problem(value: Any) -> _Problem | None:
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return [], _NOT_FINITE
        if abs(value.adjusted()) > _DECIMAL_EXPONENT:
            return [], _OUT_OF_RANGE
    return None


def _opts_out(metadata: Any) -> bool:
    """``allow_inf_nan=True`` said by pydantic (``Field``, ``AllowInfNan``) or msgspec.Meta."""
    for item in metadata:
        if getattr(item, "allow_inf_nan", None) is True:
            return True
        extra = getattr(item, "extra", None)
        if isinstance(extra, dict) and extra.get("allow_inf_nan") is True:
            return True
        if _opts_out(getattr(item, "metadata", None) or ()):  # a pydantic FieldInfo
            return True
    return False


class _FiniteChecks:
    """Builds the checks of one type; a recursive class is built once."""

    def __init__(self) -> None:
        self._classes: dict[Any, _Check | None] = {}

    def build(self, tp: Any) -> _Check | None:
        if not _holds_number(tp, set()):
            return None  # also ends a recursive type with no number in it
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:  # an opt-out is seen by _holds_number
            return self.build(args[0])
        if origin in (typing.Union, types.UnionType):
            return _first_of([self.build(arg) for arg in args])
        if origin is not None:
            return self._container(origin, args)
        if not isinstance(tp, type):
            return None  # Any, a TypeVar, a Literal's values
        if issubclass(tp, float):
            return _float_problem
        if issubclass(tp, decimal.Decimal):
            return _decimal_problem
        if issubclass(tp, (str, bytes, int, enum.Enum)):
            return None
        if tp in self._classes:  # built, or being built (a recursive type)
            return self._classes[tp]
        return self._class(tp)

    def _class(self, cls: Any) -> _Check | None:
        # A recursive type refers to itself: the check it finds is a forwarder
        # to the one built below.
        built: list[_Check | None] = [None]

        def forward(value: Any) -> _Problem | None:
            check = built[0]
            return check(value) if check is not None else None

        self._classes[cls] = forward
        fields = [
            (attr, key, check)
            for attr, key, tp in _fields(cls)
            if (check := self.build(tp)) is not None
        ]
        built[0] = _object_check(cls, fields) if fields else None
        self._classes[cls] = built[0]
        return built[0]

    def _container(self, origin: Any, args: tuple[Any, ...]) -> _Check | None:
        if not isinstance(origin, type):
            return None  # Literal, ClassVar...
        if issubclass(origin, tuple) and args and args[-1] is not Ellipsis:
            checks = [self.build(arg) for arg in args]
            if not any(checks):
                return None
            return _tuple_check(tuple(checks))
        if issubclass(origin, collections.abc.Mapping) and len(args) == 2:
            key_check, value_check = self.build(args[0]), self.build(args[1])
            if key_check is None and value_check is None:
                return None
            return _mapping_check(key_check, value_check)
        if issubclass(origin, collections.abc.Iterable) and args:
            item_check = self.build(args[0])
            return _items_check(item_check) if item_check is not None else None
        return None


def _holds_number(tp: Any, seen: set[Any]) -> bool:
    """Whether a value of type *tp* can hold a float or a Decimal somewhere."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return not _opts_out(tp.__metadata__) and _holds_number(typing.get_args(tp)[0], seen)
    if origin is not None:  # a union, a container (a Literal's values are not types)
        return any(_holds_number(arg, seen) for arg in typing.get_args(tp))
    if not isinstance(tp, type):
        return False
    if issubclass(tp, (float, decimal.Decimal)):
        return True
    if issubclass(tp, (str, bytes, int, enum.Enum)) or tp in seen:
        return False
    seen.add(tp)
    return any(_holds_number(field_type, seen) for _, _, field_type in _fields(tp))


def _fields(cls: Any) -> list[tuple[str, str | int, Any]]:
    """(attribute, location, type) of each field of a body type."""
    if msgspec is not None and issubclass(cls, msgspec.Struct):
        array_like = cls.__struct_config__.array_like
        return [
            (f.name, index if array_like else f.encode_name, f.type)
            for index, f in enumerate(msgspec.structs.fields(cls))
        ]
    if _pydantic_model(cls):
        if cls.model_config.get("allow_inf_nan") is True:
            return []  # the model says NaN and Infinity are welcome
        fields = []
        for name, field in cls.model_fields.items():
            if _opts_out(field.metadata):  # Field(allow_inf_nan=True)
                continue
            # Located as pydantic locates its own errors: by the name it reads.
            alias = field.validation_alias
            fields.append(
                (name, alias if isinstance(alias, str) else field.alias or name, field.annotation)
            )
        return fields
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls, include_extras=True)
        return [(f.name, f.name, hints[f.name]) for f in dataclasses.fields(cls)]
    if typing.is_typeddict(cls) or (issubclass(cls, tuple) and hasattr(cls, "_fields")):
        hints = typing.get_type_hints(cls, include_extras=True)
        return [(name, name, tp) for name, tp in hints.items()]
    return []


def _first_of(checks: list[_Check | None]) -> _Check | None:
    found = [check for check in checks if check is not None]
    if len(found) <= 1:
        return found[0] if found else None

    def check(value: Any) -> _Problem | None:
        for one in found:
            problem = one(value)
            if problem is not None:
                return problem
        return None

    return check


def _object_check(cls: Any, fields: list[tuple[str, str | int, _Check]]) -> _Check:
    steps = tuple(fields)
    if all(inner is _float_problem for _, _, inner in steps) and not typing.is_typeddict(cls):
        # The usual body (a few float fields next to strings and ints): no call per field.
        floats = tuple((attr, key) for attr, key, _ in steps)

        def check_floats(value: Any) -> _Problem | None:
            if not isinstance(value, cls):
                return None
            for attr, key in floats:
                number = getattr(value, attr)
                # x - x is 0.0 for every finite float, NaN for NaN and ±inf.
                if isinstance(number, float) and number - number != 0.0:
                    return [key], _NOT_FINITE
            return None

        return check_floats
    if typing.is_typeddict(cls):

        def check_dict(value: Any) -> _Problem | None:
            if not isinstance(value, dict):
                return None
            for attr, key, inner in steps:
                problem = inner(value.get(attr))
                if problem is not None:
                    return [key, *problem[0]], problem[1]
            return None

        return check_dict

    def check(value: Any) -> _Problem | None:
        if not isinstance(value, cls):
            return None
        for attr, key, inner in steps:
            problem = inner(getattr(value, attr, None))
            if problem is not None:
                return [key, *problem[0]], problem[1]
        return None

    return check


def _tuple_check(checks: tuple[_Check | None, ...]) -> _Check:
    def check(value: Any) -> _Problem | None:
        if not isinstance(value, tuple):
            return None
        for index, (item, inner) in enumerate(zip(value, checks, strict=False)):
            problem = inner(item) if inner is not None else None
            if problem is not None:
                return [index, *problem[0]], problem[1]
        return None

    return check


def _mapping_check(key_check: _Check | None, value_check: _Check | None) -> _Check:
    def check(value: Any) -> _Problem | None:
        if not isinstance(value, collections.abc.Mapping):
            return None
        for key, item in value.items():
            problem = key_check(key) if key_check is not None else None
            if problem is None and value_check is not None:
                problem = value_check(item)
            if problem is not None:
                where = key if isinstance(key, (str, int)) else str(key)
                return [where, *problem[0]], problem[1]
        return None

    return check


def _items_check(item_check: _Check) -> _Check:
    def check(value: Any) -> _Problem | None:
        if not isinstance(value, (list, tuple, set, frozenset)):
            return None
        for index, item in enumerate(value):
            problem = item_check(item)
            if problem is not None:
                return [index, *problem[0]], problem[1]
        return None

    return check


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
    if not _mentions_structured(body) or is_structured(_optional_inner(body)):
        return None  # nothing to encode, or a model, which the reply encodes itself
    inner = _optional_inner(body)
    encode: Callable[[Any], bytes]
    if _pydantic_model(inner) or any(_pydantic_model(a) for a in typing.get_args(inner)):
        # By alias, as the document describes the models (and as FastAPI sends them).
        encode = functools.partial(
            sys.modules["pydantic"].TypeAdapter(body).dump_json, by_alias=True
        )
    else:
        _require_msgspec(f"{source}: the return annotation", returns)
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
    if msgspec is not None and isinstance(value, msgspec.Struct):
        return True
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return True
    pydantic = sys.modules.get("pydantic")
    return pydantic is not None and isinstance(value, pydantic.BaseModel)


def _json_response(data: bytes) -> Response:
    return Response(data, content_type=JSON_TYPE)


def encode_model(value: Any) -> bytes | None:
    """JSON for a returned msgspec.Struct, dataclass or pydantic model; None otherwise."""
    if msgspec is not None and (
        isinstance(value, msgspec.Struct)
        or (dataclasses.is_dataclass(value) and not isinstance(value, type))
    ):
        data: bytes = msgspec.json.encode(value)
        return data
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(value, pydantic.BaseModel):
        # By alias, as the OpenAPI document describes the model (FastAPI does the same).
        text: str = value.model_dump_json(by_alias=True)
        return text.encode()
    return None
