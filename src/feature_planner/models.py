"""Wire models shared by the server and the client.

Field names are snake_case in Python and camelCase on the wire (``by_alias``).
This module imports nothing of ours: everything else builds on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

from pydantic import (
    AliasGenerator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

__all__ = [
    "EVENT_MODELS",
    "FINAL_EVENTS",
    "TOOL_NAMES",
    "ActivityEvent",
    "AgentProfile",
    "CompleteEvent",
    "ConnectedEvent",
    "CreateJobResponse",
    "DeltaEvent",
    "Effort",
    "ErrorCode",
    "ErrorEvent",
    "EventModel",
    "Evidence",
    "EvidenceStats",
    "FeatureType",
    "FollowUpRequest",
    "FollowUpResponse",
    "Impact",
    "JobPage",
    "JobState",
    "JobStatus",
    "JobSummary",
    "PriorityLevel",
    "ProgressEvent",
    "ProgressPhase",
    "ShareLink",
    "StreamEvent",
    "Suggestion",
    "SuggestionEvent",
    "SuggestionRequest",
    "TokenUsage",
    "ToolName",
    "WireModel",
    "sanitize_text",
    "sanitized_length_pattern",
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
    BUDGET_EXCEEDED = "BUDGET_EXCEEDED"  # the run passed FEATURE_PLANNER_MAX_RUN_TOKENS


# Control characters other than tab (\x09) and newline (\x0a), C1 controls included.
_CONTROL = r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"
_CONTROL_CHARS = re.compile(_CONTROL)
# What sanitizing drops at either end: control characters, and what ``str.strip`` trims of
# the rest (tab, newline and the Unicode spaces).
_DROPPED_AT_ENDS = r"[\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_KEPT_AT_ENDS = "[^" + _DROPPED_AT_ENDS[1:]


def sanitize_text(value: Any) -> Any:
    """Remove control characters (except newline and tab) and trim; non-strings pass through."""
    if isinstance(value, str):
        return _CONTROL_CHARS.sub("", value).strip()
    return value


def sanitized_length_pattern(min_length: int, max_length: int | None) -> str:
    """A regular expression matching exactly the strings whose sanitized text has
    ``min_length`` to ``max_length`` characters (any number when ``None``).

    The text runs from the first to the last character that trimming keeps; it counts every
    character between them except control characters, which sanitizing removes.
    """
    edge, dropped, control = _KEPT_AT_ENDS, _DROPPED_AT_ENDS, _CONTROL
    kept = "[^" + control[1:]
    texts = []
    if min_length <= 1 and (max_length is None or max_length >= 1):
        texts.append(edge)  # one character
    if max_length is None or max_length >= 2:  # two or more: the ends and what lies between
        between = f"{max(min_length - 2, 0)},{'' if max_length is None else max_length - 2}"
        texts.append(f"{edge}(?:{control}*{kept}){{{between}}}{control}*{edge}")
    if not texts:  # nothing may be left
        return f"^{dropped}*$"
    text = "(?:" + "|".join(texts) + ")" + ("?" if min_length <= 0 else "")
    return f"^{dropped}*{text}{dropped}*$"


class _Sanitize:
    """``Sanitized``: control characters (other than newline and tab) are removed and the
    text trimmed before the field's other rules apply.

    Its JSON schema says so: a field's ``minLength`` / ``maxLength`` would count the raw
    string, so they become the ``pattern`` of the raw strings whose sanitized text fits.
    """

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_before_validator_function(sanitize_text, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        if json_schema.get("type") != "string":
            return json_schema
        low: int = json_schema.pop("minLength", 0)
        high: int | None = json_schema.pop("maxLength", None)
        if low > 0 or high is not None:
            json_schema["pattern"] = sanitized_length_pattern(low, high)
            limits = f"{low} to {high}" if high is not None else f"at least {low}"
            json_schema.setdefault(
                "description",
                "Trimmed, and control characters other than newline and tab removed; "
                f"then {limits} characters",
            )
        return json_schema

    def __repr__(self) -> str:
        return "Sanitized"


Sanitized = _Sanitize()


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
    # Job-scoped credential for GET / DELETE of this job (``?token=``); optional so that a
    # client also reads servers that do not issue one.
    stream_token: str | None = None


def _whole_number(value: Any) -> Any:
    """A float with no fraction as the integer it is; anything else as it is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class FollowUpRequest(WireModel):
    """The body of a follow-up (``POST {streamUrl}/follow-up``): what the user says about a
    completed run, and which of its suggestions (from 0) it is about, if one."""

    model_config = ConfigDict(extra="forbid")

    message: Annotated[str, Sanitized, Field(min_length=1, max_length=1000)]
    # A JSON number that is whole (2, 2.0), as JSON Schema's integer; never a string or bool.
    suggestion_index: (
        Annotated[
            int,
            Field(ge=0, strict=True, description="The suggestion the message is about (from 0)"),
            BeforeValidator(_whole_number),
        ]
        | None
    ) = None


