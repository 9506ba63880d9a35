"""The events of a job's stream, built in one place.

Each builder takes typed fields and returns the event's wire model from ``models`` — the
shape that the client, the CLI and the OpenAPI document read — stamped with the time.
``JobEvent.of`` serializes a model once and frames it once (``sse``); that frame is what every
subscriber of the job is sent, and its JSON is what the Redis store keeps::

    connected   jobId, resumedFrom?    sent first on each connection; not a job event: its
                                       id is the one the connection resumes after (``frame``)
    delta       text, totalLength      the model's text since the previous delta
    activity    tool, detail           what the agent is doing
    suggestion  index, suggestion      one suggestion, verified, as soon as it is ready
    progress    phase, percent, ...    how far the run is (percent never goes down)
    complete    the result             final
    error       message, code          final

To add an event: its model in ``models``, with its ``event_name``, listed in
``EVENT_MODELS``; its builder here; its row in ``tests/test_events.py``.

Models are validated as they are made: for these few plain fields that is cheaper than
``model_construct``, and it keeps a wrong type from reaching the wire.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import NamedTuple

from .models import (
    FINAL_EVENTS,
    ActivityEvent,
    CompleteEvent,
    ConnectedEvent,
    DeltaEvent,
    ErrorCode,
    ErrorEvent,
    EventModel,
    EvidenceStats,
    ProgressEvent,
    ProgressPhase,
    Suggestion,
    SuggestionEvent,
    TokenUsage,
)
from .sse import decode_event, encode_event

__all__ = [
    "JobEvent",
    "activity",
    "complete",
    "connected",
    "delta",
    "error",
    "final_event",
    "frame",
    "now_ms",
    "progress",
    "suggestion",
    "to_json",
]


def now_ms() -> int:
    """The time as events carry it: milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


# -- builders ----------------------------------------------------------------------------


def connected(job_id: str, resumed_from: int | None = None) -> ConnectedEvent:
    return ConnectedEvent(job_id=job_id, timestamp=now_ms(), resumed_from=resumed_from)


def delta(text: str, total_length: int) -> DeltaEvent:
    """``total_length``: the length of all the text so far, in code points."""
    return DeltaEvent(text=text, total_length=total_length, timestamp=now_ms())


def activity(tool: str, detail: str) -> ActivityEvent:
    return ActivityEvent(tool=tool, detail=detail, timestamp=now_ms())


def suggestion(index: int, item: Suggestion) -> SuggestionEvent:
    return SuggestionEvent(index=index, suggestion=item, timestamp=now_ms())


def progress(
    phase: ProgressPhase,
    percent: int,
    *,
    files_read: int,
    suggestions_ready: int,
    suggestions_expected: int,
) -> ProgressEvent:
    return ProgressEvent(
        phase=phase,
        percent=percent,
        files_read=files_read,
        suggestions_ready=suggestions_ready,
        suggestions_expected=suggestions_expected,
        timestamp=now_ms(),
    )


def complete(
    *,
    suggestions: Iterable[Suggestion],
    context: str,
    token_usage: TokenUsage,
    execution_time_ms: int,
    retry_count: int,
    provider: str,
    model: str,
    notice: str | None = None,
    evidence_stats: EvidenceStats | None = None,
) -> CompleteEvent:
    """``notice``: shown to users, e.g. that no AI model was involved."""
    more: dict[str, object] = {"notice": notice} if notice else {}
    return CompleteEvent(
        suggestions=list(suggestions),
        context=context,
        token_usage=token_usage,
        execution_time_ms=execution_time_ms,
        retry_count=retry_count,
        provider=provider,
        model=model,
        timestamp=now_ms(),
        evidence_stats=evidence_stats,
        **more,
    )


def error(code: ErrorCode, message: str) -> ErrorEvent:
    return ErrorEvent(message=message, code=code.value, timestamp=now_ms())


# -- on the wire -------------------------------------------------------------------------


def to_json(event: EventModel) -> bytes:
    """The event's ``data``: compact JSON, camelCase, absent fields left out, UTF-8."""
    return event.__pydantic_serializer__.to_json(event, by_alias=True, exclude_none=True)


def frame(event_id: int, event: EventModel) -> bytes:
    """The event framed for one connection only (``connected``, or a stream's end that is
    not the job's), with ``event_id`` as its id."""
    return encode_event(event_id, event.event_name, to_json(event))


class JobEvent(NamedTuple):
    """Event ``id`` of a job: its name, its JSON data and its SSE frame, each made once.
    (A named tuple: as immutable as a frozen dataclass, made in half the time.)"""

    id: int
    name: str
    data: bytes
    frame: bytes

    @classmethod
    def of(cls, event_id: int, event: EventModel) -> JobEvent:
        name, data = event.event_name, to_json(event)
        return cls(event_id, name, data, encode_event(event_id, name, data))

    @property
    def is_final(self) -> bool:
        return self.name in FINAL_EVENTS


def final_event(frame: bytes) -> CompleteEvent | ErrorEvent | None:
    """The job's final event, if ``frame`` (a job event's frame) is one."""
    _, name, data = decode_event(frame)
    if name == CompleteEvent.event_name:
        return CompleteEvent.model_validate_json(data)
    if name == ErrorEvent.event_name:
        return ErrorEvent.model_validate_json(data)
    return None
