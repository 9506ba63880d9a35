"""The API routes: Phase 1 (create), Phase 2 (stream), cancel, and the page's config.

Handlers take the raw ``Request`` and parse it themselves: the create call is on the hot
path, and FastAPI's body machinery would cost more than the rest of the call together.
The OpenAPI description is declared alongside, so ``/docs`` stays exact.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from ..auth import Identity, check_same_origin
from ..errors import (
    InvalidJsonError,
    InvalidLastEventIdError,
    PayloadTooLargeError,
    RequestValidationError,
    UnsupportedMediaTypeError,
)
from ..jobs.service import STREAM_PATH, NothingMoreError
from ..models import FeatureType, PriorityLevel, SuggestionRequest
from .openapi import CREATE_OPENAPI, DELETE_RESPONSES, STREAM_RESPONSES, error_responses
from .responses import EventStreamResponse, json_response
from .state import AppState

__all__ = ["MAX_BODY_BYTES", "router"]

MAX_BODY_BYTES = 16 * 1024

router = APIRouter(prefix="/api/feature-planner", tags=["feature-planner"])


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.planner
    return state


def _authenticate(request: Request, *, state_changing: bool) -> Identity:
    state = _state(request)
    identity = state.auth.authenticate(request)
    if state_changing:
        check_same_origin(request, identity, state.trusted_origins)
    return identity


@router.post(
    "/suggest-feature",
    status_code=201,
    summary="Phase 1: create a suggestion job",
    openapi_extra=CREATE_OPENAPI,
    responses=error_responses(401, 403, 400, 413, 415, 422, 429, 503),
)
async def create_job(request: Request) -> Response:
    identity = _authenticate(request, state_changing=True)
    suggestion = _parse_suggestion(await _read_json_body(request))
    job = await _state(request).service.create(identity.user_id, suggestion)
    stream_url = STREAM_PATH + job.id
    data = {"jobId": job.id, "streamUrl": stream_url, "expiresAt": job.expires_at_ms}
    return json_response(data, 201, {"location": stream_url})


@router.get(
    "/suggest-feature/{job_id}",
    summary="Phase 2: stream a job's events (Server-Sent Events)",
    responses=STREAM_RESPONSES,
    response_class=Response,
)
async def stream_job(request: Request, job_id: str) -> Response:
    identity = _authenticate(request, state_changing=False)
    last_event_id = _last_event_id(request)
    try:
        subscriber = await _state(request).service.open_stream(
            identity.user_id, job_id, last_event_id
        )
    except NothingMoreError:
        return Response(status_code=204)
    return EventStreamResponse(subscriber)


@router.delete(
    "/suggest-feature/{job_id}",
    status_code=202,
    summary="Cancel one of your jobs",
    responses=DELETE_RESPONSES,
)
async def cancel_job(request: Request, job_id: str) -> Response:
    identity = _authenticate(request, state_changing=True)
    await _state(request).service.cancel(identity.user_id, job_id)
    return json_response({"jobId": job_id, "status": "cancelled"}, 202)


@router.get(
    "/config",
    summary="What this server offers: provider, models, choices and limits",
    responses=error_responses(401),
)
async def planner_config(request: Request) -> Response:
    _authenticate(request, state_changing=False)
    service = _state(request).service
    return json_response(
        {
            "provider": service.provider.name,
            "providerLabel": _provider_label(service.provider.name),
            "models": list(service.provider.models),
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


async def _read_json_body(request: Request) -> bytes:
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


def _parse_suggestion(body: bytes) -> SuggestionRequest:
    try:
        return SuggestionRequest.model_validate_json(body, by_alias=True, by_name=False)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise InvalidJsonError from None
        raise RequestValidationError(_field_errors(exc)) from None


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
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
