"""The terminal's live view of a stream (``suggest`` and ``show``): each suggestion is printed
as its ``suggestion`` event arrives, once, with ``path:line`` references a terminal opens, and
the progress line follows the ``progress`` events. Driven with made-up event sequences."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from rich.console import Console

from feature_planner import events, terminal
from feature_planner.client import EventEnvelope
from feature_planner.models import (
    Effort,
    Evidence,
    EvidenceStats,
    Impact,
    ProgressPhase,
    StreamEvent,
    Suggestion,
    TokenUsage,
)
from feature_planner.terminal import JsonView, RichView, evidence_ref

JOB = "00000000-0000-4000-8000-000000000018"

FIRST = Suggestion(
    title="Check the response of the products fetch",
    rationale="A failed request shows an empty list",
    description="Show an error state when the API answers an error.",
    implementation_considerations=["Use the existing ErrorBanner"],
    evidence=[
        Evidence(
            path="src/app/products/page.tsx",
            start_line=12,
            end_line=14,
            quote="const res = await fetch('/api/products')\nconst data = await res.json()",
        ),
        Evidence(path="CONTRIBUTING.md", start_line=3, end_line=3, quote="Every page has a test"),
    ],
    effort=Effort.SMALL,
    impact=Impact.HIGH,
)
SECOND = Suggestion(
    title="Page the product list",
    rationale="All products load at once",
    description="Load 50 at a time.",
    evidence=[Evidence(path="src/lib/api.ts", start_line=40, end_line=41, quote="return db.all()")],
    effort=Effort.MEDIUM,
    impact=Impact.MEDIUM,
)


def envelope(event: StreamEvent, event_id: int) -> EventEnvelope:
    return EventEnvelope(event.event_name, event_id, event)


def complete(*suggestions: Suggestion) -> StreamEvent:
    return events.complete(
        suggestions=suggestions,
        context="read 3 files",
        execution_time_ms=1200,
        token_usage=TokenUsage(input_tokens=10, output_tokens=20),
        retry_count=0,
        provider="scripted",
        model="scripted-1",
        evidence_stats=EvidenceStats(cited=4, verified=3, dropped=1),
    )


def progress(phase: ProgressPhase, percent: int, ready: int = 0) -> StreamEvent:
    return events.progress(
        phase, percent, files_read=3, suggestions_ready=ready, suggestions_expected=2
    )


def a_run() -> list[EventEnvelope]:
    """A stream as a job sends it: text, progress, each suggestion once verified, complete."""
    sequence: list[StreamEvent] = [
        events.delta("Looking at the products page", 28),
        progress(ProgressPhase.EXPLORING, 30),
        progress(ProgressPhase.VERIFYING, 60),
        events.suggestion(0, FIRST),
        progress(ProgressPhase.VERIFYING, 80, ready=1),
        events.suggestion(1, SECOND),
        progress(ProgressPhase.VERIFYING, 100, ready=2),
        complete(FIRST, SECOND),
    ]
    connected = EventEnvelope("connected", 0, events.connected(JOB))
    return [connected] + [envelope(event, n) for n, event in enumerate(sequence, start=1)]


@pytest.fixture
def live_terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Stderr as a terminal (the live area and its progress line are drawn there, into the
    returned buffer); stdout stays captured."""
    screen = io.StringIO()

    def tty() -> Console:
        return Console(file=screen, force_terminal=True, width=120, soft_wrap=True)

    monkeypatch.setattr(terminal, "stderr", tty)
    yield screen


def test_evidence_reference_is_path_colon_line_then_the_range() -> None:
    assert evidence_ref(FIRST.evidence[0]) == "src/app/products/page.tsx:12-14"
    assert evidence_ref(FIRST.evidence[1]) == "CONTRIBUTING.md:3"


def test_each_card_is_printed_at_its_event_and_not_again_at_complete(
    capsys: pytest.CaptureFixture[str],
) -> None:
    view = RichView()
    printed: dict[str, str] = {}  # what stdout had after each event, by event name and id
    with view:
        for item in a_run():
            view.show(item)
            printed[f"{item.name}:{item.id}"] = capsys.readouterr().out
    assert view.finish()
    after_finish = capsys.readouterr().out

    # The first card, whole, as soon as its event came (and not before).
    assert "1. Check the response" not in printed["progress:3"]
    card = printed["suggestion:4"]
    assert printed["delta:1"] == "Looking at the products page"
    assert card.startswith("\n\n1. Check the response of the")  # below the text
    assert "Effort: small · Impact: high" in card
    assert "src/app/products/page.tsx:12-14" in card
    assert "const res = await fetch('/api/products')" in card
    assert "CONTRIBUTING.md:3\n" in card
    assert "2. Page the product list" not in card
    # The second at its own event, numbered by its index.
    second = printed["suggestion:6"]
    assert second.startswith("2. Page the product list")
    assert "Effort: medium · Impact: medium" in second
    assert "src/lib/api.ts:40-41" in second
    # Complete and finish add the run's line, and no card again.
    everything = "".join(printed.values()) + after_finish
    assert everything.count("1. Check the response") == 1
    assert everything.count("2. Page the product list") == 1
    assert "Check the response" not in after_finish
    assert "scripted · scripted-1" in after_finish
    assert "Evidence: 4 cited · 3 verified · 1 dropped" in after_finish


