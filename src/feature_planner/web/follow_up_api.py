"""The follow-up route's handler: a new job that starts from a completed one, steered by
what the user says about it ("why #2?", "not this one", "split #3 into smaller steps").

It answers like Phase 1 (the new job's ``jobId``, ``streamUrl``, ``expiresAt`` and
``streamToken``, with ``Location``), plus the ``parentJobId`` it follows; the new job then
streams like any job.
"""

from __future__ import annotations

from pydantic import Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from ..errors import InvalidJsonError, RequestValidationError
from ..models import FollowUpRequest
from .answers import CreatedJob
from .bodies import field_errors, read_json_body
from .params import idempotency_key, job_id
from .paths import job_url
from .responses import json_response
from .state import AppState

__all__ = ["CreatedFollowUp", "follow_up"]


class CreatedFollowUp(CreatedJob):
    """A follow-up's answer: Phase 1's, and the job it follows."""

    parent_job_id: str = Field(description="The completed job this one follows")


async def follow_up(state: AppState, request: Request) -> Response:
    # Not a job route's credentials: a share token is refused (read-only), a stream token
    # is for watching its own job.
    identity = await state.authenticate(request, state_changing=True)
    parent = job_id(request)
    key = idempotency_key(request)
    body = _parse(await read_json_body(request))
    job = await state.service.follow_up(identity.user_id, parent, body, key)
    stream_url = job_url(job.job_id)
    data = {
        "jobId": job.job_id,
        "streamUrl": stream_url,
        "expiresAt": job.expires_at_ms,
        "streamToken": state.stream_tokens.issue(identity.user_id, job.job_id),
        "parentJobId": parent,
    }
    headers = {"location": stream_url}
    if job.replayed:
        headers["idempotent-replayed"] = "true"
    return json_response(data, 201, headers)


def _parse(body: bytes) -> FollowUpRequest:
    try:
        return FollowUpRequest.model_validate_json(body, by_alias=True, by_name=False)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise InvalidJsonError from None
        raise RequestValidationError(field_errors(exc)) from None
