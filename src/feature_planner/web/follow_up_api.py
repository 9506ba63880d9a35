"""The follow-up route's handler: a new job that starts from a completed one, steered by
what the user says about it ("why #2?", "not this one", "split #3 into smaller steps").

It answers like Phase 1 (the new job's ``jobId``, ``streamUrl``, ``expiresAt`` and
``streamToken``, with ``Location``), plus the ``parentJobId`` it follows; the new job then
streams like any job.
"""

from __future__ import annotations

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from ..models import FollowUpRequest
from .answers import CreatedJob
from .api import created_job
from .bodies import parse_body, read_json_body
from .params import idempotency_key, job_id
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
    body = parse_body(FollowUpRequest, await read_json_body(request))
    job = await state.service.follow_up(identity.user_id, parent, body, key)
    return created_job(state, identity.user_id, job, parentJobId=parent)
