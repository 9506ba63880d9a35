"""Suggestions leave the run one by one, each with only the evidence the repository bears out;
``complete`` repeats exactly what was sent and counts the evidence; progress only goes up."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from feature_planner.agent.base import PlanRequest, PlanResult, Provider, RunSink
from feature_planner.agent.evidence import SuggestionCheck, retry_message
from feature_planner.agent.providers import ScriptedProvider
from feature_planner.jobs.memory import MemoryJobStore
from feature_planner.jobs.relay import Subscriber
from feature_planner.jobs.runner import JobRun
from feature_planner.jobs.store import JobRecord
from feature_planner.models import (
    Evidence,
    FeatureType,
    JobState,
    PriorityLevel,
    ProgressPhase,
    Suggestion,
    SuggestionRequest,
)
from tests.sse_decoder import ServerSentEvent, SSEDecoder

REQUEST = SuggestionRequest(
    page_or_component="Cart", feature_type=FeatureType.ENHANCEMENT, priority_level=PriorityLevel.LOW
)
PAGE = """export default function CartPage() {
  const items = useCart()
  return <List items={items} />
}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "app" / "cart").mkdir(parents=True)
    (tmp_path / "app" / "cart" / "page.tsx").write_text(PAGE)
    (tmp_path / "README.md").write_text("# Shop\n")
    (tmp_path / ".env").write_text("SECRET=1\n")
    return tmp_path


def cite(path: str, start: int, end: int, quote: str) -> Evidence:
    return Evidence(path=path, start_line=start, end_line=end, quote=quote)


GOOD = cite("app/cart/page.tsx", 2, 2, "const items = useCart()")
WRONG_LINES = cite("app/cart/page.tsx", 40, 41, "const items")
MISSING = cite("app/cart/missing.tsx", 1, 1, "nothing")
SECRET = cite(".env", 1, 1, "SECRET=1")


def suggestion(title: str, *evidence: Evidence) -> Suggestion:
    return Suggestion(
        title=title,
        rationale="r",
        description="d",
        implementation_considerations=["c"],
        evidence=list(evidence),
    )


class Submitting(Provider):
    """Runs ``script(sink)``: a provider that submits its suggestions itself."""

    name = "submitting"

    def __init__(self, script: Callable[[RunSink], Awaitable[None]]) -> None:
        self.script = script

    async def run(self, request: PlanRequest, sink: RunSink) -> PlanResult:
        await self.script(sink)
        return PlanResult(suggestions=[], context="c", model="m")


class AllAtOnce(Provider):
    """An engine that answers only in its result."""

    name = "all-at-once"

    def __init__(self, suggestions: list[Suggestion]) -> None:
        self.suggestions = suggestions

    async def run(self, request: PlanRequest, sink: RunSink) -> PlanResult:
        sink.activity("Read", "README.md")
        sink.activity("Read", "app/cart/page.tsx")
        return PlanResult(suggestions=self.suggestions, context="c", model="m")


async def run(provider: Provider, repo: Path) -> list[ServerSentEvent]:
    store = MemoryJobStore()
    await store.create(JobRecord("job", "u", REQUEST, JobState.PENDING, 0, 0))
    assert await store.claim("job", "runner", on_cancel=lambda message: None)
    log = await store.subscribe_log("job")
    assert log is not None
    subscriber = Subscriber(log, 0)
    job = JobRun(store, "job", throttle_s=0, time_limit_s=5)
    job.start(provider, PlanRequest.from_request(REQUEST, repo))
    decoder, events = SSEDecoder(), []
    while (chunk := await subscriber.next_chunk()) is not None:
        events += decoder.feed(chunk)
    return events


def sent(events: list[ServerSentEvent]) -> list[dict[str, Any]]:
    return [e.json()["suggestion"] for e in events if e.event == "suggestion"]


def test_only_verified_evidence_leaves_and_complete_repeats_what_was_sent(repo: Path) -> None:
    provider = AllAtOnce(
        [
            suggestion("kept whole", GOOD),
            suggestion("kept, one item dropped", GOOD, MISSING),
            suggestion("nothing verified", WRONG_LINES, SECRET),
        ]
    )
    events = asyncio.run(run(provider, repo))
    complete = events[-1].json()
    assert [item["title"] for item in sent(events)] == ["kept whole", "kept, one item dropped"]
    assert complete["suggestions"] == sent(events)
    for item in sent(events):
        assert item["evidence"] == [GOOD.to_wire()]
    assert complete["evidenceStats"] == {"cited": 5, "verified": 2, "dropped": 3}


def test_a_provider_fixes_what_failed_and_the_retry_counts(repo: Path) -> None:
    async def script(sink: RunSink) -> None:
        first = await sink.suggestion(suggestion("s", WRONG_LINES), last_attempt=False)
        assert not first.sendable and "do not exist" in retry_message(first)
        fixed = await sink.suggestion(suggestion("s", GOOD), previous=first)
        assert fixed.complete

    events = asyncio.run(run(Submitting(script), repo))
    assert [item["evidence"] for item in sent(events)] == [[GOOD.to_wire()]]
    assert events[-1].json()["evidenceStats"] == {"cited": 2, "verified": 1, "dropped": 0}


