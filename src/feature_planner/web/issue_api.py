"""Filing a suggestion of a completed job as a GitHub issue, once (``ISSUE_PATH``)."""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from ..errors import JobNotCompleteError, NotConfiguredError, SuggestionNotFoundError
from ..github import NOT_CONFIGURED
from ..models import JobState, Suggestion
from .bodies import refuse_foreign_body
from .params import job_id, suggestion_index
from .responses import json_response
from .state import AppState

__all__ = ["IssueLink", "file_issue"]

_NO_STORE = {"cache-control": "no-store"}


async def file_issue(state: AppState, request: Request) -> Response:
    """201 with the issue this call filed; 200 with the one filed before (or at the same
    time, by another request: only one of them reaches GitHub)."""
    identity = await state.authenticate(request, state_changing=True)
    await refuse_foreign_body(request)
    job, index = job_id(request), suggestion_index(request)
    github = state.github
    if not github.configured:
        raise NotConfiguredError(NOT_CONFIGURED)
    entry = await state.service.reader.status(identity.user_id, job)
    if entry.status is not JobState.COMPLETED:
        raise JobNotCompleteError(
            f"The job is {entry.status.value}; only a completed job's suggestions can be "
            "filed as issues"
        )
    suggestions = (entry.result or {}).get("suggestions") or []
    if index >= len(suggestions):
        raise SuggestionNotFoundError(
            f"The job has {len(suggestions)} suggestions (index 0 to {len(suggestions) - 1}); "
            f"there is none at {index}"
            if suggestions
            else "The job has no suggestions"
        )
    suggestion = Suggestion.model_validate(suggestions[index])
    link, filed = await state.issue_links.file_once(
        job,
        index,
        user_id=identity.user_id,
        repository=github.repository,
        file=lambda: github.file(entry.request, suggestion, job_id=job, index=index),
    )
    return json_response({"url": link.url, "number": link.number}, 201 if filed else 200, _NO_STORE)


class IssueLink(BaseModel):
    """The GitHub issue a suggestion was filed as."""

    url: str = Field(description="The issue's page on GitHub")
    number: int = Field(description="The issue's number in the repository")
