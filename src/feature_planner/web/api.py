"""The job routes' handlers: Phase 1 (create), Phase 2 (stream), cancel, and the page's
config. ``routes.py`` says where each is served and what it answers.

Handlers take the raw ``Request`` and parse it themselves: the create call is on the hot
path, and a framework's body machinery would cost more than the rest of the call together.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..jobs.service import CreatedJob as CreatedJobRecord
from ..models import FeatureType, PriorityLevel, SuggestionRequest
from .bodies import parse_body, read_json_body, refuse_foreign_body
from .history_api import status_wire
from .params import idempotency_key, job_id, last_event_id, wait
from .paths import job_url
from .responses import EventStreamResponse, json_response
from .state import AppState

__all__ = ["cancel_job", "config", "create_job", "created_job", "read_job"]


async def create_job(state: AppState, request: Request) -> Response:
    identity = await state.authenticate(request, state_changing=True)
    key = idempotency_key(request)
    suggestion = parse_body(SuggestionRequest, await read_json_body(request))
    job = await state.service.create(identity.user_id, suggestion, key)
    return created_job(state, identity.user_id, job)


def created_job(state: AppState, user_id: str, job: CreatedJobRecord, **more: str) -> Response:
    """Phase 1's answer (also a follow-up's, with ``more``): 201, where the job streams and
    the token to watch it with; ``Idempotent-Replayed`` when a key made it before."""
    stream_url = job_url(job.job_id)
    data = {
        "jobId": job.job_id,
        "streamUrl": stream_url,
        "expiresAt": job.expires_at_ms,
        "streamToken": state.stream_tokens.issue(user_id, job.job_id),
        **more,
    }
    headers = {"location": stream_url}
    if job.replayed:
        headers["idempotent-replayed"] = "true"
    return json_response(data, 201, headers)


async def read_job(state: AppState, request: Request) -> Response:
    """Phase 2 (an event stream); or, asked for JSON only, the job's status."""
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "text/event-stream" not in accept:
        return await _job_status(state, request)
    return await _stream_job(state, request)


async def _job_status(state: AppState, request: Request) -> Response:
    job = request.path_params["job_id"]
    identity = await state.authenticate(request, state_changing=False, job_id=job, read_only=True)
    entry = await state.service.reader.status(
        identity.user_id, job_id(request), wait_s=wait(request)
    )
    return json_response(status_wire(entry), headers={"cache-control": "no-store"})


async def _stream_job(state: AppState, request: Request) -> Response:
    job = request.path_params["job_id"]
    identity = await state.authenticate(request, state_changing=False, job_id=job, read_only=True)
    resume_after = last_event_id(request)
    subscriber = await state.service.open_stream(identity.user_id, job_id(request), resume_after)
    if subscriber is None:  # resumed from the final event: nothing more, ever
        return Response(status_code=204)
    return EventStreamResponse(subscriber)


async def cancel_job(state: AppState, request: Request) -> Response:
    job = request.path_params["job_id"]
    identity = await state.authenticate(request, state_changing=True, job_id=job)
    await refuse_foreign_body(request)
    await state.service.cancel(identity.user_id, job_id(request))
    return json_response({"jobId": job, "status": "cancelled"}, 202)


async def config(state: AppState, request: Request) -> Response:
    await state.authenticate(request, state_changing=False)
    provider = state.service.provider
    return json_response(
        {
            "provider": provider.name,
            "providerLabel": _provider_label(provider.name),
            "models": list(provider.models),
            "featureTypes": [_choice(item) for item in FeatureType],
            "priorityLevels": [_choice(item) for item in PriorityLevel],
            "limits": {"pageOrComponent": 200, "additionalContext": 1000},
            "repositoryUrl": state.settings.repository_url,
            "githubIssues": state.github.configured,
        }
    )


def _choice(item: FeatureType | PriorityLevel) -> dict[str, str]:
    return {"value": item.value, "label": item.value.replace("-", " ").capitalize()}


def _provider_label(name: str) -> str:
    return {
        "offline": "Offline engine (no AI model)",
        "scripted": "Scripted provider (no AI model)",
    }.get(name, name)
