"""Python clients for the Feature Planner HTTP API: ``AsyncFeaturePlannerClient`` and its
synchronous mirror ``FeaturePlannerClient``.

Both speak the two-phase contract of DESIGN.md: ``create_job`` (Phase 1) returns the job's
id, ``stream`` (Phase 2) yields its typed events, reconnecting with ``Last-Event-ID`` when the
connection drops so that every event arrives exactly once. ``get_agent``, ``put_agent`` and
``delete_agent`` read, replace and remove the caller's custom agent (``None`` / ``False``
when there is none: that is the normal case, not an error).

Runs are kept (DESIGN.md, "Runs are kept"): ``jobs`` reads one page of the caller's history,
newest first, and ``iter_jobs`` every page; ``get`` reads one job without a stream (``wait``
holds the answer until the job is final); ``follow`` yields a job's events whatever its state
(streamed while it runs, its final event from the history once it has finished);
``delete_job`` removes a finished job from the history; ``share`` / ``unshare`` make and revoke
its watch-only links.

A completed run can be acted on (DESIGN.md, "Act on a run"): ``follow_up`` creates a new job
that starts from it (streamed like any job), ``export`` reads it as a Markdown or JSON
document, ``file_issue`` files one of its suggestions as a GitHub issue (``IssueLink.created``
is False when it had been filed before: the first issue is answered again).

``create_job`` sends an ``Idempotency-Key`` (a fresh one per call unless given) and tries a
create again, with the same key, when the answer was lost or transient: a lost connection, a
timeout, 503, a gateway's 502 / 504, or 429 with a short ``Retry-After``. The server answers a
repeated key with the job it made the first time, so a create retried after the server handled
it still makes one job (``CreatedJob.replayed`` says so). Error answers are mapped back to
the classes of ``feature_planner.errors`` by their code; anything the contract does not
describe becomes an ``UnexpectedResponseError``, and a server that cannot be reached a
``ConnectionFailedError`` (both there too, under ``ClientSideError``).

The protocol logic (URLs, headers, parsing, error mapping, the resume bookkeeping) lives in
module-level helpers and ``_StreamSession``; the two client classes only do the I/O.
This module imports nothing of the server, only wire models (``models`` and the agent's
``AgentProfile``).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal, Self, TypeAlias, TypeVar, overload

import httpx
import pydantic
import tenacity
from httpx_sse import EventSource
from httpx_sse import ServerSentEvent as WireEvent

from .errors import (
    ERRORS_BY_CODE,
    AgentNotFoundError,
    ConnectionFailedError,
    FeaturePlannerError,
    JobFinishedError,
    JobNotFoundError,
    RateLimitedError,
    ServerDrainingError,
    StoreUnavailableError,
    UnexpectedResponseError,
)
from .models import (
    EVENT_MODELS,
    FINAL_EVENTS,
    AgentProfile,
    CompleteEvent,
    CreateJobResponse,
    ErrorEvent,
    JobPage,
    JobState,
    JobStatus,
    JobSummary,
    ShareLink,
    StreamEvent,
    SuggestionRequest,
    WireModel,
)

__all__ = [
    "AsyncFeaturePlannerClient",
    "ConnectionFailedError",
    "CreatedJob",
    "EventEnvelope",
    "ExportFormat",
    "FeaturePlannerClient",
    "IssueLink",
    "StreamEvent",
    "UnexpectedResponseError",
]

JOBS_PATH: Final = "/api/feature-planner/suggest-feature"
HISTORY_PATH: Final = "/api/feature-planner/jobs"
AGENT_PATH: Final = "/api/feature-planner/agent"

# What a job's own routes add to its path (DESIGN.md, "Act on a run").
FOLLOW_UP_SUFFIX: Final = "/follow-up"
EXPORT_SUFFIX: Final = "/export"

IDEMPOTENCY_KEY: Final = "Idempotency-Key"
IDEMPOTENT_REPLAYED: Final = "Idempotent-Replayed"
# A create is retried at most this long after a failure: a 429 whose Retry-After asks for
# more is raised at once (the caller decides whether to wait that long).
MAX_CREATE_RETRY_WAIT_S: Final = 10.0
# Answers of gateways in front of the server (no error body): the create may not have
# reached it, or its answer may have been lost; the key makes trying again safe.
_GATEWAY_STATUSES: Final = frozenset({502, 503, 504})
# ``get(wait=S)`` reads for this much longer than the server may hold the answer.
WAIT_READ_MARGIN_S: Final = 10.0

_Model = TypeVar("_Model", bound=WireModel)

ExportFormat: TypeAlias = Literal["markdown", "json"]


class CreatedJob(CreateJobResponse):
    """Phase 1's answer, with what the client knows beside it (neither is on the wire).

    ``idempotency_key`` is the key the create was sent with: sending it again with the same
    body returns this job. ``replayed`` is True when the server answered with a job made by an
    earlier request with that key (``Idempotent-Replayed: true``), e.g. one whose answer
    was lost and which the client tried again.
    """

    idempotency_key: str | None = pydantic.Field(default=None, exclude=True)
    replayed: bool = pydantic.Field(default=False, exclude=True)
    # A follow-up's answer names the job it follows (``parentJobId``); None for a first run.
    parent_job_id: str | None = None


class IssueLink(WireModel):
    """A suggestion filed as a GitHub issue: its ``url`` and ``number``.

    ``created`` is True when this call filed it (201), False when it had been filed before
    and the server answered with that first issue (200); it is not on the wire.
    """

    url: str
    number: int
    created: bool = pydantic.Field(default=False, exclude=True)


@dataclass(frozen=True, slots=True)
class EventEnvelope:
    """One event of a stream with its SSE name and id.

    For ``connected`` the id is the one the connection resumes after (0 on a fresh one); for
    the job's own events it numbers them from 1.
    """

    name: str
    id: int | None
    event: StreamEvent

    def to_wire(self) -> dict[str, Any]:
        return {"event": self.name, "id": self.id, "data": self.event.to_wire()}


# --- protocol helpers shared by both clients -------------------------------------------------


def _request_body(request: SuggestionRequest | Mapping[str, Any]) -> dict[str, Any]:
    # A mapping is sent as given: the server is the one that validates (and answers 422).
    if isinstance(request, SuggestionRequest):
        return request.to_wire()
    return dict(request)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def error_from_response(response: httpx.Response) -> FeaturePlannerError:
    """Map a non-2xx answer (its body already read) to the matching ``FeaturePlannerError``."""
    body = _json_or_none(response)
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if not isinstance(error, dict) or not isinstance(code, str):
        snippet = response.text[:200].strip()
        return UnexpectedResponseError(
            f"HTTP {response.status_code} without an error body: {snippet!r}",
            http_status=response.status_code,
        )
    cls = ERRORS_BY_CODE.get(code)
    if cls is None:
        message = error.get("message")
        said = message if isinstance(message, str) and message else "no message"
        return UnexpectedResponseError(
            f"HTTP {response.status_code} {code}: {said}",
            http_status=response.status_code,
            wire_code=code,
        )
    return cls.from_wire(error, response.headers)


def _raise_for_status(response: httpx.Response) -> None:
    if not response.is_success:
        raise error_from_response(response)


def _data(response: httpx.Response) -> Any:
    """The ``data`` of a successful answer, or ``None`` when it has none."""
    _raise_for_status(response)
    body = _json_or_none(response)
    return body.get("data") if isinstance(body, dict) and body.get("success") is True else None


def _parse_data(
    response: httpx.Response, model: type[_Model], what: str, data: Any = None
) -> _Model:
    """A successful answer's ``data`` (or the given ``data``) as ``model``; ``what`` names
    it when it is not one."""
    try:
        return model.model_validate(_data(response) if data is None else data)
    except pydantic.ValidationError as exc:
        raise UnexpectedResponseError(
            f"HTTP {response.status_code}: not {what}: {response.text[:200]!r}",
            http_status=response.status_code,
        ) from exc


def _parse_created(response: httpx.Response, idempotency_key: str) -> CreatedJob:
    data = _data(response)
    if isinstance(data, dict):  # what the client knows wins over anything the body says
        replayed = response.headers.get(IDEMPOTENT_REPLAYED, "").strip().lower() == "true"
        data = {**data, "idempotencyKey": idempotency_key, "replayed": replayed}
    return _parse_data(response, CreatedJob, "a job", data)


def _idempotency_key(given: str | None) -> str:
    return str(uuid.uuid4()) if given is None else given


def _follow_up_body(message: str, suggestion_index: int | None) -> dict[str, Any]:
    # Sent as given, like a create's mapping: the server validates (422 with ``fields``).
    body: dict[str, Any] = {"message": message}
    if suggestion_index is not None:
        body["suggestionIndex"] = suggestion_index
    return body


def _issue_path(job_id: str, index: int) -> str:
    return f"{_job_path(job_id)}/suggestions/{index}/issue"


def _parse_issue(response: httpx.Response) -> IssueLink:
    """201: filed by this call; 200: filed before, and this is that first issue."""
    link = _parse_data(response, IssueLink, "an issue link")
    return link.model_copy(update={"created": response.status_code == 201})


# The media type each export format is answered with.
_EXPORT_TYPES: Final[dict[str, str]] = {"markdown": "text/markdown", "json": "application/json"}


def _parse_export(response: httpx.Response, format: ExportFormat) -> str | dict[str, Any]:
    """The export's document: Markdown text, or the JSON object."""
    _raise_for_status(response)
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == _EXPORT_TYPES.get(format):
        if format == "markdown":
            return response.text
        document = _json_or_none(response)
        if isinstance(document, dict):
            return document
    raise UnexpectedResponseError(
        f"HTTP {response.status_code} with Content-Type {content_type!r}, not a {format} "
        f"export: {response.text[:200]!r}",
        http_status=response.status_code,
    )


