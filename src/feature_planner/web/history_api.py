"""The kept runs' handlers: the caller's list, removing a run, watch-only share links; and
the wire form of a kept job (``JobStatus``, ``JobSummary`` in ``models``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..errors import JobNotCompleteError, RequestValidationError
from ..events import now_ms
from ..history import HistoryEntry
from ..models import JobState
from .bodies import refuse_foreign_body
from .params import cursor, job_id, limit, status
from .paths import job_url, share_url
from .responses import json_response
from .state import AppState

__all__ = ["list_jobs", "remove_job", "share_job", "status_wire", "summary_wire", "unshare_job"]

_NO_STORE = {"cache-control": "no-store"}


async def list_jobs(state: AppState, request: Request) -> Response:
    identity = await state.authenticate(request, state_changing=False)
    size, after, only = limit(request), cursor(request), status(request)
    try:
        entries, next_cursor = await state.service.reader.page(
            identity.user_id, limit=size, cursor=after, status=only
        )
    except ValueError:
        raise RequestValidationError(
            [{"field": "cursor", "message": "must be the nextCursor of the previous page"}]
        ) from None
    data = {"jobs": [summary_wire(entry) for entry in entries], "nextCursor": next_cursor}
    return json_response(data, headers=_NO_STORE)


async def remove_job(state: AppState, request: Request) -> Response:
    identity = await state.authenticate(request, state_changing=True)
    await refuse_foreign_body(request)
    await state.service.reader.remove(identity.user_id, job_id(request))
    return Response(status_code=204)


async def share_job(state: AppState, request: Request) -> Response:
    identity = await state.authenticate(request, state_changing=True)
    await refuse_foreign_body(request)
    job = job_id(request)
    entry = await state.service.reader.status(identity.user_id, job)
    if entry.status is not JobState.COMPLETED:
        raise JobNotCompleteError
    token, expires_at_ms = state.share_tokens.issue(identity.user_id, job)
    data = {"url": share_url(job, token), "token": token, "expiresAt": expires_at_ms}
    return json_response(data, 201, _NO_STORE)


async def unshare_job(state: AppState, request: Request) -> Response:
    identity = await state.authenticate(request, state_changing=True)
    await refuse_foreign_body(request)
    job = job_id(request)
    await state.service.reader.status(identity.user_id, job)  # the caller's own job
    await state.history.revoke_shares(job, now_ms())
    return Response(status_code=204)


def status_wire(entry: HistoryEntry) -> dict[str, Any]:
    """``JobStatus``: a job read without a stream."""
    data: dict[str, Any] = {
        "jobId": entry.job_id,
        "status": entry.status.value,
        "input": entry.request.to_wire(),
        "createdAt": entry.created_at_ms,
        "lastEventId": entry.last_event_id,
        "parentJobId": entry.parent_job_id,
    }
    optional = {
        "startedAt": entry.started_at_ms,
        "finishedAt": entry.finished_at_ms,
        "result": entry.result,
        "error": entry.error,
        "provider": entry.provider,
        "model": entry.model,
        "tokens": entry.tokens,
        "costUsd": entry.cost_usd,
    }
    data.update((name, value) for name, value in optional.items() if value is not None)
    return data


def summary_wire(entry: HistoryEntry) -> dict[str, Any]:
    """``JobSummary``: one run in the caller's list."""
    data: dict[str, Any] = {
        "jobId": entry.job_id,
        "status": entry.status.value,
        "input": entry.request.to_wire(),
        "createdAt": entry.created_at_ms,
        "streamUrl": job_url(entry.job_id),
        "parentJobId": entry.parent_job_id,
    }
    optional = {
        "finishedAt": entry.finished_at_ms,
        "suggestionsCount": entry.suggestions_count,
        "provider": entry.provider,
        "model": entry.model,
        "tokens": entry.tokens,
        "costUsd": entry.cost_usd,
    }
    data.update((name, value) for name, value in optional.items() if value is not None)
    return data
