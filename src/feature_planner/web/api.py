"""The API routes: Phase 1 (create), Phase 2 (stream), cancel, and the page's config.

Handlers take the raw ``Request`` and parse it themselves: the create call is on the hot
path, and FastAPI's body machinery would cost more than the rest of the call together.
The OpenAPI description is declared alongside (``PlannerApi.mount``), so ``/docs`` stays
exact.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from pydantic import ValidationError
from starlette.responses import Response

from ..errors import (
    InvalidJsonError,
    InvalidLastEventIdError,
    RequestValidationError,
)
from ..jobs.service import STREAM_PATH, NothingMoreError
from ..models import FeatureType, PriorityLevel, SuggestionRequest
from .bodies import field_errors, read_json_body, refuse_foreign_body
from .openapi import CREATE_OPENAPI, DELETE_RESPONSES, STREAM_RESPONSES, error_responses
from .responses import EventStreamResponse, json_response
from .routing import add_routes
from .state import AppState

__all__ = ["PREFIX", "PlannerApi"]
PREFIX = "/api/feature-planner"

_JOB_ID_PARAMETER = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "description": "The jobId from Phase 1 (a UUID v4)",
    "schema": {"type": "string", "format": "uuid"},
}
_LAST_EVENT_ID_PARAMETERS = [
    {
        "name": "Last-Event-ID",
        "in": "header",
        "required": False,
        "description": "Resume after this event id",
        "schema": {"type": "integer", "minimum": 0},
    },
    {
        "name": "lastEventId",
        "in": "query",
        "required": False,
        "description": "The same as the Last-Event-ID header",
        "schema": {"type": "integer", "minimum": 0},
    },
]


class PlannerApi:
    """The API's handlers, bound to one app's state."""

    def __init__(self, state: AppState) -> None:
        self._state = state
        self._service = state.service

    def mount(self, app: FastAPI) -> None:
        """Serve the routes as plain Starlette routes, and describe them for OpenAPI.

        A FastAPI route costs more per request than the whole create call; so each route
        is served by a Starlette ``Route`` and described by an ``APIRoute`` placed after
        it, which the schema lists and the fast route always shadows.
        """
        docs = APIRouter(prefix=PREFIX, tags=["feature-planner"])
        job_path = "/suggest-feature/{job_id}"
        table: list[tuple[str, str, Callable[[Request], Awaitable[Response]], dict[str, Any]]] = [
            (
                "POST",
                "/suggest-feature",
                self.create_job,
                {
                    "status_code": 201,
                    "summary": "Phase 1: create a suggestion job",
                    "openapi_extra": CREATE_OPENAPI,
                    "responses": error_responses(401, 403, 400, 413, 415, 422, 429, 503),
                },
            ),
            (
                "GET",
                job_path,
                self.stream_job,
                {
                    "summary": "Phase 2: stream a job's events (Server-Sent Events)",
                    "responses": STREAM_RESPONSES,
                    "openapi_extra": {
                        "parameters": [_JOB_ID_PARAMETER, *_LAST_EVENT_ID_PARAMETERS]
                    },
                },
            ),
            (
                "DELETE",
                job_path,
                self.cancel_job,
                {
                    "status_code": 202,
                    "summary": "Cancel one of your jobs",
                    "responses": DELETE_RESPONSES,
                    "openapi_extra": {"parameters": [_JOB_ID_PARAMETER]},
                },
            ),
            (
                "GET",
                "/config",
                self.config,
                {
                    "summary": "What this server offers: provider, models, choices and limits",
                    "responses": error_responses(401),
                },
            ),
        ]
        add_routes(app, [(method, PREFIX + path, handler) for method, path, handler, _ in table])
        for method, path, handler, doc in table:
            docs.add_api_route(path, handler, methods=[method], response_class=Response, **doc)
        app.include_router(docs)

    async def create_job(self, request: Request) -> Response:
        identity = await self._state.authenticate(request, state_changing=True)
        suggestion = _parse_suggestion(await read_json_body(request))
        job = await self._service.create(identity.user_id, suggestion)
        stream_url = STREAM_PATH + job.id
        data = {
            "jobId": job.id,
            "streamUrl": stream_url,
            "expiresAt": job.expires_at_ms,
            "streamToken": self._state.stream_tokens.issue(identity.user_id, job.id),
        }
        return json_response(data, 201, {"location": stream_url})

    async def stream_job(self, request: Request) -> Response:
        job_id: str = request.path_params["job_id"]
        identity = await self._state.authenticate(request, state_changing=False, job_id=job_id)
        last_event_id = _last_event_id(request)
        try:
            subscriber = await self._service.open_stream(identity.user_id, job_id, last_event_id)
        except NothingMoreError:
            return Response(status_code=204)
        return EventStreamResponse(subscriber)

    async def cancel_job(self, request: Request) -> Response:
        job_id: str = request.path_params["job_id"]
        identity = await self._state.authenticate(request, state_changing=True, job_id=job_id)
        await refuse_foreign_body(request)
        await self._service.cancel(identity.user_id, job_id)
        return json_response({"jobId": job_id, "status": "cancelled"}, 202)

    async def config(self, request: Request) -> Response:
        await self._state.authenticate(request, state_changing=False)
        provider = self._service.provider
        return json_response(
            {
                "provider": provider.name,
                "providerLabel": _provider_label(provider.name),
                "models": list(provider.models),
                "featureTypes": [_choice(item) for item in FeatureType],
                "priorityLevels": [_choice(item) for item in PriorityLevel],
                "limits": {"pageOrComponent": 200, "additionalContext": 1000},
            }
        )


def _choice(item: FeatureType | PriorityLevel) -> dict[str, str]:
    return {"value": item.value, "label": item.value.replace("-", " ").capitalize()}


def _provider_label(name: str) -> str:
    return {
        "offline": "Offline engine (no AI model)",
        "scripted": "Scripted provider (no AI model)",
    }.get(name, name)


# -- parsing ---------------------------------------------------------------------------


def _parse_suggestion(body: bytes) -> SuggestionRequest:
    try:
        return SuggestionRequest.model_validate_json(body, by_alias=True, by_name=False)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise InvalidJsonError from None
        raise RequestValidationError(field_errors(exc)) from None


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id")
    if raw is None:
        raw = request.query_params.get("lastEventId")
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise InvalidLastEventIdError(
            f"Last-Event-ID must be a non-negative integer, not {raw[:32]!r}"
        )
    return int(raw)
