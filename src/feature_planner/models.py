"""Wire models shared by the server and the client.

Field names are snake_case in Python and camelCase on the wire (``by_alias``).
This module imports nothing of ours: everything else builds on it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AliasGenerator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "ActivityEvent",
    "CompleteEvent",
    "ConnectedEvent",
    "CreateJobResponse",
    "DeltaEvent",
    "ErrorCode",
    "ErrorEvent",
    "FeatureType",
    "JobState",
    "PriorityLevel",
    "Suggestion",
    "SuggestionRequest",
    "TokenUsage",
    "sanitize_text",
]


class FeatureType(StrEnum):
    ENHANCEMENT = "enhancement"
    NEW_CAPABILITY = "new-capability"
    OPTIMIZATION = "optimization"
    UI_IMPROVEMENT = "ui-improvement"
    INTEGRATION = "integration"


class PriorityLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class JobState(StrEnum):
    PENDING = "pending"  # created, nobody has subscribed yet
    IN_PROGRESS = "in_progress"  # claimed by the first subscriber; the provider is running
    COMPLETED = "completed"  # ended with `complete`; only the event log is kept, briefly
    FAILED = "failed"  # ended with `error` (provider, timeout, lost worker)
    CANCELLED = "cancelled"  # DELETE or nobody watching; a pending job that is cancelled never runs

    @property
    def is_final(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)


class ErrorCode(StrEnum):
    """Codes of the terminal ``error`` event."""

    EXECUTION_ERROR = "EXECUTION_ERROR"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    PROVIDER_ERROR = "PROVIDER_ERROR"
    WORKER_LOST = "WORKER_LOST"
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"


# Control characters other than tab (\x09) and newline (\x0a), C1 controls included.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def sanitize_text(value: Any) -> Any:
    """Remove control characters (except newline and tab) and trim; non-strings pass through."""
    if isinstance(value, str):
        return _CONTROL_CHARS.sub("", value).strip()
    return value


Sanitized = BeforeValidator(sanitize_text)


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python; accepts both when parsing."""

    model_config = ConfigDict(
        alias_generator=AliasGenerator(alias=to_camel),
        populate_by_name=True,
        frozen=True,
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class SuggestionRequest(WireModel):
    """The body of Phase 1."""

    model_config = ConfigDict(extra="forbid")

    page_or_component: Annotated[str, Sanitized, Field(min_length=1, max_length=200)]
    feature_type: FeatureType
    priority_level: PriorityLevel
    additional_context: Annotated[str, Sanitized, Field(max_length=1000)] | None = None
    custom_model: Annotated[str, Sanitized, Field(min_length=1, max_length=200)] | None = None


class CreateJobResponse(WireModel):
    job_id: str
    stream_url: str
    expires_at: int


class Suggestion(WireModel):
    title: str
    rationale: str
    description: str
    implementation_considerations: list[str] = Field(default_factory=list)


class TokenUsage(WireModel):
    model_config = ConfigDict(extra="allow")

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class ConnectedEvent(WireModel):
    job_id: str
    timestamp: int
    resumed_from: int | None = None


class DeltaEvent(WireModel):
    text: str
    total_length: int
    timestamp: int


class CompleteEvent(WireModel):
    model_config = ConfigDict(extra="allow")

    suggestions: list[Suggestion]
    context: str
    token_usage: TokenUsage
    execution_time_ms: int
    retry_count: int
    provider: str
    model: str
    timestamp: int


class ErrorEvent(WireModel):
    message: str
    code: str
    timestamp: int


class ActivityEvent(WireModel):
    tool: str
    detail: str
    timestamp: int