def _retryable_create(exc: BaseException) -> bool:
    """Whether a failed create may be tried again (with the same key: never a second job)."""
    if isinstance(exc, ConnectionFailedError | StoreUnavailableError | ServerDrainingError):
        return True
    if isinstance(exc, RateLimitedError):
        return exc.retry_after <= MAX_CREATE_RETRY_WAIT_S
    return isinstance(exc, UnexpectedResponseError) and exc.http_status in _GATEWAY_STATUSES


class _CreateWait(tenacity.wait.wait_base):
    """Exponential backoff with jitter from ``base_delay`` (capped), never sooner than a
    429's ``Retry-After``."""

    def __init__(self, base_delay: float) -> None:
        self._backoff = tenacity.wait_exponential(
            multiplier=base_delay, max=MAX_CREATE_RETRY_WAIT_S
        ) + tenacity.wait_random(0, base_delay)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        delay = self._backoff(retry_state)
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        if isinstance(failure, RateLimitedError):
            delay = max(delay, float(failure.retry_after))
        return delay


def _create_retry_options(retries: int, base_delay: float) -> dict[str, Any]:
    return {
        "stop": tenacity.stop_after_attempt(retries + 1),
        "wait": _CreateWait(base_delay),
        "retry": tenacity.retry_if_exception(_retryable_create),
        "reraise": True,  # the last failure itself, not tenacity's RetryError
    }


