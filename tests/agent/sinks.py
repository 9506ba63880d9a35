"""What the provider tests run providers with: a ``RunSink`` that records what a provider
reports, and ``job_events``, a whole job through the runner."""

from __future__ import annotations

import asyncio

from feature_planner.agent.base import PlanRequest, Provider
from feature_planner.agent.evidence import SuggestionCheck
from feature_planner.jobs.memory import MemoryJobStore
from feature_planner.jobs.relay import Subscriber
from feature_planner.jobs.runner import JobRun
from feature_planner.jobs.store import JobRecord
from feature_planner.models import JobState, ProgressPhase, Suggestion, SuggestionRequest
from tests.sse_decoder import ServerSentEvent, SSEDecoder


class RecordingSink:
    def __init__(self) -> None:
        self.chunks: list[str] = []
        self.activities: list[tuple[str, str]] = []
        self.phases: list[ProgressPhase] = []
        self.suggestions: list[Suggestion] = []
        self.first_text = asyncio.Event()

    def text(self, chunk: str) -> None:
        self.chunks.append(chunk)
        self.first_text.set()

    def activity(self, tool: str, detail: str) -> None:
        self.activities.append((tool, detail))

    def progress(self, phase: ProgressPhase, *, expected: int | None = None) -> None:
        self.phases.append(phase)

    async def suggestion(
        self,
        suggestion: Suggestion,
        *,
        previous: SuggestionCheck | None = None,
        last_attempt: bool = True,
    ) -> SuggestionCheck:
        """Records the suggestion and sends it as it is (the runner's verification has its own
        tests, and ``job_events`` runs a provider through it)."""
        self.suggestions.append(suggestion)
        return SuggestionCheck(suggestion, (), index=len(self.suggestions) - 1)

    @property
    def narrative(self) -> str:
        return "".join(self.chunks)


async def job_events(provider: Provider, request: PlanRequest) -> list[ServerSentEvent]:
    """Run ``provider`` as the service does (``JobRun`` on the in-memory store: evidence
    verified, suggestions sent one by one) and return the job's events, decoded."""
    store = MemoryJobStore()
    wire = SuggestionRequest(
        page_or_component=request.page_or_component,
        feature_type=request.feature_type,
        priority_level=request.priority_level,
        additional_context=request.additional_context,
    )
    await store.create(JobRecord("job", "u", wire, JobState.PENDING, 0, 0))
    assert await store.claim("job", "runner", on_cancel=lambda message: None)
    log = await store.subscribe_log("job")
    assert log is not None
    subscriber = Subscriber(log, 0)
    JobRun(store, "job", throttle_s=0, time_limit_s=30).start(provider, request)
    decoder, events = SSEDecoder(), list[ServerSentEvent]()
    while (chunk := await subscriber.next_chunk()) is not None:
        events += decoder.feed(chunk)
    return events