class FollowUpResponse(CreateJobResponse):
    """A follow-up's answer: Phase 1's, and the job it follows."""

    parent_job_id: str


class Effort(StrEnum):
    """How much work a suggestion is."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class Impact(StrEnum):
    """How much a suggestion matters to the page's users."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Evidence(WireModel):
    """What a suggestion cites: lines ``start_line`` to ``end_line`` (from 1, inclusive) of
    ``path`` (relative to the repository root), and ``quote``, text from those lines.

    Valid here means well formed only: whether the repository bears it out is checked
    against the code (``agent.evidence``) before a suggestion is sent.
    """

    path: Annotated[str, Field(min_length=1, max_length=500)]
    start_line: Annotated[int, Field(ge=1)]
    end_line: Annotated[int, Field(ge=1)]
    quote: Annotated[str, Field(min_length=1, max_length=2000)]

    @model_validator(mode="after")
    def _lines_in_order(self) -> Evidence:
        if self.end_line < self.start_line:
            raise ValueError(
                f"endLine ({self.end_line}) is before startLine ({self.start_line}): "
                "lines are 1-based and inclusive, endLine >= startLine"
            )
        return self


class EvidenceStats(WireModel):
    """``complete.evidenceStats``: ``cited`` counts every evidence item the engine proposed,
    each attempt once (an item fixed on retry counts twice); ``verified`` the items sent to
    the user; ``dropped`` the items given up. So ``verified <= cited`` and
    ``verified + dropped <= cited``."""

    cited: Annotated[int, Field(ge=0)]
    verified: Annotated[int, Field(ge=0)]
    dropped: Annotated[int, Field(ge=0)]


class Suggestion(WireModel):
    title: str
    rationale: str
    description: str
    implementation_considerations: list[str] = Field(default_factory=list)
    # Left out of the wire when empty, so that a suggestion without evidence reads as before.
    evidence: list[Evidence] = Field(
        default_factory=list, max_length=5, exclude_if=lambda evidence: not evidence
    )
    effort: Effort | None = None
    impact: Impact | None = None


class TokenUsage(WireModel):
    model_config = ConfigDict(extra="allow")

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cost_usd: float | None = None  # only where the provider reports a cost; never estimated


class EventModel(WireModel):
    """The data of one event of a job's stream; ``event_name`` is its ``event:`` line.

    ``events`` builds them, the client and the CLI read them, the OpenAPI document describes
    them: the wire shape of each event is written here once.
    """

    event_name: ClassVar[str]


class ConnectedEvent(EventModel):
    event_name = "connected"

    job_id: str
    timestamp: int
    resumed_from: int | None = None


class DeltaEvent(EventModel):
    event_name = "delta"

    text: str
    total_length: int
    timestamp: int


class ActivityEvent(EventModel):
    event_name = "activity"

    tool: str
    detail: str
    timestamp: int


class SuggestionEvent(EventModel):
    """One suggestion, as soon as it is complete and its evidence verified; sent
    suggestions are final: ``complete.suggestions[index]`` is this one."""

    event_name = "suggestion"

    index: Annotated[int, Field(ge=0)]
    suggestion: Suggestion
    timestamp: int


class ProgressPhase(StrEnum):
    READING_DOCS = "reading-docs"
    EXPLORING = "exploring"
    DRAFTING = "drafting"
    VERIFYING = "verifying"