def _history_params(
    limit: int, cursor: str | None, status: JobState | str | None
) -> dict[str, str | int]:
    params: dict[str, str | int] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    if status is not None:
        params["status"] = str(status)
    return params


def _status_request(base: httpx.Timeout, wait: float | None) -> dict[str, Any]:
    """The keyword arguments of a JSON status read: the read timeout outlives ``wait``."""
    headers = {"Accept": "application/json"}
    if wait is None:
        return {"headers": headers}
    read = None if base.read is None else max(base.read, wait + WAIT_READ_MARGIN_S)
    timeout = httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)
    return {"headers": headers, "params": {"wait": wait}, "timeout": timeout}


def _final_envelope(status: JobStatus) -> EventEnvelope:
    """A finished job's final event, as its stream would have delivered it."""
    event: CompleteEvent | ErrorEvent | None = status.result or status.error
    if not status.status.is_final or event is None:
        raise UnexpectedResponseError(
            f"job {status.job_id} is {status.status.value} without a result or an error"
        )
    return EventEnvelope(event.event_name, status.last_event_id, event)


def _already_final(status: JobStatus, last_event_id: int | None) -> bool:
    """Whether the caller already holds this finished job's final event."""
    return last_event_id is not None and last_event_id >= status.last_event_id


def _profile_body(profile: AgentProfile | Mapping[str, Any]) -> dict[str, Any]:
    # Like ``_request_body``: a mapping is sent as given, for the server to validate.
    if isinstance(profile, AgentProfile):
        return profile.to_wire()
    return dict(profile)


def _agent_data(response: httpx.Response) -> Any:
    """The ``data`` of a successful answer to GET or PUT of the agent, whatever it holds."""
    _raise_for_status(response)
    body = _json_or_none(response)
    if not isinstance(body, dict) or body.get("success") is not True or "data" not in body:
        raise _not_an_agent(response)
    return body["data"]


def _agent(response: httpx.Response, data: Any) -> AgentProfile:
    try:
        return AgentProfile.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _not_an_agent(response) from exc


