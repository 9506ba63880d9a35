"""OpenAPI declarations for the routes that parse their requests by hand, and
``install_security``: how the API authenticates, and what the generated document gets wrong.

The routes describe their own requests and responses; ``install_security`` post-processes
the document FastAPI generates so that it also says which credentials each operation takes
(bearer token, session cookie, job-scoped stream token) and which routes are public. A
client generator or a fuzzer (the CI runs Schemathesis against this document) relies on both.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from ..auth import CLERK_SESSION_COOKIE, SESSION_COOKIE, STREAM_TOKEN_PARAMETER
from ..models import (
    ActivityEvent,
    CompleteEvent,
    ConnectedEvent,
    CreateJobResponse,
    DeltaEvent,
    ErrorEvent,
    SuggestionRequest,
)
from .state import AppState

__all__ = [
    "CREATE_OPENAPI",
    "DELETE_RESPONSES",
    "STREAM_RESPONSES",
    "envelope",
    "error_responses",
    "install_security",
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


def _created_schema() -> dict[str, Any]:
    """``CreateJobResponse``, with the stream token this server always issues."""
    schema = CreateJobResponse.model_json_schema(by_alias=True)
    schema["properties"]["streamToken"] = {
        "type": "string",
        "description": (
            "Credential for GET and DELETE of this job alone, as `?token=`; "
            "valid for FEATURE_PLANNER_STREAM_TOKEN_TTL_S (15 minutes by default)"
        ),
    }
    schema["required"] = [*schema["required"], "streamToken"]
    return schema


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
            "headers": {"Location": {"description": "The streamUrl", "schema": {"type": "string"}}},
            "content": {"application/json": {"schema": envelope(_created_schema())}},
        }
    },
}


def _event(name: str, model: type[BaseModel]) -> dict[str, Any]:
    """One Server-Sent Event: its name, its id, and its data as JSON (FastAPI's shape)."""
    return {
        "type": "object",
        "required": ["event", "id", "data"],
        "properties": {
            "event": {"const": name},
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": model.model_json_schema(by_alias=True, mode="serialization"),
            },
        },
    }


_STREAM_200: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "An event stream: `connected`, `delta`..., then `complete` or `error`. "
            "Send `Last-Event-ID` (or `?lastEventId=`) to resume."
        ),
        # `itemSchema`: one event (OpenAPI 3.2, and what FastAPI writes for its own streams).
        "content": {
            "text/event-stream": {
                "itemSchema": {
                    "oneOf": [
                        _event("connected", ConnectedEvent),
                        _event("delta", DeltaEvent),
                        _event("activity", ActivityEvent),
                        _event("complete", CompleteEvent),
                        _event("error", ErrorEvent),
                    ]
                }
            }
        },
    },
}

STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_STREAM_200,
    204: {"description": _DESCRIPTIONS[204]},
    **error_responses(400, 401, 403, 404, 410, 429, 503),
}

DELETE_RESPONSES: dict[int | str, dict[str, Any]] = error_responses(400, 401, 403, 404, 410, 503)


# -- security, and corrections to the generated document --------------------------------

_API_PREFIX = "/api/"
_JOB_PATH = "/api/feature-planner/suggest-feature/{job_id}"
_BEARER, _COOKIE, _STREAM_TOKEN = "bearerAuth", "sessionCookie", "streamToken"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

# What the uvicorn-facing guard (``guard.py``) answers before any route runs.
_GUARD_RESPONSES: dict[str, dict[str, Any]] = {
    "400": {"description": "The path, query or a header contains a NUL byte"},
    "414": {"description": "Path over 2 KiB or query over 8 KiB"},
    "431": {"description": "Headers over 128 KiB"},
}

_JSON_OBJECT = {"type": "object"}

