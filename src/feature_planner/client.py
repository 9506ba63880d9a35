"""Python clients for the Feature Planner HTTP API: ``AsyncFeaturePlannerClient`` and its
synchronous mirror ``FeaturePlannerClient``.

Both speak the two-phase contract of DESIGN.md: ``create_job`` (Phase 1) returns the job's
id, ``stream`` (Phase 2) yields its typed events, reconnecting with ``Last-Event-ID`` when the
connection drops so that every event arrives exactly once. ``get_agent``, ``put_agent`` and
``delete_agent`` read, replace and remove the caller's custom agent (``None`` / ``False``
when there is none: that is the normal case, not an error). Error answers are mapped back to
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
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

import httpx
import pydantic
from httpx_sse import EventSource
from httpx_sse import ServerSentEvent as WireEvent

from .errors import (
    ERRORS_BY_CODE,
    AgentNotFoundError,
    ConnectionFailedError,
    FeaturePlannerError,
    StoreUnavailableError,
    UnexpectedResponseError,
)
from .models import (
    EVENT_MODELS,
    FINAL_EVENTS,
    AgentProfile,
    CreateJobResponse,
    StreamEvent,
    SuggestionRequest,
)

__all__ = [
    "AsyncFeaturePlannerClient",
    "ConnectionFailedError",
    "EventEnvelope",
    "FeaturePlannerClient",
    "StreamEvent",
    "UnexpectedResponseError",
]

JOBS_PATH: Final = "/api/feature-planner/suggest-feature"
AGENT_PATH: Final = "/api/feature-planner/agent"


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


def _parse_created(response: httpx.Response) -> CreateJobResponse:
    _raise_for_status(response)
    body = _json_or_none(response)
    data = body.get("data") if isinstance(body, dict) and body.get("success") is True else None
    try:
        return CreateJobResponse.model_validate(data)
    except pydantic.ValidationError as exc:
        raise UnexpectedResponseError(
            f"HTTP {response.status_code}: not a job: {response.text[:200]!r}",
            http_status=response.status_code,
        ) from exc


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.max_reconnects = max_reconnects
        self.reconnect_delay = reconnect_delay

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
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, token, max_reconnects, reconnect_delay)
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

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(
                method, self._url(path), headers=self._headers, **kwargs
            )
        except httpx.TransportError as exc:
            raise _connection_failed(exc) from exc

    async def create_job(self, request: SuggestionRequest | Mapping[str, Any]) -> CreateJobResponse:
        """Phase 1: create a job; nothing runs until its stream is opened."""
        response = await self._request("POST", JOBS_PATH, json=_request_body(request))
        return _parse_created(response)

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
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url, token, max_reconnects, reconnect_delay)
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

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, self._url(path), headers=self._headers, **kwargs)
        except httpx.TransportError as exc:
            raise _connection_failed(exc) from exc

    def create_job(self, request: SuggestionRequest | Mapping[str, Any]) -> CreateJobResponse:
        """Phase 1: create a job; nothing runs until its stream is opened."""
        return _parse_created(self._request("POST", JOBS_PATH, json=_request_body(request)))

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
