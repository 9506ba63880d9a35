"""The route table: every route of the service, once.

The router (``routing.py``), the fast path's match table (``fast_path.py``) and the OpenAPI
document (``openapi.py``) are all derived from ``ROUTES``. Each path is named once
(``paths.py``), each parameter's rules once (``params.py``), and each route's answers and
refusals here. To add a route: its handler, then its row here.
"""

from __future__ import annotations

from typing import Final

from ..errors import (
    AgentNotFoundError,
    AuthenticationError,
    CrossOriginError,
    DailyBudgetExceededError,
    IdempotencyKeyReusedError,
    InvalidJobIdError,
    InvalidJsonError,
    InvalidLastEventIdError,
    JobActiveError,
    JobFinishedError,
    JobForbiddenError,
    JobNotCompleteError,
    JobNotFoundError,
    NotConfiguredError,
    PayloadTooLargeError,
    RateLimitedError,
    RequestValidationError,
    ServerDrainingError,
    ShareReadOnlyError,
    StoreUnavailableError,
    SuggestionNotFoundError,
    TooManyStreamsError,
    UnsupportedMediaTypeError,
    UpstreamError,
)
from ..models import (
    EVENT_MODELS,
    AgentProfile,
    FollowUpRequest,
    JobPage,
    JobStatus,
    ShareLink,
    SuggestionRequest,
)
from . import agent_api, api, export_api, follow_up_api, history_api, issue_api, openapi, pages
from .answers import CancelledJob, CreatedJob, Health, Readiness, ServerConfig, Unready
from .endpoint import Answer, Endpoint, EventStream
from .params import (
    CURSOR,
    FORMAT,
    IDEMPOTENCY_KEY,
    JOB_ID,
    LAST_EVENT_ID,
    LAST_EVENT_ID_QUERY,
    LIMIT,
    STATUS,
    SUGGESTION_INDEX,
    WAIT,
)
from .paths import (
    AGENT_PATH,
    CONFIG_PATH,
    EXPORT_PATH,
    FOLLOW_UP_PATH,
    HISTORY_JOB_PATH,
    HISTORY_PATH,
    ISSUE_PATH,
    JOB_PATH,
    JOBS_PATH,
    SHARE_PATH,
)

__all__ = ["ROUTES"]

_JOBS, _AGENT, _HEALTH = "feature-planner", "custom agent", "health"

# Who may call, and the changes a cookie may only make from this site's own origin.
_CALLER = (AuthenticationError, ShareReadOnlyError)
_CHANGE = (AuthenticationError, CrossOriginError, ShareReadOnlyError)
_JSON_BODY = (InvalidJsonError, PayloadTooLargeError, UnsupportedMediaTypeError)
_FOREIGN_BODY = (PayloadTooLargeError, UnsupportedMediaTypeError)  # a body where none belongs
_OWN_JOB = (InvalidJobIdError, JobNotFoundError, JobForbiddenError)
_STORE = (StoreUnavailableError,)
_FILE = {
    "Content-Disposition": '`attachment; filename="<page>-<job>.md"` (or `.json`)',
    "Cache-Control": "`no-store`",
}