# The health and metrics routes: public, described here so that they are listed whether or
# not their router puts them in the schema.
_PUBLIC_OPERATIONS: dict[str, dict[str, Any]] = {
    "/healthz": {
        "summary": "The process is alive",
        "responses": {
            "200": {
                "description": "Alive",
                "content": {"application/json": {"schema": _JSON_OBJECT}},
            }
        },
    },
    "/readyz": {
        "summary": "The job store is reachable",
        "responses": {
            "200": {
                "description": "Ready",
                "content": {"application/json": {"schema": _JSON_OBJECT}},
            },
            "503": {
                "description": "The job store is unreachable",
                "content": {"application/json": {"schema": _JSON_OBJECT}},
            },
        },
    },
    "/metrics": {
        "summary": "Prometheus metrics",
        "responses": {
            "200": {
                "description": "Prometheus text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    },
}

# ``Last-Event-ID``: the stream refuses more than 18 digits (400).
_MAX_EVENT_ID = 10**18 - 1
_UUID4_PATTERN = (
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
)


def install_security(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json``) declare how each operation
    authenticates, and correct what FastAPI cannot know about the hand-parsed routes."""
    state: AppState = app.state.planner
    schemes = security_schemes(state.settings.auth)
    models = list(state.service.provider.models)
    generate: Callable[[], dict[str, Any]] = app.openapi
    described: dict[str, Any] | None = None

    def openapi() -> dict[str, Any]:
        nonlocal described
        if described is None:
            described = describe_api(copy.deepcopy(generate()), schemes, models)
            app.openapi_schema = described
        return described

    app.openapi = openapi  # type: ignore[method-assign]


def security_schemes(auth_mode: str) -> dict[str, dict[str, Any]]:
    """The credentials the API accepts in ``auth_mode`` (``FEATURE_PLANNER_AUTH``)."""
    schemes: dict[str, dict[str, Any]] = {
        _BEARER: {
            "type": "http",
            "scheme": "bearer",
            "description": {
                "local": "A token of FEATURE_PLANNER_USERS",
                "oidc": "An OpenID Connect (Clerk) session JWT",
                "api-key": "An API key of FEATURE_PLANNER_API_KEYS",
            }.get(auth_mode, "A bearer token"),
        },
        _STREAM_TOKEN: {
            "type": "apiKey",
            "in": "query",
            "name": STREAM_TOKEN_PARAMETER,
            "description": (
                "The streamToken that Phase 1 answers: GET and DELETE of that job only, "
                "and only without an Authorization header"
            ),
        },
    }
    cookie = {"local": SESSION_COOKIE, "oidc": CLERK_SESSION_COOKIE}.get(auth_mode)
    if cookie is not None:
        schemes[_COOKIE] = {
            "type": "apiKey",
            "in": "cookie",
            "name": cookie,
            "description": (
                "The session cookie (the printed login link sets it)"
                if auth_mode == "local"
                else "Clerk's session cookie"
            )
            + "; POST, PUT and DELETE with it must come from this site's origin (CSRF)",
        }
    return schemes


def describe_api(
    schema: dict[str, Any], schemes: dict[str, dict[str, Any]], models: list[str]
) -> dict[str, Any]:
    """``schema`` (modified in place) with ``schemes``, a ``security`` on every operation,
    the public routes, the guard's refusals, the models ``customModel`` may name, and
    nested ``$defs`` moved to components."""
    _hoist_defs(schema)
    _restrict_custom_model(schema, models)
    components = schema.setdefault("components", {})
    components["securitySchemes"] = schemes
    everyday: list[dict[str, list[str]]] = [
        {name: []} for name in (_BEARER, _COOKIE) if name in schemes
    ]
    paths: dict[str, dict[str, Any]] = schema.setdefault("paths", {})
    for path, public in _PUBLIC_OPERATIONS.items():
        operation = paths.setdefault(path, {}).setdefault("get", {"tags": ["health"]})
        operation.update(copy.deepcopy(public))
        operation.setdefault("operationId", path.strip("/"))
    for path, method, operation in _operations(paths):
        if path in _PUBLIC_OPERATIONS:
            operation["security"] = []  # public: no credentials
        elif path.startswith(_API_PREFIX):
            job_route = path == _JOB_PATH and method in ("get", "delete")
            operation["security"] = everyday + ([{_STREAM_TOKEN: []}] if job_route else [])
        if path == _JOB_PATH:
            _correct_job_parameters(operation)
        responses = operation.setdefault("responses", {})
        for status, response in _GUARD_RESPONSES.items():
            responses.setdefault(status, copy.deepcopy(response))
    return schema


def _restrict_custom_model(schema: dict[str, Any], models: list[str]) -> None:
    """``customModel`` must name one of the provider's models (else 422): list them, or
    allow only ``null`` when the provider offers no choice."""
    create = schema["paths"].get("/api/feature-planner/suggest-feature", {}).get("post", {})
    body = create.get("requestBody", {}).get("content", {}).get("application/json", {})
    custom_model = body.get("schema", {}).get("properties", {}).get("customModel")
    if custom_model is None:
        return
    choices: list[dict[str, Any]] = [{"type": "string", "enum": models}] if models else []
    custom_model["anyOf"] = [*choices, {"type": "null"}]
    custom_model["description"] = (
        "One of the models the server offers (GET /api/feature-planner/config)"
    )


def _operations(paths: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in paths.items():
        for method, operation in item.items():
            if method in _METHODS:
                yield path, method, operation


def _correct_job_parameters(operation: dict[str, Any]) -> None:
    """The job id must be a UUID v4 and an event id at most 18 digits (else 400):
    ``format: uuid`` and ``minimum`` alone would promise more than the routes accept."""
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        if parameter.get("in") == "path" and parameter.get("name") == "job_id":
            schema["pattern"] = _UUID4_PATTERN
        elif parameter.get("name") in ("Last-Event-ID", "lastEventId"):
            schema["maximum"] = _MAX_EVENT_ID


def _hoist_defs(schema: dict[str, Any]) -> None:
    """Pydantic puts a model's sub-schemas in a nested ``$defs`` and points at them with
    ``#/$defs/…``, which in an OpenAPI document resolves against the document's root, where
    there is no ``$defs``. Move them to ``components/schemas`` and point there."""
    found: dict[str, Any] = {}

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            defs = node.pop("$defs", None)
            if isinstance(defs, dict):
                for name, definition in defs.items():
                    if found.setdefault(name, definition) != definition:
                        raise ValueError(f"two different OpenAPI schemas are named {name!r}")
                    collect(definition)
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    def repoint(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
            for value in node.values():
                repoint(value)
        elif isinstance(node, list):
            for value in node:
                repoint(value)

    collect(schema)
    if found:
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in found.items():
            if components.setdefault(name, definition) != definition:
                raise ValueError(f"two different OpenAPI schemas are named {name!r}")
        repoint(schema)