def _not_an_agent(response: httpx.Response) -> UnexpectedResponseError:
    return UnexpectedResponseError(
        f"HTTP {response.status_code}: not an agent: {response.text[:200]!r}",
        http_status=response.status_code,
    )


def _parse_agent(response: httpx.Response) -> AgentProfile | None:
    """GET's answer: the agent, or ``None`` for ``data: null`` (the caller has none)."""
    data = _agent_data(response)
    return None if data is None else _agent(response, data)


def _parse_stored_agent(response: httpx.Response) -> AgentProfile:
    """PUT's answer: the agent as stored, never ``null``."""
    return _agent(response, _agent_data(response))


def _parse_agent_deleted(response: httpx.Response) -> bool:
    """True when DELETE removed the agent, False when there was none to remove."""
    try:
        _raise_for_status(response)
    except AgentNotFoundError:
        return False
    return True


def _job_path(job_id: str) -> str:
    if not job_id or "/" in job_id:
        raise ValueError(f"not a job id: {job_id!r}")
    return f"{JOBS_PATH}/{job_id}"


def _history_path(job_id: str) -> str:
    _job_path(job_id)  # the same check
    return f"{HISTORY_PATH}/{job_id}"


def _stream_path(target: str | CreateJobResponse) -> str:
    """A job id, a ``streamUrl`` (relative or absolute) or the ``CreateJobResponse`` itself."""
    if isinstance(target, CreateJobResponse):
        return target.stream_url
    if target.startswith(("/", "http://", "https://")):
        return target
    return _job_path(target)


def _connection_failed(exc: httpx.TransportError) -> ConnectionFailedError:
    return ConnectionFailedError(f"{type(exc).__name__}: {exc or 'connection failed'}")


class _StreamSession:
    """The resume bookkeeping of one ``stream`` call, independent of the I/O flavour.

    It keeps the id of the last job event seen (sent back as ``Last-Event-ID``), skips events
    already delivered, notices the final event and counts consecutive failed connections.
    """

    def __init__(
        self, url: str, last_event_id: int | None, max_reconnects: int, reconnect_delay: float
    ) -> None:
        self.url = url
        self.last_event_id = last_event_id
        self.finished = False
        self._failures = 0
        self._max_reconnects = max_reconnects
        self._reconnect_delay = reconnect_delay

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = str(self.last_event_id)
        return headers

    def opened(self, response: httpx.Response) -> bool:
        """Check a connection's answer (body read if it failed); False means nothing more."""
        if response.status_code == 204:
            return False
        _raise_for_status(response)
        content_type = response.headers.get("content-type", "")
        if not content_type.startswith("text/event-stream"):
            raise UnexpectedResponseError(
                f"HTTP {response.status_code} with Content-Type {content_type!r}, not a stream",
                http_status=response.status_code,
            )
        return True

    def accept(self, sse: WireEvent) -> EventEnvelope | None:
        """The typed event to deliver, or None for events unknown or already delivered."""
        event_id = _parse_id(sse.id)
        # `connected` carries the id it resumes after; the job's own events grow by one, and
        # one that is not newer is a replay (or the empty "message" httpx-sse emits after a
        # `: ping` comment).
        if sse.event != "connected" and event_id is not None:
            if self.last_event_id is not None and event_id <= self.last_event_id:
                return None
            self.last_event_id = event_id
            self._failures = 0  # progress: this connection was worth it
        model = EVENT_MODELS.get(sse.event)
        if model is None:
            return None  # clients ignore event names they don't know
        try:
            event = model.model_validate_json(sse.data)
        except pydantic.ValidationError as exc:
            raise UnexpectedResponseError(
                f"malformed {sse.event!r} event {sse.id!r}: {sse.data[:200]!r}"
            ) from exc
        if sse.event in FINAL_EVENTS:
            self.finished = True
        return EventEnvelope(sse.event, event_id, event)

    def connection_lost(self, exc: Exception | None) -> float:
        """Count a connection that ended without a final event; the delay before the next."""
        self._failures += 1
        if self._failures > self._max_reconnects:
            reason = f"{type(exc).__name__}: {exc}" if exc else "closed without a final event"
            raise ConnectionFailedError(
                f"the stream dropped {self._failures} times in a row ({reason})"
            ) from exc
        return self._reconnect_delay * self._failures


def _parse_id(raw: str) -> int | None:
    try:
        return int(raw)
    except ValueError:
        return None


def _timeout(timeout: float) -> httpx.Timeout:
    # The read timeout outlives the server's 15 s heartbeat; a silent connection is a lost one.
    return httpx.Timeout(timeout, connect=min(timeout, 10.0))