def test_a_suggestion_still_wrong_on_its_last_attempt_is_never_sent(repo: Path) -> None:
    checks: list[SuggestionCheck] = []

    async def script(sink: RunSink) -> None:
        checks.append(await sink.suggestion(suggestion("s", MISSING), last_attempt=False))
        checks.append(await sink.suggestion(suggestion("s", MISSING), previous=checks[0]))
        await sink.suggestion(suggestion("another", GOOD))

    events = asyncio.run(run(Submitting(script), repo))
    assert [item["title"] for item in sent(events)] == ["another"]
    assert [e.json()["index"] for e in events if e.event == "suggestion"] == [0]
    assert events[-1].json()["evidenceStats"] == {"cited": 3, "verified": 1, "dropped": 1}


def test_suggestions_are_sent_as_they_are_submitted_before_complete(repo: Path) -> None:
    async def script(sink: RunSink) -> None:
        for n in range(3):
            sink.text(f"thinking {n} ")
            await sink.suggestion(suggestion(f"s{n}", GOOD))

    events = asyncio.run(run(Submitting(script), repo))
    names = [e.event for e in events if e.event in ("delta", "suggestion")]
    assert names == ["delta", "suggestion"] * 3


def test_progress_follows_the_run_and_never_goes_down(repo: Path) -> None:
    async def script(sink: RunSink) -> None:
        sink.activity("Read", "README.md")
        for n in range(12):
            sink.activity("Read", f"app/cart/part{n}.tsx")
        sink.activity("Read", "CONTRIBUTING.md")  # a doc read while exploring: still exploring
        sink.progress(ProgressPhase.DRAFTING, expected=4)
        for n in range(4):
            await sink.suggestion(suggestion(f"s{n}", GOOD))

    events = asyncio.run(run(Submitting(script), repo))
    progress = [e.json() for e in events if e.event == "progress"]
    phases = [item["phase"] for item in progress]
    assert phases[0] == "reading-docs"
    assert phases == sorted(
        phases, key=["reading-docs", "exploring", "drafting", "verifying"].index
    )
    percents = [item["percent"] for item in progress]
    assert percents == sorted(percents)
    assert percents[-1] == 100 and max(percents[:-1]) < 100
    assert progress[-1]["filesRead"] == 14
    assert progress[-1]["suggestionsReady"] == progress[-1]["suggestionsExpected"] == 4
    assert events[-2].event == "progress" and events[-1].event == "complete"


def test_a_failed_run_never_shows_100(repo: Path) -> None:
    async def script(sink: RunSink) -> None:
        await sink.suggestion(suggestion("s", GOOD))
        raise RuntimeError("boom")

    events = asyncio.run(run(Submitting(script), repo))
    assert events[-1].event == "error"
    assert all(e.json()["percent"] < 100 for e in events if e.event == "progress")


def test_a_suggestion_that_cites_nothing_is_never_sent_by_an_engine_that_must_cite(
    repo: Path,
) -> None:
    checks: list[SuggestionCheck] = []

    async def script(sink: RunSink) -> None:
        checks.append(await sink.suggestion(suggestion("uncited")))
        checks.append(await sink.suggestion(suggestion("cited", GOOD)))

    events = asyncio.run(run(Submitting(script), repo))
    assert [item["title"] for item in sent(events)] == ["cited"]
    assert [check.index for check in checks] == [None, 0]
    assert events[-1].json()["evidenceStats"] == {"cited": 1, "verified": 1, "dropped": 0}


def test_a_suggestion_sent_back_and_never_fixed_counts_as_dropped(repo: Path) -> None:
    async def script(sink: RunSink) -> None:
        first = await sink.suggestion(suggestion("abandoned", GOOD, MISSING), last_attempt=False)
        assert first.index is None
        await sink.suggestion(suggestion("fixed elsewhere", GOOD))  # moves on
        second = await sink.suggestion(suggestion("left at the end", MISSING), last_attempt=False)
        assert second.index is None

    events = asyncio.run(run(Submitting(script), repo))
    assert [item["title"] for item in sent(events)] == ["fixed elsewhere"]
    # cited: 2 + 1 + 1; verified: 1; dropped: both items of the first, the one of the last.
    assert events[-1].json()["evidenceStats"] == {"cited": 4, "verified": 1, "dropped": 3}


def test_the_scripted_double_plays_uncited_suggestions_as_given(repo: Path) -> None:
    events = asyncio.run(run(ScriptedProvider(["text"]), repo))
    assert len(sent(events)) == 3
    assert events[-1].json()["evidenceStats"] == {"cited": 0, "verified": 0, "dropped": 0}