def test_a_stream_without_suggestion_events_prints_the_cards_at_the_end(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # An older server, or a finished job whose stream is only its result.
    view = RichView()
    with view:
        view.show(EventEnvelope("connected", 0, events.connected(JOB)))
        view.show(envelope(events.delta("Thinking", 8), 1))
        view.show(envelope(complete(FIRST, SECOND), 2))
    assert view.finish()
    out = capsys.readouterr().out
    assert out.startswith("Thinking\n\n1. Check the response")
    assert out.count("1. Check the response") == 1
    assert out.count("2. Page the product list") == 1
    assert out.index("2. Page the product list") < out.index("Evidence: 4 cited")


def test_a_suggestion_sent_again_is_printed_once(capsys: pytest.CaptureFixture[str]) -> None:
    # A resumed stream may deliver an event the view has had: its index says it is the same.
    view = RichView()
    with view:
        view.show(envelope(events.suggestion(0, FIRST), 1))
        view.show(envelope(events.suggestion(0, FIRST), 1))
        view.show(envelope(complete(FIRST), 2))
    view.finish()
    assert capsys.readouterr().out.count("1. Check the response") == 1


def test_the_progress_line_follows_the_progress_events(
    live_terminal: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    view = RichView()
    bar = view._progress.tasks[0]
    seen: list[tuple[str, float]] = []
    with view:
        for item in a_run():
            view.show(item)
            seen.append((bar.description, bar.completed))
            if item.name == "suggestion" and item.id == 4:
                # On stdout at once, while the live area is still drawn on stderr.
                assert "1. Check the response" in capsys.readouterr().out
    view.finish()

    descriptions = [description for description, _ in seen]
    assert "Exploring the code" in descriptions
    assert "Checking the evidence" in descriptions
    percents = [percent for _, percent in seen]
    assert percents == sorted(percents)  # never goes down
    assert percents[:4] == [0, 0, 30, 60]  # the text does not move it
    assert percents[-1] == 100
    assert bar.fields["ready"] == "2 of 2 suggestions ready"
    screen = live_terminal.getvalue()
    assert "Checking the evidence" in screen
    assert "of 2 suggestions ready" in screen


def test_the_bar_follows_progress_only_and_never_goes_back(live_terminal: io.StringIO) -> None:
    view = RichView()
    bar = view._progress.tasks[0]
    with view:
        view.show(EventEnvelope("connected", 0, events.connected(JOB)))
        view.show(envelope(progress(ProgressPhase.READING_DOCS, 5), 1))
        view.show(envelope(events.delta("x" * 1900, 1900), 2))
        assert bar.completed == 5
        assert bar.description == "Reading the docs"
        view.show(envelope(progress(ProgressPhase.DRAFTING, 3), 3))  # a late, lower one
        assert bar.completed == 5
        assert bar.description == "Drafting suggestions"
        view.show(envelope(complete(), 4))
        assert bar.completed == 100


def test_json_lines_carry_the_new_events_as_they_are(capsys: pytest.CaptureFixture[str]) -> None:
    view = JsonView()
    run = a_run()
    for item in run:
        view.show(item)
    assert view.finish()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["event"] for line in lines] == [item.name for item in run]
    first = lines[4]
    assert first["event"] == "suggestion"
    assert first["data"]["index"] == 0
    assert first["data"]["suggestion"]["effort"] == "small"
    assert first["data"]["suggestion"]["evidence"][0] == {
        "path": "src/app/products/page.tsx",
        "startLine": 12,
        "endLine": 14,
        "quote": "const res = await fetch('/api/products')\nconst data = await res.json()",
    }
    assert lines[2]["data"] == {
        "phase": "exploring",
        "percent": 30,
        "filesRead": 3,
        "suggestionsReady": 0,
        "suggestionsExpected": 2,
        "timestamp": lines[2]["data"]["timestamp"],
    }
    assert lines[-1]["data"]["evidenceStats"] == {"cited": 4, "verified": 3, "dropped": 1}
    assert lines[-1]["data"]["suggestions"][0] == first["data"]["suggestion"]
