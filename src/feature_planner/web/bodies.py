"""Request bodies: read with the 16 KiB cap, and validation errors as ``error.fields``."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from ..errors import (
    InvalidJsonError,
    PayloadTooLargeError,
    RequestValidationError,
    UnsupportedMediaTypeError,
)

__all__ = [
    "MAX_BODY_BYTES",
    "field_errors",
    "parse_body",
    "read_json_body",
    "refuse_foreign_body",
]

_Body = TypeVar("_Body", bound=BaseModel)

MAX_BODY_BYTES = 16 * 1024


async def read_json_body(request: Request) -> bytes:
    """The body, at most 16 KiB (413) and declared ``application/json`` (415): an HTML form
    on another site can send ``text/plain`` without asking first, never JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLargeError
    if not _is_json(request):
        raise UnsupportedMediaTypeError
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLargeError
    return bytes(body)


async def refuse_foreign_body(request: Request) -> None:
    """A route that takes no body (DELETE) still refuses one that is not JSON, or too big."""
    headers = request.headers
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return
    await read_json_body(request)


def parse_body(model: type[_Body], body: bytes, *, strict: bool | None = None) -> _Body:
    """The body as ``model`` (its wire names only; ``strict=True``: no coercion at all, else
    the model's own rules): 400 ``INVALID_JSON`` when it is not JSON, 422 with
    ``error.fields`` when a value is wrong."""
    try:
        return model.model_validate_json(body, strict=strict, by_alias=True, by_name=False)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise InvalidJsonError from None
        raise RequestValidationError(field_errors(exc)) from None


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    fields = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "body"
        message = (
            "is not a field of this request"
            if error["type"] == "extra_forbidden"
            else _message(error)
        )
        fields.append({"field": field, "message": message})
    return fields


def _message(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind in ("string_too_short", "too_short"):
        return "must not be empty" if ctx.get("min_length") == 1 else error["msg"]
    if kind in ("string_too_long", "too_long"):
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "enum":
        return f"must be one of {ctx.get('expected', '')}"
    if kind == "model_type":
        return "the body must be a JSON object"
    return str(error["msg"])
