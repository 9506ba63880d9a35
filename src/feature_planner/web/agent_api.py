"""The caller's own custom agent: ``GET / PUT / DELETE /api/feature-planner/agent``.

Having no custom agent is the normal case, not an error: ``GET`` then answers 200 with
``data: null`` (runs use the default agent). Only ``DELETE`` of an agent that is not there
is refused (404), since there is nothing to remove.

Served like the job routes (``PlannerApi``): plain Starlette routes that parse the body by
hand with the same limits, shadowed by FastAPI routes that only describe them for OpenAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from pydantic import ValidationError
from starlette.responses import Response

from ..agent.profile import AgentProfile
from ..agents import AgentStore
from ..errors import FeaturePlannerError, InvalidJsonError, RequestValidationError
from .api import PREFIX
from .bodies import field_errors, read_json_body, refuse_foreign_body
from .openapi import envelope, error_responses
from .responses import json_response
from .routing import add_routes
from .state import AppState

__all__ = ["AGENT_PATH", "AgentApi", "AgentNotFoundError"]

AGENT_PATH = PREFIX + "/agent"

_NO_STORE = {"cache-control": "no-store"}  # one user's settings: never cached on the way


class AgentNotFoundError(FeaturePlannerError):
    """``DELETE`` with no custom agent to remove."""

    status = 404
    code = "AGENT_NOT_FOUND"
    default_message = "You have no custom agent; runs use the default agent"


# The shared descriptions speak of jobs; these routes' own reasons.
_DESCRIPTIONS = {
    400: "The body is not valid JSON",
    403: "A cookie-authenticated change sent from another origin (CSRF)",
    404: "You have no custom agent to remove",
    503: "The custom-agent database is unreachable",
}


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    responses = error_responses(*statuses)
    for status, response in responses.items():
        if status in _DESCRIPTIONS:
            response["description"] = _DESCRIPTIONS[int(status)]
    return responses


_PROFILE_SCHEMA = AgentProfile.model_json_schema(by_alias=True)

_GET_200: dict[str, Any] = {
    "200": {
        "description": "Your custom agent, or `data: null` when you have none (runs use the "
        "default agent)",
        "content": {
            "application/json": {"schema": envelope({"anyOf": [_PROFILE_SCHEMA, {"type": "null"}]})}
        },
    }
}

_PROFILE_200: dict[str, Any] = {
    "200": {
        "description": "Your custom agent",
        "content": {"application/json": {"schema": envelope(_PROFILE_SCHEMA)}},
    }
}

_PUT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    **AgentProfile.model_json_schema(by_alias=True),
                    "additionalProperties": False,
                }
            }
        },
    },
    "responses": _PROFILE_200,
}


class AgentApi:
    """The custom-agent handlers, bound to one app's state and agent store."""

    def __init__(self, state: AppState, agents: AgentStore) -> None:
        self._state = state
        self._agents = agents

    def mount(self, app: FastAPI) -> None:
        """Serve the routes, and describe them for OpenAPI (see ``PlannerApi.mount``)."""
        docs = APIRouter(prefix=PREFIX, tags=["custom agent"])
        table: list[tuple[str, Callable[[Request], Awaitable[Response]], dict[str, Any]]] = [
            (
                "GET",
                self.get_agent,
                {
                    "summary": "Your custom agent, or null when you have none",
                    "openapi_extra": {"responses": _GET_200},
                    "responses": _responses(401, 503),
                },
            ),
            (
                "PUT",
                self.put_agent,
                {
                    "summary": "Create or replace your custom agent",
                    "description": "When `isActive` is true, your jobs run with this agent.",
                    "openapi_extra": _PUT_OPENAPI,
                    "responses": _responses(401, 403, 400, 413, 415, 422, 503),
                },
            ),
            (
                "DELETE",
                self.delete_agent,
                {
                    "status_code": 204,
                    "summary": "Remove your custom agent; your jobs use the default agent again",
                    "response_description": "Removed",
                    "responses": _responses(401, 403, 404, 503),
                },
            ),
        ]
        add_routes(app, [(method, AGENT_PATH, handler) for method, handler, _ in table])
        for method, handler, doc in table:
            docs.add_api_route("/agent", handler, methods=[method], response_class=Response, **doc)
        app.include_router(docs)

    async def get_agent(self, request: Request) -> Response:
        identity = await self._state.authenticate(request, state_changing=False)
        profile = await self._agents.get(identity.user_id)
        return json_response(None if profile is None else profile.to_wire(), headers=_NO_STORE)

    async def put_agent(self, request: Request) -> Response:
        identity = await self._state.authenticate(request, state_changing=True)
        profile = _parse_profile(await read_json_body(request))
        stored = await self._agents.put(identity.user_id, profile)
        return json_response(stored.to_wire(), headers=_NO_STORE)

    async def delete_agent(self, request: Request) -> Response:
        identity = await self._state.authenticate(request, state_changing=True)
        await refuse_foreign_body(request)
        if not await self._agents.delete(identity.user_id):
            raise AgentNotFoundError
        return Response(status_code=204)


def _parse_profile(body: bytes) -> AgentProfile:
    try:
        return AgentProfile.model_validate_json(body, strict=True, by_alias=True, by_name=False)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise InvalidJsonError from None
        raise RequestValidationError(field_errors(exc)) from None
