"""The arguments of the repository tools: one pydantic model per tool gives both the JSON
schema the model is shown and the validation of what it sends.

Validation is strict (``"2"`` is not a line number, ``"yes"`` is not a boolean) and
forbids unknown keys; a failure becomes one sentence the model can act on
(``ToolArgumentError``), never pydantic's error list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

__all__ = [
    "MAX_PATTERN_CHARS",
    "GlobArguments",
    "GrepArguments",
    "ReadArguments",
    "ToolArgumentError",
    "ToolArguments",
    "parse_arguments",
]

MAX_PATTERN_CHARS = 1_000


class ToolArgumentError(Exception):
    """The model's arguments do not fit the tool; the message says what to send instead."""


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("blank")
    return value


_Pattern = Annotated[str, Field(min_length=1, max_length=MAX_PATTERN_CHARS)]
_OptionalText = Annotated[str | None, Field(max_length=MAX_PATTERN_CHARS)]
_LineNumber = Annotated[int | None, Field(ge=1)]


class ToolArguments(BaseModel):
    """What every tool's arguments share: strict types, no unknown keys, and for each field
    the sentence that tells the model how to fix it (``hints``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    hints: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The schema sent to the model: no titles, optional fields without their null."""
        schema = cls.model_json_schema(schema_generator=_ToolSchema)
        schema.pop("title", None)
        return schema


Args = TypeVar("Args", bound=ToolArguments)


class GlobArguments(ToolArguments):
    pattern: Annotated[_Pattern, Field(description="The glob pattern.")]
    path: Annotated[
        _OptionalText,
        Field(description="A directory relative to the repository root (default: the root)."),
    ] = None

    hints: ClassVar[Mapping[str, str]] = {
        "pattern": "pattern is required and must be a non-empty string.",
        "path": "path must be a string.",
    }


class GrepArguments(ToolArguments):
    pattern: Annotated[_Pattern, Field(description="A Python regular expression.")]
    path: Annotated[
        _OptionalText,
        Field(
            description="A directory or file relative to the repository root (default: the root)."
        ),
    ] = None
    glob: Annotated[
        _OptionalText,
        Field(description="Only files whose name (or path, if it has a '/') matches this glob."),
    ] = None
    case_insensitive: Annotated[bool, Field(description="Ignore case (default false).")] = False

    hints: ClassVar[Mapping[str, str]] = {
        "pattern": "pattern is required and must be a non-empty string.",
        "path": "path must be a string.",
        "glob": "glob must be a string.",
        "case_insensitive": "case_insensitive must be true or false.",
    }


class ReadArguments(ToolArguments):
    path: Annotated[
        str,
        AfterValidator(_not_blank),
        Field(description="The file, relative to the repository root."),
    ]
    offset: Annotated[
        _LineNumber, Field(description="The first line to read, from 1 (default 1).")
    ] = None
    limit: Annotated[
        _LineNumber, Field(description="How many lines to read (default: up to the size limit).")
    ] = None

    hints: ClassVar[Mapping[str, str]] = {
        "path": "path is required: a file path relative to the repository root.",
        "offset": "offset must be a whole number of at least 1.",
        "limit": "limit must be a whole number of at least 1.",
    }


def parse_arguments(name: str, model: type[Args], arguments: Mapping[str, Any]) -> Args:
    """``arguments`` as ``model``, or ``ToolArgumentError`` with one actionable sentence."""
    try:
        return model.model_validate(arguments)
    except ValidationError as invalid:
        raise ToolArgumentError(_message(name, model, invalid)) from None


def _message(name: str, model: type[ToolArguments], invalid: ValidationError) -> str:
    errors = invalid.errors(include_url=False)
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        expected = ", ".join(sorted(model.model_fields))
        return f"Unknown argument(s) for {name}: {', '.join(unknown)}; use {expected}."
    order = list(model.model_fields)
    first = min(errors, key=lambda e: order.index(str(e["loc"][0])) if e["loc"] else -1)
    key = str(first["loc"][0]) if first["loc"] else ""
    if first["type"] == "string_too_long":
        return f"{key} is longer than {MAX_PATTERN_CHARS:,} characters."
    return model.hints.get(key, f"{name} arguments are not valid: {first['msg']}.")


class _ToolSchema(GenerateJsonSchema):
    """Pydantic's JSON schema, in the plain form tool APIs expect."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])  # null is the same as leaving it out

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        result = super().default_schema(schema)
        if result.get("default", ...) is None:
            del result["default"]
        return result