# --- the clients ------------------------------------------------------------------------------


class _ClientBase:
    def __init__(
        self,
        base_url: str,
        token: str | None,
        max_reconnects: int,
        reconnect_delay: float,
        create_retries: int,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.max_reconnects = max_reconnects
        self.reconnect_delay = reconnect_delay
        self.create_retries = create_retries

    def _url(self, path: str) -> str:
        if not path.startswith(("http://", "https://")):
            return self.base_url + path
        if not path.startswith(self.base_url + "/"):
            # The bearer token goes with every request: never to another server.
            raise ValueError(f"{path!r} is not on this client's server {self.base_url}")
        return path

    def _session(
        self, target: str | CreateJobResponse, last_event_id: int | None
    ) -> _StreamSession:
        return _StreamSession(
            self._url(_stream_path(target)),
            last_event_id,
            self.max_reconnects,
            self.reconnect_delay,
        )


class AsyncFeaturePlannerClient(_ClientBase):
    """``async with AsyncFeaturePlannerClient(url, token) as client: ...``"""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        max_reconnects: int = 5,
        reconnect_delay: float = 0.5,
        create_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, token, max_reconnects, reconnect_delay, create_retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=_timeout(timeout))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool, unless it was passed in (then its owner closes it)."""
        if self._owns_http:
            await self._http.aclose()

    async def _request(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        try:
            return await self._http.request(
                method, self._url(path), headers={**self._headers, **(headers or {})}, **kwargs
            )
        except httpx.TransportError as exc:
            raise _connection_failed(exc) from exc

    async def create_job(
        self,
        request: SuggestionRequest | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> CreatedJob:
        """Phase 1: create a job; nothing runs until its stream is opened.

        Sent with ``idempotency_key`` (default: a new uuid4), and tried again with the same
        key when the answer is lost or transient (``create_retries`` times at most)."""
        return await self._create(JOBS_PATH, _request_body(request), idempotency_key)

    async def _create(
        self, path: str, body: dict[str, Any], idempotency_key: str | None
    ) -> CreatedJob:
        """POST a create (Phase 1 or a follow-up) with its key, retried as ``create_job``
        says."""
        key = _idempotency_key(idempotency_key)
        retrying = tenacity.AsyncRetrying(
            **_create_retry_options(self.create_retries, self.reconnect_delay)
        )
        async for attempt in retrying:
            with attempt:
                response = await self._request(
                    "POST", path, json=body, headers={IDEMPOTENCY_KEY: key}
                )
                return _parse_created(response, key)
        raise AssertionError("unreachable: the last failure is re-raised")

    async def follow_up(
        self,
        job_id: str,
        message: str,
        *,
        suggestion_index: int | None = None,
        idempotency_key: str | None = None,
    ) -> CreatedJob:
        """A new job that starts from a completed one (see ``FeaturePlannerClient.follow_up``);
        stream it like any job."""
        body = _follow_up_body(message, suggestion_index)
        return await self._create(_job_path(job_id) + FOLLOW_UP_SUFFIX, body, idempotency_key)

    @overload
    async def export(self, job_id: str, format: Literal["markdown"] = ...) -> str: ...

    @overload
    async def export(self, job_id: str, format: Literal["json"]) -> dict[str, Any]: ...

    async def export(self, job_id: str, format: ExportFormat = "markdown") -> str | dict[str, Any]:
        """A completed job as a document: Markdown text, or the JSON object."""
        response = await self._request(
            "GET", _job_path(job_id) + EXPORT_SUFFIX, params={"format": format}
        )
        return _parse_export(response, format)

    async def file_issue(self, job_id: str, index: int) -> IssueLink:
        """File suggestion ``index`` (from 0) of a completed job as a GitHub issue; the same
        issue again, ``created`` False, when it was filed before."""
        return _parse_issue(await self._request("POST", _issue_path(job_id, index)))

    async def jobs(
        self,
        *,
        limit: int = 20,
        cursor: str | None = None,
        status: JobState | str | None = None,
    ) -> JobPage:
        """One page of the caller's runs, newest first; ``next_cursor`` names the next."""
        params = _history_params(limit, cursor, status)
        return _parse_data(
            await self._request("GET", HISTORY_PATH, params=params), JobPage, "a page of jobs"
        )

    async def iter_jobs(
        self, *, status: JobState | str | None = None, page_size: int = 100
    ) -> AsyncGenerator[JobSummary, None]:
        """Every run of the caller, newest first, a page at a time."""
        cursor: str | None = None
        while True:
            page = await self.jobs(limit=page_size, cursor=cursor, status=status)
            for job in page.jobs:
                yield job
            if page.next_cursor is None or not page.jobs:
                return
            cursor = page.next_cursor

    async def get(self, job: str | CreateJobResponse, *, wait: float | None = None) -> JobStatus:
        """A job read without a stream (never starts it); ``wait`` seconds (0 to 30) hold the
        answer until the job is final."""
        options = _status_request(self._http.timeout, wait)
        response = await self._request("GET", _stream_path(job), **options)
        return _parse_data(response, JobStatus, "a job")

    async def follow(
        self, job: str | CreateJobResponse, *, last_event_id: int | None = None
    ) -> AsyncGenerator[EventEnvelope, None]:
        """The job's events to its final one, whatever its state: streamed while it runs,
        its final event alone once it has finished (see ``FeaturePlannerClient.follow``)."""
        status = await self.get(job)
        if not status.status.is_final:
            try:
                async for envelope in self.stream_envelopes(job, last_event_id=last_event_id):
                    yield envelope
                return
            except (JobFinishedError, JobNotFoundError):  # finished meanwhile, log gone
                status = await self.get(job)
        if not _already_final(status, last_event_id):
            yield _final_envelope(status)

    async def delete_job(self, job_id: str) -> None:
        """Remove a finished job from the caller's history (``JobActiveError`` while it runs:
        ``cancel`` it first)."""
        _raise_for_status(await self._request("DELETE", _history_path(job_id)))

    async def share(self, job_id: str) -> ShareLink:
        """A watch-only link to a completed job (``url`` is relative to the server)."""
        response = await self._request("POST", f"{_job_path(job_id)}/share")
        return _parse_data(response, ShareLink, "a share link")

    async def unshare(self, job_id: str) -> None:
        """Revoke every share link of the job."""
        _raise_for_status(await self._request("DELETE", f"{_job_path(job_id)}/share"))

    async def cancel(self, job_id: str) -> None:
        """Cancel one of the caller's jobs; its subscribers receive ``error`` ``CANCELLED``."""
        _raise_for_status(await self._request("DELETE", _job_path(job_id)))

    async def get_agent(self) -> AgentProfile | None:
        """The caller's custom agent, or ``None`` when they have none (runs use the default)."""
        return _parse_agent(await self._request("GET", AGENT_PATH))

    async def put_agent(self, profile: AgentProfile | Mapping[str, Any]) -> AgentProfile:
        """Create or replace the caller's custom agent; the agent as stored."""
        response = await self._request("PUT", AGENT_PATH, json=_profile_body(profile))
        return _parse_stored_agent(response)

    async def delete_agent(self) -> bool:
        """Remove the caller's custom agent; False when there was none to remove."""
        return _parse_agent_deleted(await self._request("DELETE", AGENT_PATH))

    async def stream(
        self, job: str | CreateJobResponse, *, last_event_id: int | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """Phase 2: the job's events, resuming across dropped connections."""
        async for envelope in self.stream_envelopes(job, last_event_id=last_event_id):
            yield envelope.event

    async def stream_envelopes(
        self, job: str | CreateJobResponse, *, last_event_id: int | None = None
    ) -> AsyncGenerator[EventEnvelope, None]:
        """Like ``stream``, with each event's SSE name and id."""
        session = self._session(job, last_event_id)
        while True:
            headers = {**self._headers, **session.headers()}
            try:
                async with self._http.stream("GET", session.url, headers=headers) as response:
                    if not response.is_success:
                        await response.aread()
                    if not session.opened(response):
                        return
                    async for sse in EventSource(response).aiter_sse():
                        envelope = session.accept(sse)
                        if envelope is not None:
                            yield envelope
                        if session.finished:
                            return
                failure = None
            except (httpx.TransportError, StoreUnavailableError) as exc:
                failure = exc  # a dropped connection, or a replica whose store is down: retry
            await asyncio.sleep(session.connection_lost(failure))

    async def suggest(
        self, request: SuggestionRequest | Mapping[str, Any]
    ) -> AsyncGenerator[StreamEvent, None]:
        """Create a job and stream it."""
        job = await self.create_job(request)
        async for event in self.stream(job):
            yield event


class FeaturePlannerClient(_ClientBase):
    """The synchronous mirror of ``AsyncFeaturePlannerClient``."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        max_reconnects: int = 5,
        reconnect_delay: float = 0.5,
        create_retries: int = 2,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url, token, max_reconnects, reconnect_delay, create_retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=_timeout(timeout))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool, unless it was passed in (then its owner closes it)."""
        if self._owns_http:
            self._http.close()

    def _request(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        try:
            return self._http.request(
                method, self._url(path), headers={**self._headers, **(headers or {})}, **kwargs
            )
        except httpx.TransportError as exc:
            raise _connection_failed(exc) from exc

    def create_job(
        self,
        request: SuggestionRequest | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> CreatedJob:
        """Phase 1: create a job; nothing runs until its stream is opened.

        Sent with ``idempotency_key`` (default: a new uuid4), and tried again with the same
        key when the answer is lost or transient (``create_retries`` times at most): a lost
        connection or timeout, 503, a gateway's 502 / 504, 429 with a ``Retry-After`` of at
        most ``MAX_CREATE_RETRY_WAIT_S``. However many tries, the server makes one job."""
        return self._create(JOBS_PATH, _request_body(request), idempotency_key)

    def _create(self, path: str, body: dict[str, Any], idempotency_key: str | None) -> CreatedJob:
        """POST a create (Phase 1 or a follow-up) with its key, retried as ``create_job``
        says."""
        key = _idempotency_key(idempotency_key)
        retrying = tenacity.Retrying(
            **_create_retry_options(self.create_retries, self.reconnect_delay)
        )
        for attempt in retrying:
            with attempt:
                response = self._request("POST", path, json=body, headers={IDEMPOTENCY_KEY: key})
                return _parse_created(response, key)
        raise AssertionError("unreachable: the last failure is re-raised")

    def follow_up(
        self,
        job_id: str,
        message: str,
        *,
        suggestion_index: int | None = None,
        idempotency_key: str | None = None,
    ) -> CreatedJob:
        """A new job that starts from a completed one: its input, its suggestions and the
        files it read, with ``message`` ("why #2?", "something for mobile") about the whole
        run or about suggestion ``suggestion_index`` (from 0).

        Like ``create_job`` it is sent with an ``Idempotency-Key`` and retried with it; it
        counts toward the create limit. The answer's ``parent_job_id`` is ``job_id``; stream
        it like any job (``stream``, ``follow``). ``JobNotCompleteError`` when the job has not
        completed, ``SuggestionNotFoundError`` when it has no such suggestion."""
        body = _follow_up_body(message, suggestion_index)
        return self._create(_job_path(job_id) + FOLLOW_UP_SUFFIX, body, idempotency_key)

    @overload
    def export(self, job_id: str, format: Literal["markdown"] = ...) -> str: ...

    @overload
    def export(self, job_id: str, format: Literal["json"]) -> dict[str, Any]: ...

    def export(self, job_id: str, format: ExportFormat = "markdown") -> str | dict[str, Any]:
        """A completed job as a document (``JobNotCompleteError`` otherwise): Markdown, one
        section per suggestion with its evidence as ``path:start-end`` and the quote; or the
        JSON object. A share token may read it too."""
        response = self._request(
            "GET", _job_path(job_id) + EXPORT_SUFFIX, params={"format": format}
        )
        return _parse_export(response, format)

    def file_issue(self, job_id: str, index: int) -> IssueLink:
        """File suggestion ``index`` (from 0) of a completed job as an issue in the server's
        GitHub repository. Filing it again answers the first issue (``created`` False).
        ``NotConfiguredError`` when the server has no GitHub settings, ``UpstreamError``
        (with GitHub's message) when GitHub refused."""
        return _parse_issue(self._request("POST", _issue_path(job_id, index)))

    def jobs(
        self,
        *,
        limit: int = 20,
        cursor: str | None = None,
        status: JobState | str | None = None,
    ) -> JobPage:
        """One page of the caller's runs, newest first (``limit`` 1 to 100); pass its
        ``next_cursor`` as ``cursor`` for the next page (``None``: this was the last)."""
        params = _history_params(limit, cursor, status)
        return _parse_data(
            self._request("GET", HISTORY_PATH, params=params), JobPage, "a page of jobs"
        )

    def iter_jobs(
        self, *, status: JobState | str | None = None, page_size: int = 100
    ) -> Generator[JobSummary, None, None]:
        """Every run of the caller, newest first, fetched a page at a time."""
        cursor: str | None = None
        while True:
            page = self.jobs(limit=page_size, cursor=cursor, status=status)
            yield from page.jobs
            if page.next_cursor is None or not page.jobs:
                return
            cursor = page.next_cursor

    def get(self, job: str | CreateJobResponse, *, wait: float | None = None) -> JobStatus:
        """A job read without a stream: its state, and its result or error once finished.

        It never starts a pending job. ``wait`` (0 to 30 seconds) holds the answer until the job
        is final or that time has passed; the read timeout is lengthened to outlive it."""
        options = _status_request(self._http.timeout, wait)
        return _parse_data(self._request("GET", _stream_path(job), **options), JobStatus, "a job")

    def follow(
        self, job: str | CreateJobResponse, *, last_event_id: int | None = None
    ) -> Generator[EventEnvelope, None, None]:
        """The job's events, ending with its final one (``complete`` or ``error``).

        A pending or running job is streamed as ``stream_envelopes`` streams it (a pending
        one is started by it), resuming after ``last_event_id`` when given. A finished job
        is read from the history (``get``) and its final event yielded alone, with the id
        ``lastEventId``, without opening a stream: its event log may have expired. So for a
        finished job there is no ``connected`` and no ``delta``: the history keeps the
        result, not the text streamed on the way (read ``complete``'s suggestions and
        ``context``). Nothing is yielded when ``last_event_id`` already names the final event.
        """
        status = self.get(job)
        if not status.status.is_final:
            try:
                yield from self.stream_envelopes(job, last_event_id=last_event_id)
                return
            except (JobFinishedError, JobNotFoundError):  # finished meanwhile, log gone
                status = self.get(job)
        if not _already_final(status, last_event_id):
            yield _final_envelope(status)

    def delete_job(self, job_id: str) -> None:
        """Remove a finished job from the caller's history (``JobActiveError`` while it is
        pending or running: ``cancel`` it first)."""
        _raise_for_status(self._request("DELETE", _history_path(job_id)))

    def share(self, job_id: str) -> ShareLink:
        """A watch-only link to a completed job (``JobNotCompleteError`` otherwise); its
        ``url`` is relative to the server, its ``token`` reads and streams that job only."""
        return _parse_data(
            self._request("POST", f"{_job_path(job_id)}/share"), ShareLink, "a share link"
        )

    def unshare(self, job_id: str) -> None:
        """Revoke every share link of the job."""
        _raise_for_status(self._request("DELETE", f"{_job_path(job_id)}/share"))

    def cancel(self, job_id: str) -> None:
        """Cancel one of the caller's jobs; its subscribers receive ``error`` ``CANCELLED``."""
        _raise_for_status(self._request("DELETE", _job_path(job_id)))

    def get_agent(self) -> AgentProfile | None:
        """The caller's custom agent, or ``None`` when they have none (runs use the default)."""
        return _parse_agent(self._request("GET", AGENT_PATH))

    def put_agent(self, profile: AgentProfile | Mapping[str, Any]) -> AgentProfile:
        """Create or replace the caller's custom agent; the agent as stored."""
        return _parse_stored_agent(self._request("PUT", AGENT_PATH, json=_profile_body(profile)))

    def delete_agent(self) -> bool:
        """Remove the caller's custom agent; False when there was none to remove."""
        return _parse_agent_deleted(self._request("DELETE", AGENT_PATH))

    def stream(
        self, job: str | CreateJobResponse, *, last_event_id: int | None = None
    ) -> Generator[StreamEvent, None, None]:
        """Phase 2: the job's events, resuming across dropped connections."""
        for envelope in self.stream_envelopes(job, last_event_id=last_event_id):
            yield envelope.event

    def stream_envelopes(
        self, job: str | CreateJobResponse, *, last_event_id: int | None = None
    ) -> Generator[EventEnvelope, None, None]:
        """Like ``stream``, with each event's SSE name and id."""
        session = self._session(job, last_event_id)
        while True:
            headers = {**self._headers, **session.headers()}
            try:
                with self._http.stream("GET", session.url, headers=headers) as response:
                    if not response.is_success:
                        response.read()
                    if not session.opened(response):
                        return
                    for sse in EventSource(response).iter_sse():
                        envelope = session.accept(sse)
                        if envelope is not None:
                            yield envelope
                        if session.finished:
                            return
                failure = None
            except (httpx.TransportError, StoreUnavailableError) as exc:
                failure = exc  # a dropped connection, or a replica whose store is down: retry
            time.sleep(session.connection_lost(failure))

    def suggest(
        self, request: SuggestionRequest | Mapping[str, Any]
    ) -> Generator[StreamEvent, None, None]:
        """Create a job and stream it."""
        yield from self.stream(self.create_job(request))
