"""The Redis store's writes against a real redis-server: what a run appends reaches the
stream complete and in order, however its flushes overlap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from feature_planner import events
from feature_planner.events import JobEvent
from feature_planner.jobs import redis_schema as schema
from feature_planner.jobs.redis_store import RedisJobStore
from feature_planner.jobs.store import JobRecord, JobTTLs
from feature_planner.models import (
    FeatureType,
    JobState,
    PriorityLevel,
    SuggestionRequest,
    TokenUsage,
)
from feature_planner.redis_client import connect_redis
from tests.redis_server import RedisServer

REQUEST = SuggestionRequest(
    page_or_component="Cart", feature_type=FeatureType.ENHANCEMENT, priority_level=PriorityLevel.LOW
)


@pytest.fixture
async def store(redis_server: RedisServer) -> AsyncIterator[RedisJobStore]:
    redis_server.flush()
    client = connect_redis(redis_server.url, 2.0)
    store = RedisJobStore(client, JobTTLs(), url=redis_server.url)
    await store.start()
    yield store
    await store.close()


def delta(event_id: int) -> JobEvent:
    return JobEvent.of(event_id, events.delta(str(event_id), event_id))


async def test_finish_waits_for_the_writers_flush_in_flight(
    store: RedisJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's batch is slow to reach Redis while the run ends: the end's own flush must
    not overtake it, or the writer's lower ids are refused and those deltas are lost."""
    await store.create(JobRecord("job", "u", REQUEST, JobState.PENDING, 0, 0))
    assert await store.claim("job", "runner", on_cancel=lambda message: None)

    gate = asyncio.Event()
    held = asyncio.Event()
    make_pipeline = store.client.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make_pipeline(*args, **kwargs)
        if held.is_set():
            return pipe
        execute = pipe.execute

        async def slow_execute(*a: Any, **k: Any) -> Any:
            held.set()
            await gate.wait()
            return await execute(*a, **k)

        pipe.execute = slow_execute  # type: ignore[method-assign]
        return pipe

    monkeypatch.setattr(store.client, "pipeline", pipeline)

    for event_id in range(1, 6):
        store.append("job", delta(event_id))
    await asyncio.wait_for(held.wait(), 5)  # the writer holds events 1-5, not yet sent
    store.append("job", delta(6))
    result = events.complete(
        suggestions=[],
        context="",
        token_usage=TokenUsage(),
        execution_time_ms=1,
        retry_count=0,
        provider="scripted",
        model="none",
    )
    final = JobEvent.of(7, result)
    store.append("job", final)
    finishing = asyncio.create_task(store.finish("job", JobState.COMPLETED, 7))
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.wait_for(finishing, 5)

    entries = await store.client.xrange(schema.events_key("job"))
    assert [entry_id for entry_id, _ in entries] == [f"{n}-0".encode() for n in range(1, 8)]
    assert [fields[b"e"] for _, fields in entries] == [b"delta"] * 6 + [b"complete"]
    assert await store.client.hget(schema.job_key("job"), "state") == b"completed"
