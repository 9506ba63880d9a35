"""OpenAPI declarations for the routes that parse their requests by hand."""

from __future__ import annotations

from typing import Any

from ..models import CreateJobResponse, SuggestionRequest

__all__ = [
    "CREATE_OPENAPI",
    "DELETE_RESPONSES",
    "STREAM_RESPONSES",
    "envelope",
    "error_responses",
]

_DESCRIPTIONS = {
    204: "Resumed from the job's final event: nothing more, ever",
    400: "Bad request (invalid JSON, job id or Last-Event-ID)",
    401: "No or bad credentials",
    403: "Cross-origin cookie request, or another user's job",
    404: "No such job, or it expired",
    410: "The job has finished (stream: and no Last-Event-ID was sent)",
    413: "Body over 16 KiB",
    415: "Content-Type is not application/json",
    422: "Validation failed; error.fields lists each bad field",
    429: "Rate limited (Retry-After) or too many open streams",
    503: "The job store is unreachable",
}

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["success", "error"],
    "properties": {
        "success": {"type": "boolean", "const": False},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        },
    },
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "content": {"application/json": {"schema": _ERROR_SCHEMA}},
        }
        for status in statuses
    }


def envelope(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["success", "data"],
        "properties": {"success": {"type": "boolean", "const": True}, "data": schema},
    }


CREATE_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": SuggestionRequest.model_json_schema(by_alias=True)}
        },
    },
    "responses": {
        "201": {
            "description": "The job was created; open streamUrl to run and watch it",
            "content": {
                "application/json": {
                    "schema": envelope(CreateJobResponse.model_json_schema(by_alias=True))
                }
            },
        }
    },
}

_STREAM_200: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "An event stream: `connected`, `delta`..., then `complete` or `error`. "
            "Send `Last-Event-ID` (or `?lastEventId=`) to resume."
        ),
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
}

STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_STREAM_200,
    204: {"description": _DESCRIPTIONS[204]},
    **error_responses(400, 401, 403, 404, 410, 429, 503),
}

DELETE_RESPONSES: dict[int | str, dict[str, Any]] = error_responses(400, 401, 403, 404, 410, 503)
