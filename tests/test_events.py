"""Events: every builder's output is its model on the wire, byte for byte, framed once."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from feature_planner import events
from feature_planner.events import JobEvent
from feature_planner.models import (
    EVENT_MODELS,
    FINAL_EVENTS,
    Effort,
    ErrorCode,
    EventModel,
    Evidence,
    EvidenceStats,
    Impact,
    ProgressPhase,
    Suggestion,
    TokenUsage,
)
from tests.sse_decoder import SSEDecoder

SUGGESTION = Suggestion(
    title="Saved carts",
    rationale="People come back",
    description="Keep the cart",
    implementation_considerations=["a table", "a route"],
)

# One row per way of building an event: every event of EVENT_MODELS has at least one.
BUILT: dict[str, Callable[[], EventModel]] = {
    "connected": lambda: events.connected("job-1"),
    "connected, resumed": lambda: events.connected("job-1", resumed_from=4),
    "delta": lambda: events.delta("Reading the page", 16),
    "delta, multi-line": lambda: events.delta("line1\nline2\r\nline3\u2028line4\u2029é", 29),
    "activity": lambda: events.activity("Read", "src/app/page.tsx"),
    "suggestion": lambda: events.suggestion(0, SUGGESTION),
    "suggestion, with evidence": lambda: events.suggestion(
        2,
        SUGGESTION.model_copy(
            update={
                "evidence": [
                    Evidence(path="src/app/page.tsx", start_line=3, end_line=4, quote="return")
                ],
                "effort": Effort.SMALL,
                "impact": Impact.HIGH,
            }
        ),
    ),
    "progress": lambda: events.progress(
        ProgressPhase.EXPLORING, 37, files_read=4, suggestions_ready=0, suggestions_expected=3
    ),
    "complete": lambda: events.complete(
        suggestions=[SUGGESTION],
        context="A cart page",
        token_usage=TokenUsage(input_tokens=10, output_tokens=20, cache_read_input_tokens=3),
        execution_time_ms=1234,
        retry_count=1,
        provider="anthropic",
        model="claude",
        evidence_stats=EvidenceStats(cited=3, verified=2, dropped=1),
    ),
    "complete, notice": lambda: events.complete(
        suggestions=(),
        context="",
        token_usage=TokenUsage(),
        execution_time_ms=0,
        retry_count=0,
        provider="offline",
        model="none",
        notice="No AI model was involved",
    ),
    **{
        f"error {code.value}": (lambda code=code: events.error(code, f"it went {code.value}"))
        for code in ErrorCode
    },
}


def test_every_event_of_the_stream_has_a_builder() -> None:
    assert {type(build()).event_name for build in BUILT.values()} == set(EVENT_MODELS)


@pytest.mark.parametrize("case", BUILT)
def test_a_built_event_validates_against_its_model(case: str) -> None:
    event = BUILT[case]()
    job_event = JobEvent.of(7, event)
    model = EVENT_MODELS[job_event.name]
    assert type(event) is model
    assert model.model_validate_json(job_event.data) == event
    assert json.loads(job_event.data) == event.to_wire()  # camelCase, no nulls
    assert job_event.is_final == (job_event.name in FINAL_EVENTS)


@pytest.mark.parametrize("case", BUILT)
def test_a_built_event_is_framed_once_on_one_data_line(case: str) -> None:
    event = BUILT[case]()
    job_event = JobEvent.of(7, event)
    assert b"\n" not in job_event.data and b"\r" not in job_event.data
    assert job_event.frame == b"id: 7\nevent: %s\ndata: %s\n\n" % (
        job_event.name.encode(),
        job_event.data,
    )
    assert events.frame(7, event) == job_event.frame
    [decoded] = SSEDecoder().feed(job_event.frame)
    assert (decoded.id, decoded.event) == ("7", job_event.name)
    assert EVENT_MODELS[decoded.event].model_validate_json(decoded.data) == event


def test_the_wire_shape_is_the_contracts() -> None:
    """Field names, their order, and what is left out: as the contract and earlier servers."""
    delta = events.delta("é\n", 2)
    assert (
        JobEvent.of(3, delta).frame
        == (
            'id: 3\nevent: delta\ndata: {"text":"é\\n","totalLength":2,'
            f'"timestamp":{delta.timestamp}}}\n\n'
        ).encode()
    )
    fresh, resumed = events.connected("j"), events.connected("j", resumed_from=0)
    assert (
        events.frame(0, fresh)
        == (
            f'id: 0\nevent: connected\ndata: {{"jobId":"j","timestamp":{fresh.timestamp}}}\n\n'
        ).encode()
    )
    assert json.loads(events.to_json(resumed)) == {
        "jobId": "j",
        "timestamp": resumed.timestamp,
        "resumedFrom": 0,
    }
    error = events.error(ErrorCode.TIMEOUT, "too slow")
    assert (
        events.to_json(error)
        == (f'{{"message":"too slow","code":"TIMEOUT","timestamp":{error.timestamp}}}').encode()
    )
    complete = BUILT["complete, notice"]()
    assert list(json.loads(events.to_json(complete))) == [
        "suggestions",
        "context",
        "tokenUsage",
        "executionTimeMs",
        "retryCount",
        "provider",
        "model",
        "timestamp",
        "notice",
    ]
    assert json.loads(events.to_json(BUILT["complete"]()))["tokenUsage"] == {
        "inputTokens": 10,
        "outputTokens": 20,
        "cacheReadInputTokens": 3,
    }


def test_only_complete_and_error_are_final() -> None:
    assert {"complete", "error"} == FINAL_EVENTS
    assert not JobEvent.of(1, events.delta("a", 1)).is_final
    assert JobEvent.of(1, events.error(ErrorCode.CANCELLED, "stop")).is_final
