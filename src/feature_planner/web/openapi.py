"""The OpenAPI document, derived from the route table (``routes.py``).

Every described route's parameters, body, answers, refusals and credentials come from its
row; pydantic writes every schema (``TypeAdapter.json_schemas``, shared definitions in
``components/schemas``). What is added here is only what no row can know: the credentials
the server's authentication mode accepts, the refusals of the request guard that every route
may answer, and the models this server's provider offers for ``customModel``. A client
generator or a fuzzer (the CI runs Schemathesis against this document) relies on all of it.
"""

from __future__ import annotations

import inspect
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import JsonSchemaMode
from starlette.requests import Request
from starlette.responses import Response

from ..auth import CLERK_SESSION_COOKIE, SESSION_COOKIE, STREAM_TOKEN_PARAMETER
from ..errors import FeaturePlannerError
from ..models import SuggestionRequest
from .answers import ErrorBody, envelope
from .endpoint import Access, Answer, Endpoint, EventStream
from .guard import GUARD_ERRORS
from .paths import CONFIG_PATH
from .responses import json_bytes
from .state import AppState

__all__ = ["Document", "describe", "security_schemes", "serve"]

_REF = "#/components/schemas/{model}"
_BEARER, _COOKIE, _STREAM_TOKEN = "bearerAuth", "sessionCookie", "streamToken"


class Document:
    """One app's document: made on first use, then kept (``app.state.openapi``)."""

    def __init__(self, routes: Sequence[Endpoint], state: AppState, info: dict[str, str]) -> None:
        self._routes = routes
        self._state = state
        self._info = info
        self._json: dict[str, Any] | None = None
        self._bytes: bytes | None = None

    def json(self) -> dict[str, Any]:
        if self._json is None:
            self._json = describe(
                self._routes,
                auth_mode=self._state.settings.auth,
                models=list(self._state.service.provider.models),
                info=self._info,
            )
        return self._json

    def bytes(self) -> bytes:
        if self._bytes is None:
            self._bytes = json_bytes(self.json())
        return self._bytes


async def serve(state: AppState, request: Request) -> Response:
    """``GET /openapi.json``."""
    document: Document = request.app.state.openapi
    return Response(document.bytes(), media_type="application/json")


def describe(
    routes: Iterable[Endpoint], *, auth_mode: str, models: list[str], info: dict[str, str]
) -> dict[str, Any]:
    """The document of ``routes`` (those with a ``tag``) on a server whose authentication
    is ``auth_mode`` and whose provider offers ``models``."""
    described = [route for route in routes if route.tag is not None]
    schemes = security_schemes(auth_mode)
    schemas, components = _schemas(described)
    paths: dict[str, dict[str, Any]] = {}
    for route in described:
        operation = _operation(route, schemas, _security(route.access, schemes))
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    _offer_models(components, models)
    return {
        "openapi": "3.1.0",
        "info": info,
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": schemes},
    }


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


def _security(access: Access, schemes: dict[str, dict[str, Any]]) -> list[dict[str, list[str]]]:
    if access == "public":
        return []  # no credentials
    names = [name for name in (_BEARER, _COOKIE) if name in schemes]
    if access == "job":
        names.append(_STREAM_TOKEN)
    return [{name: []} for name in names]


# -- schemas -----------------------------------------------------------------------------

_Key = tuple[Hashable, ...]


def _schemas(routes: list[Endpoint]) -> tuple[dict[_Key, Any], dict[str, Any]]:
    """Every schema the routes need, by key, and the shared definitions they point to."""
    inputs: dict[tuple[_Key, JsonSchemaMode], Any] = {(("error",), "serialization"): ErrorBody}
    for route in routes:
        for param in route.params:
            inputs[("param", route.method, route.path, param.name), "validation"] = param.type
        if route.body is not None:
            inputs[("body", route.body), "validation"] = route.body
        for answer in route.answers:
            if isinstance(answer.body, EventStream):
                for name, model in answer.body.events.items():
                    inputs[("event", name), "serialization"] = model
            elif answer.body not in (None, str):
                data = envelope(answer.body) if answer.envelope else answer.body
                inputs[("answer", route.method, route.path, answer.status), "serialization"] = data
    found, definitions = TypeAdapter.json_schemas(
        [(key, mode, TypeAdapter(kind)) for (key, mode), kind in inputs.items()],
        by_alias=True,
        ref_template=_REF,
    )
    return {key: schema for (key, _), schema in found.items()}, definitions.get("$defs", {})