ROUTES: Final[tuple[Endpoint, ...]] = (
    Endpoint(
        "POST",
        JOBS_PATH,
        api.create_job,
        "Phase 1: create a suggestion job",
        body=SuggestionRequest,
        params=(IDEMPOTENCY_KEY,),
        answers=(
            Answer(
                201,
                "The job was created; open streamUrl to run and watch it (or, with an "
                "Idempotency-Key used before with the same body, the job it made)",
                CreatedJob,
                headers={
                    "Location": "The streamUrl",
                    "Idempotent-Replayed": "`true` when an earlier request with the same "
                    "Idempotency-Key made the job",
                },
            ),
        ),
        errors=(
            *_CHANGE,
            *_JSON_BODY,
            RequestValidationError,
            IdempotencyKeyReusedError,
            RateLimitedError,
            *_STORE,
        ),
        tag=_JOBS,
        fast=True,
    ),
    Endpoint(
        "GET",
        JOB_PATH,
        api.read_job,
        "Phase 2: stream a job's events (Server-Sent Events), or read its status (JSON)",
        description="With `Accept: application/json` (and no `text/event-stream` in it) the "
        "answer is the job's status, and a pending job is not started; `?wait=` holds it "
        "until the job is final. Otherwise the answer is the job's event stream.",
        params=(JOB_ID, LAST_EVENT_ID, LAST_EVENT_ID_QUERY, WAIT),
        answers=(
            Answer(
                200,
                "An event stream: `connected`, `delta`..., then `complete` or `error`. "
                "Send `Last-Event-ID` (or `?lastEventId=`) to resume.",
                EventStream(EVENT_MODELS),
            ),
            Answer(200, "The job's status (asked for with `Accept: application/json`)", JobStatus),
            Answer(204, "Resumed from the job's final event: nothing more, ever"),
        ),
        errors=(
            AuthenticationError,
            *_OWN_JOB,
            InvalidLastEventIdError,
            JobFinishedError,
            TooManyStreamsError,
            RequestValidationError,
            *_STORE,
            ServerDrainingError,
        ),
        access="job",
        tag=_JOBS,
        fast=True,
    ),
    Endpoint(
        "DELETE",
        JOB_PATH,
        api.cancel_job,
        "Cancel one of your jobs",
        params=(JOB_ID,),
        answers=(
            Answer(202, "Cancelled: its subscribers receive `error` CANCELLED", CancelledJob),
        ),
        errors=(*_CHANGE, *_FOREIGN_BODY, *_OWN_JOB, JobFinishedError, *_STORE),
        access="job",
        tag=_JOBS,
        fast=True,
    ),
    Endpoint(
        "POST",
        FOLLOW_UP_PATH,
        follow_up_api.follow_up,
        "Follow up on a completed job: a new job steered by your message",
        description="The new job starts from the completed job's input, its suggestions and "
        "the files it read, with your `message` (about the suggestion at `suggestionIndex`, "
        "if given); it streams like any job (open its streamUrl), counts toward the create "
        "limit, and names its parent in the history (`parentJobId`).",
        body=FollowUpRequest,
        params=(JOB_ID, IDEMPOTENCY_KEY),
        answers=(
            Answer(
                201,
                "The follow-up job was created; open streamUrl to run and watch it",
                follow_up_api.CreatedFollowUp,
                headers={
                    "Location": "The streamUrl",
                    "Idempotent-Replayed": "`true` when an earlier request with the same "
                    "Idempotency-Key made the job",
                },
            ),
        ),
        errors=(
            *_CHANGE,
            *_JSON_BODY,
            RequestValidationError,
            IdempotencyKeyReusedError,
            *_OWN_JOB,
            JobNotCompleteError,
            SuggestionNotFoundError,
            RateLimitedError,
            DailyBudgetExceededError,
            *_STORE,
        ),
        tag=_JOBS,
    ),
    Endpoint(
        "POST",
        SHARE_PATH,
        history_api.share_job,
        "Share a completed job: a watch-only link",
        description="The token lets anyone holding it read and stream this one job "
        "(`?token=` or `Authorization: Bearer`), nothing else; it expires.",
        params=(JOB_ID,),
        answers=(Answer(201, "The link, its token and when it expires", ShareLink),),
        errors=(*_CHANGE, *_FOREIGN_BODY, *_OWN_JOB, JobNotCompleteError, *_STORE),
        tag=_JOBS,
    ),
    Endpoint(
        "DELETE",
        SHARE_PATH,
        history_api.unshare_job,
        "Revoke every share link of a job",
        params=(JOB_ID,),
        answers=(Answer(204, "Revoked"),),
        errors=(*_CHANGE, *_FOREIGN_BODY, *_OWN_JOB, *_STORE),
        tag=_JOBS,
    ),
    Endpoint(
        "GET",
        EXPORT_PATH,
        export_api.export_job,
        "Download a completed job: Markdown or JSON",
        description="A file (`Content-Disposition: attachment`): `markdown`, one section per "
        "suggestion with its evidence quoted, or `json`, the job's status document itself "
        "(without the `success`/`data` envelope). A share link of the job may export it.",
        params=(JOB_ID, FORMAT),
        answers=(
            Answer(
                200,
                "`format=markdown`: the job as Markdown",
                str,
                media_type="text/markdown",
                headers=_FILE,
            ),
            Answer(
                200,
                "`format=json`: the job's status document",
                JobStatus,
                envelope=False,
                headers=_FILE,
            ),
        ),
        errors=(
            AuthenticationError,
            *_OWN_JOB,
            JobNotCompleteError,
            RequestValidationError,
            *_STORE,
        ),
        tag=_JOBS,
    ),
    Endpoint(
        "GET",
        HISTORY_PATH,
        history_api.list_jobs,
        "Your runs, newest first, active ones included",
        params=(LIMIT, CURSOR, STATUS),
        answers=(Answer(200, "A page of your runs; nextCursor fetches the next", JobPage),),
        errors=(*_CALLER, RequestValidationError, *_STORE),
        tag=_JOBS,
    ),
    Endpoint(
        "DELETE",
        HISTORY_JOB_PATH,
        history_api.remove_job,
        "Remove a finished job from your history",
        params=(JOB_ID,),
        answers=(Answer(204, "Removed"),),
        errors=(*_CHANGE, *_FOREIGN_BODY, *_OWN_JOB, JobActiveError, *_STORE),
        tag=_JOBS,
    ),
    Endpoint(
        "POST",
        ISSUE_PATH,
        issue_api.file_issue,
        "File a suggestion of a completed job as a GitHub issue, once",
        description="The issue goes to FEATURE_PLANNER_GITHUB_REPOSITORY: the suggestion's "
        "title; its description, rationale, considerations, effort, impact and evidence "
        "(permalinks at the repository's current commit) as the body; labels from the feature "
        "type and `priority: <level>`. Filing the same suggestion again, or at the same time, "
        "answers the first issue (200).",
        params=(JOB_ID, SUGGESTION_INDEX),
        answers=(
            Answer(201, "Filed: the new issue", issue_api.IssueLink),
            Answer(200, "Filed before: the suggestion's issue", issue_api.IssueLink),
        ),
        errors=(
            *_CHANGE,
            *_FOREIGN_BODY,
            RequestValidationError,
            *_OWN_JOB,
            JobNotCompleteError,
            SuggestionNotFoundError,
            NotConfiguredError,
            UpstreamError,
            *_STORE,
        ),
        tag=_JOBS,
    ),
    Endpoint(
        "GET",
        CONFIG_PATH,
        api.config,
        "What this server offers: provider, models, choices and limits",
        answers=(Answer(200, "The server's offer", ServerConfig),),
        errors=_CALLER,
        tag=_JOBS,
    ),
    Endpoint(
        "GET",
        AGENT_PATH,
        agent_api.get_agent,
        "Your custom agent, or null when you have none",
        answers=(
            Answer(
                200,
                "Your custom agent, or `data: null` when you have none (runs use the "
                "default agent)",
                AgentProfile | None,
            ),
        ),
        errors=(*_CALLER, *_STORE),
        tag=_AGENT,
    ),
    Endpoint(
        "PUT",
        AGENT_PATH,
        agent_api.put_agent,
        "Create or replace your custom agent",
        description="When `isActive` is true, your jobs run with this agent.",
        body=AgentProfile,
        answers=(Answer(200, "Your custom agent", AgentProfile),),
        errors=(*_CHANGE, *_JSON_BODY, RequestValidationError, *_STORE),
        tag=_AGENT,
    ),
    Endpoint(
        "DELETE",
        AGENT_PATH,
        agent_api.delete_agent,
        "Remove your custom agent; your jobs use the default agent again",
        answers=(Answer(204, "Removed"),),
        errors=(*_CHANGE, *_FOREIGN_BODY, AgentNotFoundError, *_STORE),
        tag=_AGENT,
    ),
    Endpoint(
        "GET",
        "/healthz",
        pages.healthz,
        "The process is alive",
        answers=(Answer(200, "Alive", Health, envelope=False),),
        access="public",
        tag=_HEALTH,
    ),
    Endpoint(
        "GET",
        "/readyz",
        pages.readyz,
        "The job store is reachable",
        answers=(
            Answer(200, "Ready", Readiness, envelope=False),
            Answer(503, "The job store is unreachable", Unready, envelope=False),
        ),
        access="public",
        tag=_HEALTH,
    ),
    Endpoint(
        "GET",
        "/metrics",
        pages.metrics,
        "Prometheus metrics",
        answers=(Answer(200, "Prometheus text exposition format", str),),
        access="public",
        tag=_HEALTH,
    ),
    # Not described in the document: the page and its login, and the document itself.
    Endpoint("GET", "/", pages.index, "The feature-planner page", access="public"),
    Endpoint("GET", "/feature-planner", pages.index, "The page, as designed", access="public"),
    Endpoint("GET", "/auth/login", pages.login, "A login link's target", access="public"),
    Endpoint("POST", "/auth/logout", pages.logout, "Forget the session", access="public"),
    Endpoint("GET", "/openapi.json", openapi.serve, "This document", access="public"),
    Endpoint("HEAD", "/openapi.json", openapi.serve, "This document", access="public"),
)
