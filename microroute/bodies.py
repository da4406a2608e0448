"""A typed request body: which Content-Types it reads, and the one decoding pass.

A handler's body parameter (named ``body``, or annotated with a dataclass,
``TypedDict``, ``msgspec.Struct`` or pydantic model) is read as JSON:

* sent as ``application/json`` (or any ``application/*+json``) or with no
  Content-Type at all, it is decoded and validated in one pass (msgspec's
  decoder, or pydantic's ``model_validate_json``);
* sent as ``multipart/form-data`` to a *flat* body (every field a scalar or a
  list of scalars), the form fills it, as before;
* sent as anything else (``application/x-www-form-urlencoded``, which is what
  ``curl -d`` sends, ``text/plain``...), it is a 415 that names what was sent
  and what to send, rather than a 422 about fields that are right there.

A body that fails is a 422 listing every problem (:mod:`microroute.validation`);
a body that passes costs one decoding pass and nothing else.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import msgspec

from .errors import HTTPError, RequestValidationError
from .finite import Check, Problem, finite_check
from .requests import Request
from .typeinfo import is_flat, optional_inner, pydantic_model
from .validation import every_problem, msgspec_problem, problem, pydantic_problems

__all__ = ["NoBody", "body_reader"]

_JSON = "application/json"
_MULTIPART = "multipart/form-data"
_URLENCODED = "application/x-www-form-urlencoded"
#: Which request header lists what a 415 would have accepted (RFC 9110, 15.5.16).
_ACCEPT_HEADER = {"POST": "Accept-Post", "PATCH": "Accept-Patch"}


class NoBody(Exception):
    """The request has no body at all."""


def body_reader(tp: Any) -> Callable[[Request], Any]:
    """A function reading a request's body as a *tp*, decided once at registration.

    It returns the value, or raises :class:`NoBody` (no body was sent),
    :class:`~microroute.errors.RequestValidationError` (a 422, every problem
    listed) or an :class:`~microroute.errors.HTTPError` 415 (not JSON).
    """
    inner = optional_inner(tp)
    # Checked in the reader itself: the common typed POST pays no extra call.
    finite = finite_check(tp)
    read_form = _form_reader(tp) if is_flat(tp) else None
    if pydantic_model(inner):
        return _pydantic_reader(inner, finite, read_form)

    # Lax, as pydantic is by default and as JSON Schema reads the document:
    # JSON has one number type, so 974.0 is a valid "integer" (and "36" an int).
    decoder = msgspec.json.Decoder(tp, strict=False)

    def read_msgspec(request: Request) -> Any:
        content_type = request.environ.get("CONTENT_TYPE")
        # Most bodies say JSON, or nothing: a prefix test spares parsing the header.
        if content_type and not content_type.startswith(_JSON) and not _is_json(request):
            if read_form is not None and request.mimetype == _MULTIPART:
                return read_form(request)
            _refuse(request, read_form is not None)
        data = request.whole_body()
        if not data:
            raise NoBody
        try:
            body = decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise RequestValidationError(_every_problem(data, tp, exc)) from None
        except msgspec.DecodeError as exc:
            raise _invalid_json(f"Invalid JSON: {exc}") from None
        except UnicodeDecodeError:  # msgspec lets the codec's error through
            raise _invalid_json("Invalid JSON: not valid UTF-8") from None
        except RecursionError:  # msgspec stops a hostile nesting at the recursion limit
            raise _invalid_json("Invalid JSON: nested too deeply") from None
        if finite is not None and (found := finite(body)) is not None:
            raise _not_finite(found)
        return body

    return read_msgspec


def _pydantic_reader(
    model: Any, finite: Check | None, read_form: Callable[[Request], Any] | None
) -> Callable[[Request], Any]:
    pydantic_error: Any = sys.modules["pydantic"].ValidationError

    def read_pydantic(request: Request) -> Any:
        content_type = request.environ.get("CONTENT_TYPE")
        if content_type and not content_type.startswith(_JSON) and not _is_json(request):
            if read_form is not None and request.mimetype == _MULTIPART:
                return read_form(request)
            _refuse(request, read_form is not None)
        data = request.whole_body()
        if not data:
            raise NoBody
        try:
            body = model.model_validate_json(data)
        except pydantic_error as exc:
            raise RequestValidationError(pydantic_problems("body", exc)) from None
        if finite is not None and (found := finite(body)) is not None:
            raise _not_finite(found)
        return body

    return read_pydantic


def _form_reader(tp: Any) -> Callable[[Request], Any]:
    """Fills a flat body from a multipart form: a repeated field is a list."""
    inner = optional_inner(tp)
    finite = finite_check(tp)
    if pydantic_model(inner):
        pydantic_error: Any = sys.modules["pydantic"].ValidationError

        def convert(data: dict[str, Any]) -> Any:
            try:
                return inner.model_validate(data)
            except pydantic_error as exc:
                raise RequestValidationError(pydantic_problems("body", exc)) from None

    else:

        def convert(data: dict[str, Any]) -> Any:
            try:
                return msgspec.convert(data, tp, strict=False)
            except msgspec.ValidationError as exc:
                first = msgspec_problem(["body"], exc, tp)
                raise RequestValidationError(every_problem(data, tp, ["body"], first)) from None

    def read_form(request: Request) -> Any:
        data = {
            key: values if len(values) > 1 else values[0]
            for key, values in request.form.lists()
            if values
        }
        if not data and not request.files:
            raise NoBody
        body = convert(data)
        if finite is not None and (found := finite(body)) is not None:
            raise _not_finite(found)
        return body

    return read_form


def _is_json(request: Request) -> bool:
    """``application/json`` in another spelling (``Application/JSON``), or ``*/*+json``."""
    mimetype = request.mimetype
    return mimetype == _JSON or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def _refuse(request: Request, takes_forms: bool) -> None:
    """A body that is not JSON: a 415 naming what came and what to send (no body: none)."""
    if not request.whole_body():
        raise NoBody
    sent = request.mimetype or "an unknown type"
    if request.mimetype == _URLENCODED:
        sent += " (what curl -d sends)"
    accepted = [_JSON, _MULTIPART] if takes_forms else [_JSON]
    message = (
        f"The body was sent as {sent}, but this endpoint reads JSON: send it with"
        f" Content-Type: {_JSON} (curl --json '...')"
    )
    if takes_forms:
        message += f", or as {_MULTIPART} (curl -F name=value)"
    elif request.mimetype == _MULTIPART:
        message += " (a form fills only a body whose fields are scalars or lists of them)"
    header = _ACCEPT_HEADER.get(request.method)
    headers = [(header, ", ".join(accepted))] if header else None
    raise HTTPError(415, message, headers)


def _every_problem(data: bytes, tp: Any, exc: msgspec.ValidationError) -> list[dict[str, Any]]:
    """Every problem of a JSON body msgspec refused; its own error comes first."""
    first = msgspec_problem(["body"], exc, tp)
    try:
        value = msgspec.json.decode(data)  # valid JSON: the typed pass got past its syntax
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return [first]
    return every_problem(value, tp, ["body"], first)


def _invalid_json(message: str) -> RequestValidationError:
    return RequestValidationError([problem(["body"], message, "json_invalid")])


def _not_finite(found: Problem) -> RequestValidationError:
    return RequestValidationError([problem(["body", *found[0]], found[1], "finite_number")])