def _offer_models(components: dict[str, Any], models: list[str]) -> None:
    """``customModel`` must name one of the provider's models (else 422): list them, or
    allow only ``null`` when the provider offers no choice."""
    request = components.get(SuggestionRequest.__name__, {})
    custom_model = request.get("properties", {}).get("customModel")
    if custom_model is None:
        return
    choices: list[dict[str, Any]] = [{"type": "string", "enum": models}] if models else []
    custom_model["anyOf"] = [*choices, {"type": "null"}]
    custom_model["description"] = f"One of the models the server offers (GET {CONFIG_PATH})"


# -- operations --------------------------------------------------------------------------


def _operation(
    route: Endpoint, schemas: dict[_Key, Any], security: list[dict[str, list[str]]]
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": [route.tag],
        "summary": route.summary,
        "operationId": route.handler.__name__,
    }
    if route.description:
        operation["description"] = route.description
    if route.params:
        operation["parameters"] = [
            {
                "name": param.name,
                "in": param.location,
                "required": param.required,
                "description": param.description,
                "schema": schemas["param", route.method, route.path, param.name],
            }
            for param in route.params
        ]
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas["body", route.body]}},
        }
    responses: dict[str, dict[str, Any]] = {}
    for answer in route.answers:
        described = _answer(route, answer, schemas)
        same_status = responses.setdefault(str(answer.status), described)
        if same_status is not described:  # one status, several media types (SSE or JSON)
            same_status["description"] += "; or " + described["description"]
            same_status.setdefault("content", {}).update(described.get("content", {}))
    for status, errors in _by_status([*route.errors, *GUARD_ERRORS]).items():
        responses[str(status)] = {
            "description": " ".join(f"`{error.code}`: {_doc(error)}" for error in errors),
            "content": {"application/json": {"schema": schemas[("error",)]}},
        }
    operation["responses"] = dict(sorted(responses.items()))
    operation["security"] = security
    return operation


def _answer(route: Endpoint, answer: Answer, schemas: dict[_Key, Any]) -> dict[str, Any]:
    described: dict[str, Any] = {"description": answer.description}
    if isinstance(answer.body, EventStream):
        # `itemSchema`: one event (OpenAPI 3.2, and what FastAPI writes for its streams).
        events = [_event(name, schemas["event", name]) for name in answer.body.events]
        described["content"] = {"text/event-stream": {"itemSchema": {"oneOf": events}}}
    elif answer.body is str:
        described["content"] = {answer.media_type: {"schema": {"type": "string"}}}
    elif answer.body is not None:
        schema = schemas["answer", route.method, route.path, answer.status]
        described["content"] = {"application/json": {"schema": schema}}
    if answer.headers:
        described["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in answer.headers.items()
        }
    return described


def _event(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """One Server-Sent Event: its name, its id, and its data as JSON."""
    return {
        "type": "object",
        "required": ["event", "id", "data"],
        "properties": {
            "event": {"const": name},
            "id": {"type": "string", "pattern": "^[0-9]+$"},
            "data": {
                "type": "string",
                "contentMediaType": "application/json",
                "contentSchema": data,
            },
        },
    }


def _by_status(
    errors: Iterable[type[FeaturePlannerError]],
) -> dict[int, list[type[FeaturePlannerError]]]:
    grouped: dict[int, list[type[FeaturePlannerError]]] = {}
    for error in errors:
        if error not in grouped.setdefault(error.status, []):
            grouped[error.status].append(error)
    return grouped


def _doc(error: type[FeaturePlannerError]) -> str:
    """The first paragraph of the class's docstring: what the refusal means."""
    paragraph = (inspect.getdoc(error) or error.default_message).split("\n\n", 1)[0]
    return " ".join(paragraph.replace("``", "`").split())
