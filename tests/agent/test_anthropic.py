"""The ``anthropic`` provider, through the real SDK, against a local fake of the Messages API."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from feature_planner.agent.planner import (
    FINISH_TOOL_NAME,
    SUBMIT_TOOL_NAME,
    finish_schema,
    suggestion_schema,
    system_prompt,
)
from feature_planner.agent.providers import conversation
from feature_planner.agent.providers.anthropic import KEY_REFUSED, AnthropicProvider
from feature_planner.agent.providers.options import AIOptions
from tests.agent.anthropic_server import (
    FakeAnthropic,
    HttpError,
    Step,
    ToolCall,
    Turn,
    Usage,
    tool_result_text,
)
from tests.agent.conftest import (
    ANTHROPIC_KEY,
    CONTEXT,
    ENV_SECRET,
    FINISH_INPUT,
    INVALID_SUGGESTION,
    LIB,
    PAGE,
    PAGE_MARKER,
    READER_AGENT,
    SUGGESTIONS,
    evidence,
    plan_request,
    play,
    play_to_failure,
    suggestion_input,
)
from tests.agent.sinks import RecordingSink, job_events

MODEL = "claude-sonnet-4-6"

MakeProvider = Callable[..., AnthropicProvider]


@pytest.fixture
async def make_provider(
    anthropic_api: tuple[FakeAnthropic, str],
) -> AsyncIterator[Callable[..., AnthropicProvider]]:
    """Providers pointed at the fake, with tiny backoff delays; closed after the test."""
    created: list[AnthropicProvider] = []

    def make(*, max_tool_rounds: int = 25, **overrides: Any) -> AnthropicProvider:
        settings: dict[str, Any] = {
            "api_key": ANTHROPIC_KEY,
            "base_url": anthropic_api[1],
            "model": MODEL,
            "allowed_models": (MODEL, "claude-haiku-4-5"),
            "structured_retries": 2,
            "provider_retries": 2,
            **overrides,
        }
        provider = AnthropicProvider(
            AIOptions(**settings),
            retry_base_delay_s=0.01,
            retry_max_delay_s=0.05,
            max_tool_rounds=max_tool_rounds,
        )
        created.append(provider)
        return provider

    yield make
    for provider in created:
        await provider.aclose()


def _submit(
    suggestions: Sequence[dict[str, Any]] = SUGGESTIONS,
    text: Sequence[str] = (),
    *,
    finish: bool = True,
) -> Turn:
    """One turn that submits ``suggestions`` one call each, then (by default) finishes."""
    calls = [ToolCall(SUBMIT_TOOL_NAME, item, pieces=7) for item in suggestions]
    if finish:
        calls.append(ToolCall(FINISH_TOOL_NAME, FINISH_INPUT, pieces=2))
    return Turn(text=text, tool_calls=calls)


# -- a whole run ------------------------------------------------------------------------------


async def test_full_run_streams_the_narrative_runs_tools_and_returns_suggestions(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    glob = ToolCall("Glob", {"pattern": "src/**/*.tsx"})
    read = ToolCall("Read", {"path": PAGE})
    grep = ToolCall("Grep", {"pattern": "getCollections"})
    script = [
        Turn(
            text=["I'll look for ", "the collections page."],
            tool_calls=[glob],
            usage=Usage(input_tokens=1200, output_tokens=40, cache_creation_input_tokens=1000),
        ),
        Turn(
            text=["Found it; ", "reading it."],
            tool_calls=[read],
            usage=Usage(input_tokens=300, output_tokens=30, cache_read_input_tokens=1000),
        ),
        Turn(
            text=["It calls getCollections; ", "where is that?"],
            tool_calls=[grep],
            usage=Usage(input_tokens=200, output_tokens=20, cache_read_input_tokens=1300),
        ),
        Turn(
            text=["Here are my suggestions."],
            tool_calls=[ToolCall(SUBMIT_TOOL_NAME, item, pieces=9) for item in SUGGESTIONS]
            + [ToolCall(FINISH_TOOL_NAME, FINISH_INPUT)],
            usage=Usage(input_tokens=100, output_tokens=400, cache_read_input_tokens=1500),
            model="claude-sonnet-4-6-20260115",
        ),
    ]

    result, sink = await play(make_provider(), fake_anthropic, script, plan_request(repo))

    # The narrative: every text_delta, in order, as it came; rounds separated by a blank line.
    assert sink.chunks == [
        "I'll look for ",
        "the collections page.",
        "\n\nFound it; ",
        "reading it.",
        "\n\nIt calls getCollections; ",
        "where is that?",
        "\n\nHere are my suggestions.",
    ]
    assert [tool for tool, _ in sink.activities] == ["Glob", "Read", "Grep"]
    assert "src/**/*.tsx" in sink.activities[0][1]
    assert PAGE in sink.activities[1][1]
    assert "getCollections" in sink.activities[2][1]

    # The suggestions, one by one, and what the API reported.
    assert [s.title for s in sink.suggestions] == [s["title"] for s in SUGGESTIONS]
    assert list(result.suggestions) == sink.suggestions
    assert result.suggestions[0].implementation_considerations == [
        "Consideration 1.1",
        "Consideration 1.2",
    ]
    assert (result.suggestions[0].effort, result.suggestions[0].impact) == ("small", "high")
    assert result.suggestions[1].evidence[0].path == LIB
    assert result.context == CONTEXT
    assert result.notice is None
    assert result.model == "claude-sonnet-4-6-20260115"
    assert result.retry_count == 0
    usage = result.token_usage
    assert (usage.input_tokens, usage.output_tokens) == (1800, 490)
    assert usage.cache_creation_input_tokens == 1000
    assert usage.cache_read_input_tokens == 3800

    # What was sent: the prompt, the tools, and the real results of the tools.
    assert len(fake_anthropic.requests) == 4
    first = fake_anthropic.requests[0].body
    assert first["model"] == MODEL and first["stream"] is True
    assert first["system"] == system_prompt(None)
    assert "Collections page" in first["messages"][0]["content"]
    # The repository map's summary: the page's own files, before any tool call.
    assert (
        f"- {PAGE} (route; exports CollectionsPage; imports {LIB}"
        in (first["messages"][0]["content"])
    )
    assert "temperature" not in first
    assert fake_anthropic.requests[0].tool_names == [
        "Glob",
        "Grep",
        "Read",
        SUBMIT_TOOL_NAME,
        FINISH_TOOL_NAME,
    ]
    assert first["tools"][-2]["input_schema"] == suggestion_schema()
    assert first["tools"][-1]["input_schema"] == finish_schema()
    assert first["tool_choice"] == {"type": "auto"}

    (glob_result,) = fake_anthropic.requests[1].tool_results()
    assert glob_result["tool_use_id"] == glob.id and not glob_result.get("is_error")
    assert PAGE in tool_result_text(glob_result)
    assert "src/app/cart/page.tsx" in tool_result_text(glob_result)
    (read_result,) = fake_anthropic.requests[2].tool_results()
    assert read_result["tool_use_id"] == read.id
    assert PAGE_MARKER in tool_result_text(read_result)
    (grep_result,) = fake_anthropic.requests[3].tool_results()
    assert "src/lib/collections.ts" in tool_result_text(grep_result)

    # The assistant turns went back as they came: text, and the tool calls' parsed inputs.
    history = fake_anthropic.requests[3].body["messages"]
    assert [message["role"] for message in history] == ["user", "assistant"] * 3 + ["user"]
    assert history[1]["content"] == [
        {"type": "text", "text": "I'll look for the collections page."},
        {"type": "tool_use", "id": glob.id, "name": "Glob", "input": glob.input},
    ]


async def test_request_model_is_used_and_the_key_is_sent(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    result, _ = await play(
        make_provider(), fake_anthropic, [_submit()], plan_request(repo, model="claude-haiku-4-5")
    )

    assert fake_anthropic.requests[0].body["model"] == "claude-haiku-4-5"
    assert result.model == "claude-haiku-4-5"
    headers = fake_anthropic.requests[0].headers
    assert ANTHROPIC_KEY in (headers.get("x-api-key", ""), headers.get("authorization", "")[7:])
    assert "anthropic-version" in headers


async def test_custom_agent_limits_the_tools_and_sets_the_system_prompt(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    glob = ToolCall("Glob", {"pattern": "**/*"})
    script = [Turn(text=["Searching anyway."], tool_calls=[glob]), _submit()]

    result, sink = await play(
        make_provider(), fake_anthropic, script, plan_request(repo, agent=READER_AGENT)
    )

    assert fake_anthropic.requests[0].tool_names == ["Read", SUBMIT_TOOL_NAME, FINISH_TOOL_NAME]
    assert fake_anthropic.requests[0].body["system"] == system_prompt(READER_AGENT)
    assert "You only read files." in fake_anthropic.requests[0].body["system"]
    (refused,) = fake_anthropic.requests[1].tool_results()
    assert refused["is_error"] is True and "no tool named 'Glob'" in tool_result_text(refused)
    assert sink.activities == []
    assert len(result.suggestions) == 3


async def test_a_refused_tool_call_goes_back_as_an_error_result(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    secret = ToolCall("Read", {"path": ".env"})
    script = [Turn(tool_calls=[secret]), _submit()]

    _, sink = await play(make_provider(), fake_anthropic, script, plan_request(repo))

    assert sink.activities == [("Read", ".env")]
    (refused,) = fake_anthropic.requests[1].tool_results()
    assert refused["tool_use_id"] == secret.id and refused["is_error"] is True
    assert ENV_SECRET not in tool_result_text(refused)


# -- suggestions one by one ------------------------------------------------------------------


async def test_an_invalid_suggestion_is_fed_back_and_the_retry_counted(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [
        _submit([INVALID_SUGGESTION], text=["Done."], finish=False),
        _submit(text=["Fixed."]),
    ]

    result, sink = await play(make_provider(), fake_anthropic, script, plan_request(repo))

    assert result.retry_count == 1
    assert len(result.suggestions) == 3 and len(sink.suggestions) == 3
    assert sink.narrative == "Done.\n\nFixed."
    (feedback,) = fake_anthropic.requests[1].tool_results()
    assert feedback["is_error"] is True
    assert "effort" in tool_result_text(feedback)
    assert f"Call {SUBMIT_TOOL_NAME} again" in tool_result_text(feedback)


async def test_an_invalid_suggestion_every_time_ends_with_a_provider_error(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [_submit([INVALID_SUGGESTION], finish=False)] * 3

    error, sink = await play_to_failure(
        make_provider(structured_retries=2), fake_anthropic, script, plan_request(repo)
    )

    assert "did not return valid suggestions after 2 retries" in str(error)
    assert len(fake_anthropic.requests) == 3
    assert sink.suggestions == []


async def test_a_turn_that_ends_too_early_is_asked_to_go_on(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [Turn(text=["I think the page needs filters."]), _submit()]

    result, _ = await play(make_provider(), fake_anthropic, script, plan_request(repo))

    assert result.retry_count == 1
    nudge = fake_anthropic.requests[1].body
    assert nudge["tool_choice"] == {"type": "any"}
    assert SUBMIT_TOOL_NAME in nudge["messages"][-1]["content"]
    assert FINISH_TOOL_NAME in nudge["messages"][-1]["content"]


async def test_a_turn_that_ends_after_three_suggestions_ends_the_run_with_them(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [_submit(finish=False), Turn(text=["That is all."])]

    result, _ = await play(make_provider(), fake_anthropic, script, plan_request(repo))

    assert [s.title for s in result.suggestions] == [s["title"] for s in SUGGESTIONS]
    assert result.context == "The run ended before the model summarised what it read."
    assert len(fake_anthropic.requests) == 2


async def test_finish_with_too_few_suggestions_is_refused_once(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    finish = ToolCall(FINISH_TOOL_NAME, FINISH_INPUT)
    script = [_submit(SUGGESTIONS[:1]), Turn(tool_calls=[finish])]

    result, _ = await play(make_provider(), fake_anthropic, script, plan_request(repo))

    (_, refused) = fake_anthropic.requests[1].tool_results()
    assert refused["is_error"] is True
    assert "Only 1 suggestion(s) were accepted" in tool_result_text(refused)
    assert len(result.suggestions) == 1 and result.context == CONTEXT
    assert result.notice is not None and "only 1 suggestion(s)" in result.notice


async def test_a_sixth_suggestion_is_refused(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    six = [suggestion_input(n) for n in range(1, 7)]
    script = [_submit(six, finish=False), _submit([])]

    result, _ = await play(make_provider(), fake_anthropic, script, plan_request(repo))

    assert len(result.suggestions) == 5
    answers = fake_anthropic.requests[1].tool_results()
    assert "call finish now" in tool_result_text(answers[4])
    assert answers[5]["is_error"] is True and "the most a run has" in tool_result_text(answers[5])


async def test_a_suggestion_cut_off_at_the_token_limit_is_asked_for_again(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    cut_off = ToolCall(SUBMIT_TOOL_NAME, SUGGESTIONS[0], pieces=4)
    script = [Turn(tool_calls=[cut_off], stop_reason="max_tokens"), _submit()]

    result, _ = await play(make_provider(), fake_anthropic, script, plan_request(repo))

    assert result.retry_count == 1
    (answer,) = fake_anthropic.requests[1].tool_results()
    assert answer["tool_use_id"] == cut_off.id and answer["is_error"] is True
    assert "token limit" in tool_result_text(answer)


async def test_tool_rounds_are_capped(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [Turn(tool_calls=[ToolCall("Glob", {"pattern": "*.md"})]) for _ in range(3)]

    error, _ = await play_to_failure(
        make_provider(max_tool_rounds=3), fake_anthropic, script, plan_request(repo)
    )

    assert "within 3 rounds" in str(error)
    assert len(fake_anthropic.requests) == 3
    # The last round asks for a tool call outright.
    assert fake_anthropic.requests[2].body["tool_choice"] == {"type": "any"}


async def test_out_of_rounds_with_suggestions_sent_ends_with_them(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [_submit(SUGGESTIONS[:2], finish=False), _submit(SUGGESTIONS[2:], finish=False)]

    result, _ = await play(
        make_provider(max_tool_rounds=2), fake_anthropic, script, plan_request(repo)
    )

    assert len(result.suggestions) == 3


# -- evidence, verified by the runner ---------------------------------------------------------

MISSING_FILE = evidence("src/app/collections/Grid.tsx", 1, 1, "export function Grid()")
WRONG_RANGE = evidence(PAGE, 40, 41, "const collections = await getCollections()")
OTHER_LINES = evidence(PAGE, 1, 1, "return <CollectionGrid items={collections} />")


def _sent(events: list[Any]) -> list[dict[str, Any]]:
    return [event.json()["suggestion"] for event in events if event.event == "suggestion"]


async def test_through_the_runner_a_correct_run_streams_each_suggestion_before_complete(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    fake_anthropic.play([_submit(text=["Here they are."])])

    events = await job_events(make_provider(), plan_request(repo))

    names = [event.event for event in events]
    assert names.count("suggestion") == 3
    assert names.index("suggestion") > names.index("delta")
    assert names[-1] == "complete"
    complete = events[-1].json()
    assert complete["suggestions"] == _sent(events)
    assert [item["index"] for item in (e.json() for e in events if e.event == "suggestion")] == [
        0,
        1,
        2,
    ]
    assert complete["evidenceStats"] == {"cited": 3, "verified": 3, "dropped": 0}
    assert complete["retryCount"] == 0
    phases = [event.json()["phase"] for event in events if event.event == "progress"]
    assert phases.index("drafting") < phases.index("verifying")


@pytest.mark.parametrize(
    ("wrong", "reason"),
    [
        (MISSING_FILE, "no such file: src/app/collections/Grid.tsx"),
        (WRONG_RANGE, "has 6 lines; lines 40-41 do not exist. The quote occurs at line 4."),
        (
            OTHER_LINES,
            f"the quote does not occur in line 1 of {PAGE} (it occurs at line 5)",
        ),
    ],
    ids=["missing-file", "wrong-range", "quote-from-other-lines"],
)
async def test_through_the_runner_failed_evidence_goes_back_and_the_fix_is_sent(
    fake_anthropic: FakeAnthropic,
    make_provider: MakeProvider,
    repo: Path,
    wrong: dict[str, Any],
    reason: str,
) -> None:
    first = suggestion_input(1, wrong)
    script = [_submit([first], finish=False), _submit()]
    fake_anthropic.play(script)

    events = await job_events(make_provider(), plan_request(repo))

    (answer,) = fake_anthropic.requests[1].tool_results()
    assert answer["is_error"] is True
    assert reason in tool_result_text(answer), tool_result_text(answer)
    assert "Submit the suggestion again" in tool_result_text(answer)
    sent = _sent(events)
    assert [item["title"] for item in sent] == [s["title"] for s in SUGGESTIONS]
    complete = events[-1].json()
    assert complete["retryCount"] == 1
    # cited: the wrong item, then the three right ones; all three sent.
    assert complete["evidenceStats"] == {"cited": 4, "verified": 3, "dropped": 0}
    assert all(
        item["evidence"][0]["path"] != wrong["path"] or wrong is not MISSING_FILE for item in sent
    )


async def test_through_the_runner_a_suggestion_wrong_twice_is_dropped_never_sent(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    bad = suggestion_input(9, MISSING_FILE)
    script = [_submit([bad], finish=False), _submit([bad], finish=False), _submit()]
    fake_anthropic.play(script)

    events = await job_events(make_provider(), plan_request(repo))

    (dropped,) = fake_anthropic.requests[2].tool_results()
    assert "was dropped" in tool_result_text(dropped)
    assert [item["title"] for item in _sent(events)] == [s["title"] for s in SUGGESTIONS]
    complete = events[-1].json()
    assert complete["evidenceStats"] == {"cited": 5, "verified": 3, "dropped": 1}
    assert complete["retryCount"] == 2  # sent back once, then dropped: the model asked again


async def test_through_the_runner_a_model_that_never_cites_fails_and_shows_nothing(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    uncited = {key: value for key, value in SUGGESTIONS[0].items() if key != "evidence"}
    fake_anthropic.play([_submit([uncited], finish=False)] * 3)

    events = await job_events(make_provider(structured_retries=2), plan_request(repo))

    assert _sent(events) == []
    assert events[-1].event == "error"
    assert events[-1].json()["code"] == "PROVIDER_ERROR"
    (feedback,) = fake_anthropic.requests[1].tool_results()
    assert "evidence" in tool_result_text(feedback)


# -- provider failures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [
        HttpError(429, "rate_limit_error", retry_after="0"),
        HttpError(529, "overloaded_error"),
        HttpError(500, "api_error"),
        Turn(error_event="overloaded_error"),  # a streamed error event before any text
        Turn(cut_after_text=True),  # the connection lost before any text
    ],
    ids=["429", "529", "500", "error-event", "cut"],
)
async def test_failures_before_any_text_are_retried(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path, failure: Step
) -> None:
    result, sink = await play(
        make_provider(), fake_anthropic, [failure, _submit(text=["Done."])], plan_request(repo)
    )

    assert len(result.suggestions) == 3
    assert sink.narrative == "Done."
    assert len(fake_anthropic.requests) == 2
    assert result.retry_count == 0


async def test_a_failure_in_a_later_round_before_its_text_is_retried(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script: list[Step] = [
        Turn(text=["Reading."], tool_calls=[ToolCall("Read", {"path": "CLAUDE.md"})]),
        HttpError(529, "overloaded_error"),
        _submit(text=["Done."]),
    ]

    _, sink = await play(make_provider(), fake_anthropic, script, plan_request(repo))

    assert sink.narrative == "Reading.\n\nDone."
    assert fake_anthropic.requests[1].body == fake_anthropic.requests[2].body


async def test_retries_are_bounded(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [HttpError(529, "overloaded_error")] * 3

    error, _ = await play_to_failure(
        make_provider(provider_retries=2), fake_anthropic, script, plan_request(repo)
    )

    assert "overloaded" in str(error) and "after 2 retries" in str(error)
    assert len(fake_anthropic.requests) == 3


async def test_a_refused_key_is_a_provider_error_without_the_key(
    fake_anthropic: FakeAnthropic,
    make_provider: MakeProvider,
    repo: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-ant-wrong-key-PRIVATE"
    provider = make_provider(api_key=wrong)

    error, _ = await play_to_failure(provider, fake_anthropic, [_submit()], plan_request(repo))

    assert str(error) == KEY_REFUSED
    assert wrong not in str(error)
    assert fake_anthropic.refused == 1  # not retried
    assert wrong not in caplog.text


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (HttpError(404, "not_found_error", "model: claude-nope"), "claude-nope"),
        (HttpError(400, "invalid_request_error", "max_tokens: too large"), "max_tokens"),
    ],
    ids=["404", "400"],
)
async def test_a_refused_model_or_request_names_the_model(
    fake_anthropic: FakeAnthropic,
    make_provider: MakeProvider,
    repo: Path,
    failure: HttpError,
    expected: str,
) -> None:
    error, _ = await play_to_failure(
        make_provider(), fake_anthropic, [failure], plan_request(repo, model="claude-nope")
    )

    assert "claude-nope" in str(error) and expected in str(error)
    assert len(fake_anthropic.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [
        Turn(text=["Reading the ", "page"], cut_after_text=True),
        Turn(text=["Reading the ", "page"], error_event="overloaded_error"),
    ],
    ids=["cut", "error-event"],
)
async def test_a_failure_after_text_has_streamed_is_not_retried(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path, failure: Turn
) -> None:
    error, sink = await play_to_failure(
        make_provider(), fake_anthropic, [failure, _submit()], plan_request(repo)
    )

    assert str(error).startswith("The answer broke off mid-stream")
    assert sink.narrative == "Reading the page"
    assert len(fake_anthropic.requests) == 1


async def test_cancellation_closes_the_upstream_connection_at_once(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    fake_anthropic.play([Turn(text=["Looking at ", "the page"], stall_after_text=True)])
    sink = RecordingSink()
    task = asyncio.create_task(make_provider().run(plan_request(repo), sink))
    await asyncio.wait_for(sink.first_text.wait(), 5)
    assert await asyncio.to_thread(fake_anthropic.stalled.wait, 5)

    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(fake_anthropic.disconnected.wait, 2)
    assert time.monotonic() - started < 1.0
    assert sink.narrative == "Looking at the page"


async def test_a_repository_map_that_fails_leaves_the_model_to_explore_without_it(
    fake_anthropic: FakeAnthropic,
    make_provider: MakeProvider,
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(root: Path, target: str) -> None:
        raise RuntimeError("the map broke")

    monkeypatch.setattr(conversation, "page_map_in_thread", broken)

    result, _ = await play(make_provider(), fake_anthropic, [_submit()], plan_request(repo))

    assert len(result.suggestions) == 3
    first = fake_anthropic.requests[0].body["messages"][0]["content"]
    assert "Collections page" in first and "map of the repository" not in first
    assert "the repository map failed" in caplog.text