class ProgressEvent(EventModel):
    """How far the run is: ``percent`` never goes down, and is 100 only with ``complete``."""

    event_name = "progress"

    phase: ProgressPhase
    percent: Annotated[int, Field(ge=0, le=100)]
    files_read: Annotated[int, Field(ge=0)]
    suggestions_ready: Annotated[int, Field(ge=0)]
    suggestions_expected: Annotated[int, Field(ge=0)]
    timestamp: int


class CompleteEvent(EventModel):
    event_name = "complete"
    model_config = ConfigDict(extra="allow")  # e.g. "notice" (no AI model was involved)

    suggestions: list[Suggestion]
    context: str
    token_usage: TokenUsage
    execution_time_ms: int
    retry_count: int
    provider: str
    model: str
    timestamp: int
    evidence_stats: EvidenceStats | None = None


class ErrorEvent(EventModel):
    event_name = "error"

    message: str
    code: str
    timestamp: int


StreamEvent: TypeAlias = (
    ConnectedEvent
    | DeltaEvent
    | ActivityEvent
    | SuggestionEvent
    | ProgressEvent
    | CompleteEvent
    | ErrorEvent
)
# Every event of the stream, by its name. Clients ignore the names they do not know.
EVENT_MODELS: Mapping[str, type[StreamEvent]] = MappingProxyType(
    {
        model.event_name: model
        for model in (
            ConnectedEvent,
            DeltaEvent,
            ActivityEvent,
            SuggestionEvent,
            ProgressEvent,
            CompleteEvent,
            ErrorEvent,
        )
    }
)
# The events that end a job: the stream ends after one of them.
FINAL_EVENTS = frozenset({CompleteEvent.event_name, ErrorEvent.event_name})


class JobSummary(WireModel):
    """One run in the caller's history (``GET /api/feature-planner/jobs``)."""

    job_id: str
    status: JobState
    input: SuggestionRequest
    created_at: int
    finished_at: int | None = None
    suggestions_count: int | None = None
    provider: str | None = None
    model: str | None = None
    stream_url: str
    parent_job_id: str | None = None
    tokens: int | None = None  # what the run was charged (input, cached input, output)
    cost_usd: float | None = None  # where the provider reports a cost

    def to_wire(self) -> dict[str, Any]:
        return {**super().to_wire(), "parentJobId": self.parent_job_id}  # null: a first run


class JobPage(WireModel):
    """A page of the caller's runs, newest first; ``next_cursor`` fetches the next one."""

    jobs: list[JobSummary]
    next_cursor: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"jobs": [job.to_wire() for job in self.jobs], "nextCursor": self.next_cursor}


class JobStatus(WireModel):
    """A job read without a stream (``GET {streamUrl}`` with ``Accept: application/json``)."""

    model_config = ConfigDict(extra="allow")  # later releases may say more

    job_id: str
    status: JobState
    input: SuggestionRequest
    created_at: int
    started_at: int | None = None
    finished_at: int | None = None
    last_event_id: int = 0
    result: CompleteEvent | None = None
    error: ErrorEvent | None = None
    provider: str | None = None
    model: str | None = None
    parent_job_id: str | None = None
    tokens: int | None = None  # what the run was charged, once it has ended
    cost_usd: float | None = None  # where the provider reports a cost

    def to_wire(self) -> dict[str, Any]:
        return {**super().to_wire(), "parentJobId": self.parent_job_id}


class ShareLink(WireModel):
    """A watch-only link to one job: ``url`` opens the page read-only."""

    url: str
    token: str
    expires_at: int


ToolName = Literal["Glob", "Grep", "Read"]
TOOL_NAMES: tuple[ToolName, ...] = ("Glob", "Grep", "Read")


class AgentProfile(WireModel):
    """A user's custom agent: the body of ``PUT /api/feature-planner/agent``, what ``GET``
    answers, and what a run uses."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Sanitized, Field(min_length=1, max_length=100)]
    role: Annotated[str, Sanitized, Field(min_length=1, max_length=500)]
    focus: Annotated[str, Sanitized, Field(min_length=1, max_length=500)]
    system_prompt: Annotated[str, Field(min_length=1, max_length=8000)]
    temperature: Annotated[float, Field(ge=0, le=1)] = 0.7
    tools: Annotated[list[ToolName], Field(max_length=3)] = Field(
        default_factory=lambda: list(TOOL_NAMES)
    )
    is_active: bool = True
