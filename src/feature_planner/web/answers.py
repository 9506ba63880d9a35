"""The shapes of the web layer's own answers, for the OpenAPI document: the two envelopes,
and the bodies that no shared wire model (``models``) describes.

The handlers write these bodies as plain JSON on the hot path; these models say what that
JSON is, and the tests hold the two together (Schemathesis checks every answer against the
document; ``tests/web/test_openapi.py`` every error class's body).
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.alias_generators import to_camel

from ..models import CreateJobResponse

__all__ = [
    "CancelledJob",
    "Choice",
    "CreatedJob",
    "ErrorBody",
    "Health",
    "Readiness",
    "ServerConfig",
    "Unready",
    "envelope",
]


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


@functools.cache
def envelope(data: Any) -> type[BaseModel]:
    """A successful answer carrying ``data``: ``{"success": true, "data": …}``, as a model
    named after what it carries (``CreatedJobAnswer``)."""
    return create_model(
        _type_name(data) + "Answer",
        __doc__="A successful answer.",
        success=(Literal[True], ...),
        data=(data, ...),
    )


def _type_name(kind: Any) -> str:
    arguments = getattr(kind, "__args__", None)
    if arguments and getattr(kind, "__origin__", None) is None:  # a union: A | None
        return "Or".join(_type_name(argument) for argument in arguments)
    return "Null" if kind is type(None) else str(getattr(kind, "__name__", kind))


class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorDetail(_Wire):
    code: str
    message: str
    fields: list[FieldProblem] = Field(
        default_factory=list, description="422: each bad field and why"
    )
    retry_after: int | None = Field(None, description="429 RATE_LIMITED: as Retry-After says")


class ErrorBody(BaseModel):
    """A refusal: ``{"success": false, "error": {"code", "message", …}}``."""

    success: Literal[False]
    error: ErrorDetail


class CreatedJob(CreateJobResponse):
    """Phase 1's answer, with the stream token this server always issues."""

    stream_token: str = Field(
        description=(
            "Credential for GET and DELETE of this job alone, as `?token=`; "
            "valid for FEATURE_PLANNER_STREAM_TOKEN_TTL_S (15 minutes by default)"
        )
    )


class CancelledJob(_Wire):
    job_id: str
    status: Literal["cancelled"]


class Choice(_Wire):
    value: str
    label: str


class ServerConfig(_Wire):
    provider: str
    provider_label: str
    models: list[str]
    feature_types: list[Choice]
    priority_levels: list[Choice]
    limits: dict[str, int]
    repository_url: str | None = None
    github_issues: bool = Field(
        description="Whether a suggestion can be filed as a GitHub issue (both GitHub settings "
        "are set)"
    )


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]


class Unready(BaseModel):
    status: Literal["unavailable"]
    reason: str
