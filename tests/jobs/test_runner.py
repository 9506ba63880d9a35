"""A run through the memory store: events, ids and text, whatever the provider's timing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from feature_planner.agent.base import PlanRequest, PlanResult
from feature_planner.agent.providers import ScriptedProvider
from feature_planner.jobs.memory import MemoryJobStore
from feature_planner.jobs.relay import Subscriber
from feature_planner.jobs.runner import JobRun
from feature_planner.jobs.store import JobRecord
from feature_planner.models import FeatureType, JobState, PriorityLevel, SuggestionRequest
from tests.sse_decoder import ServerSentEvent, SSEDecoder

REQUEST = SuggestionRequest(
    page_or_component="Cart", feature_type=FeatureType.ENHANCEMENT, priority_level=PriorityLevel.LOW
)


async def run_job(
    provider: ScriptedProvider, *, throttle_s: float, time_limit_s: float = 5
) -> tuple[list[ServerSentEvent], JobRun, MemoryJobStore]:
    store = MemoryJobStore()
    record = JobRecord("job", "u", REQUEST, JobState.PENDING, 0, 0)
    await store.create(record)
    assert await store.claim("job", "runner", on_cancel=lambda message: None)
    log = await store.subscribe_log("job")
    assert log is not None
    subscriber = Subscriber(log, 0)
    run = JobRun(store, "job", throttle_s=throttle_s, time_limit_s=time_limit_s)
    run.start(provider, PlanRequest.from_request(REQUEST, Path(".")))
    decoder, events = SSEDecoder(), []
    while (chunk := await subscriber.next_chunk()) is not None:
        events += decoder.feed(chunk)
    return events, run, store


@settings(max_examples=40, deadline=None)
@given(
    chunks=st.lists(st.text(min_size=1, max_size=10), min_size=0, max_size=30),
    delays=st.lists(st.sampled_from([0.0, 0.0, 0.001, 0.004]), max_size=30),
    throttle=st.sampled_from([0.0, 0.002, 0.01]),
    fail_at=st.one_of(st.none(), st.integers(min_value=0, max_value=30)),
)
def test_events_carry_exactly_the_text_the_provider_produced(
    chunks: list[str], delays: list[float], throttle: float, fail_at: int | None
) -> None:
    provider = ScriptedProvider(chunks, interval_s=delays, fail_at=fail_at)
    events, run, _ = asyncio.run(run_job(provider, throttle_s=throttle))
    ids = [int(e.id or 0) for e in events]
    assert ids == list(range(1, len(events) + 1))
    produced = chunks if fail_at is None else chunks[:fail_at]
    text = "".join(e.json()["text"] for e in events if e.event == "delta")
    assert text == "".join(produced)
    assert events[-1].event == ("complete" if fail_at is None else "error")
    assert sum(e.event in ("complete", "error") for e in events) == 1
    assert run.state in (JobState.COMPLETED, JobState.FAILED)


async def test_cancel_flushes_buffered_text_before_the_error() -> None:
    provider = ScriptedProvider(["a", "b", "c", "d"], interval_s=[0, 0, 0, 10])
    store = MemoryJobStore()
    await store.create(JobRecord("job", "u", REQUEST, JobState.PENDING, 0, 0))
    await store.claim("job", "runner", on_cancel=lambda message: None)
    log = await store.subscribe_log("job")
    assert log is not None
    run = JobRun(store, "job", throttle_s=60, time_limit_s=60)
    task = run.start(provider, PlanRequest.from_request(REQUEST, Path(".")))
    await asyncio.sleep(0.05)
    run.cancel("stop")
    await task
    events = SSEDecoder().feed(log.frames_after(0))
    assert [e.event for e in events] == ["delta", "delta", "error"]
    assert events[0].json()["text"] + events[1].json()["text"] == "abc"
    assert events[-1].json() == {
        "message": "stop",
        "code": "CANCELLED",
        "timestamp": events[-1].json()["timestamp"],
    }
    record = await store.get("job")
    assert record is not None
    assert record.state is JobState.CANCELLED
    assert record.last_event_id == 3


async def test_an_unexpected_exception_becomes_an_execution_error_without_details() -> None:
    class Broken(ScriptedProvider):
        async def run(self, request, sink):  # type: ignore[no-untyped-def]
            sink.text("partial")
            raise RuntimeError("secret internal detail")

    events, run, _ = await run_job(Broken([]), throttle_s=0)
    assert [e.event for e in events] == ["delta", "error"]
    assert events[-1].json()["code"] == "EXECUTION_ERROR"
    assert "secret" not in events[-1].data
    assert run.state is JobState.FAILED


async def test_a_result_that_is_no_valid_complete_event_becomes_an_execution_error() -> None:
    class Invalid(ScriptedProvider):
        async def run(self, request, sink):  # type: ignore[no-untyped-def]
            sink.text("done")
            return PlanResult(suggestions=[], context="c", model=None)  # type: ignore[arg-type]

    events, run, _ = await run_job(Invalid([]), throttle_s=0)
    assert [e.event for e in events] == ["delta", "error"]
    assert events[-1].json()["code"] == "EXECUTION_ERROR"
    assert run.state is JobState.FAILED
