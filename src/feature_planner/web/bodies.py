"""Request bodies: read with the 16 KiB cap, and validation errors as ``error.fields``."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request

from ..errors import PayloadTooLargeError, UnsupportedMediaTypeError

__all__ = ["MAX_BODY_BYTES", "field_errors", "read_json_body"]

MAX_BODY_BYTES = 16 * 1024


async def read_json_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLargeError
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaTypeError
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLargeError
    return bytes(body)


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
