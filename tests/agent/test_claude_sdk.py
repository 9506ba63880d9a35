"""The ``claude-agent-sdk`` provider, running the SDK's real bundled runtime (Claude Code).

The runtime is pointed at the local fake Messages API (``anthropic_server.py``) with
``ANTHROPIC_BASE_URL``, so whole runs (tool rounds, retries, errors, cancellation) happen
offline, through the real subprocess and its control protocol. A few tests stand a shell
script in for the runtime, for failures the real one does not produce on cue.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Sequence
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
from feature_planner.agent.providers import claude_sdk
from feature_planner.agent.providers.claude_sdk import ClaudeAgentSdkProvider
from feature_planner.agent.providers.conversation import RAN_OUT
from feature_planner.agent.providers.options import AIOptions
from feature_planner.config import ConfigurationError
from feature_planner.errors import ProviderError
from feature_planner.models import ProgressPhase
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
    FETCH_QUOTE,
    FINISH_INPUT,
    GRID_LINE,
    GRID_QUOTE,
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
from tests.sse_decoder import ServerSentEvent

MODEL = "claude-sonnet-4-5"


def mcp(tool: str) -> str:
    return f"mcp__repository__{tool}"


@pytest.fixture(autouse=True)
def runtime_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh, writable HOME per test, and no credentials or settings of the machine."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "CLAUDE_")) or name == "CLAUDECODE":
            monkeypatch.delenv(name)


MakeProvider = Callable[..., ClaudeAgentSdkProvider]


@pytest.fixture
def make_provider(anthropic_api: tuple[FakeAnthropic, str]) -> MakeProvider:
    def make(**overrides: Any) -> ClaudeAgentSdkProvider:
        provider_kwargs = {
            key: overrides.pop(key) for key in ("cli_path", "max_turns") if key in overrides
        }
        settings: dict[str, Any] = {
            "api_key": ANTHROPIC_KEY,
            "base_url": anthropic_api[1],
            "model": MODEL,
            "allowed_models": (MODEL, "claude-haiku-4-5"),
            "structured_retries": 2,
            "provider_retries": 1,
            **overrides,
        }
        return ClaudeAgentSdkProvider(AIOptions(**settings), **provider_kwargs)

    return make


def _submit(*suggestions: dict[str, Any], text: Sequence[str] = ()) -> Turn:
    """A turn that submits ``suggestions``, one ``submit_suggestion`` call each."""
    calls = [ToolCall(mcp(SUBMIT_TOOL_NAME), item, pieces=7) for item in suggestions]
    return Turn(text=text, tool_calls=calls)


def _finish(arguments: dict[str, Any] = FINISH_INPUT, text: Sequence[str] = ()) -> Turn:
    return Turn(text=text, tool_calls=[ToolCall(mcp(FINISH_TOOL_NAME), arguments)])


def _deliver(text: Sequence[str] = ()) -> Turn:
    """One turn that submits the three ``SUGGESTIONS`` and calls ``finish``."""
    calls = [ToolCall(mcp(SUBMIT_TOOL_NAME), item, pieces=7) for item in SUGGESTIONS]
    return Turn(text=text, tool_calls=[*calls, ToolCall(mcp(FINISH_TOOL_NAME), FINISH_INPUT)])


# Never asked for: a runtime that stops when it should leaves it in the script.
NEVER = Turn(text=["This turn must never be requested."])


def _results(fake: FakeAnthropic, request: int) -> list[tuple[bool, str]]:
    """The tool results (is_error, text) the model got back in request number ``request``."""
    return [
        (bool(block.get("is_error")), tool_result_text(block))
        for block in fake.requests[request].tool_results()
    ]


def _of(events: list[ServerSentEvent], name: str) -> list[dict[str, Any]]:
    return [event.json() for event in events if event.event == name]


def _runtime_children() -> list[int]:
    """This process's children that are a Claude Code runtime (alive or not yet reaped)."""
    found: list[int] = []
    if not Path("/proc").is_dir():  # Linux only; elsewhere the check is vacuous
        return found
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"claude" in cmdline.split(b"\0", 1)[0]:
            found.append(int(entry.name))
    return found


# -- whole runs through the real runtime -------------------------------------------------------


async def test_full_run_streams_the_narrative_runs_our_tools_and_returns_suggestions(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    read_claude_md = ToolCall(mcp("Read"), {"path": "CLAUDE.md"})
    glob = ToolCall(mcp("Glob"), {"pattern": "src/**/*.tsx"})
    read_page = ToolCall(mcp("Read"), {"path": PAGE})
    grep = ToolCall(mcp("Grep"), {"pattern": "getCollections"})
    script = [
        Turn(
            text=["I'll read ", "CLAUDE.md first."],
            tool_calls=[read_claude_md],
            usage=Usage(input_tokens=1200, output_tokens=40, cache_creation_input_tokens=1000),
        ),
        Turn(
            text=["Now the pages."],
            tool_calls=[glob],
            usage=Usage(input_tokens=300, output_tokens=30, cache_read_input_tokens=1000),
        ),
        Turn(
            text=["Reading the page ", "and its data source."],
            tool_calls=[read_page, grep],
            usage=Usage(input_tokens=200, output_tokens=20, cache_read_input_tokens=1300),
        ),
        Turn(
            text=["Here are my suggestions."],
            tool_calls=[ToolCall(mcp(SUBMIT_TOOL_NAME), item, pieces=9) for item in SUGGESTIONS],
            usage=Usage(input_tokens=100, output_tokens=400, cache_read_input_tokens=1500),
        ),
        Turn(
            text=["Done."],
            tool_calls=[ToolCall(mcp(FINISH_TOOL_NAME), FINISH_INPUT)],
            usage=Usage(input_tokens=50, output_tokens=10, cache_read_input_tokens=1600),
            model="claude-sonnet-4-5-20250929",
        ),
        NEVER,
    ]

    result, sink = await play(make_provider(), fake_anthropic, script, plan_request(repo))

    # The narrative: every text_delta as it came, rounds apart; never the tools' JSON.
    assert sink.chunks == [
        "I'll read ",
        "CLAUDE.md first.",
        "\n\nNow the pages.",
        "\n\nReading the page ",
        "and its data source.",
        "\n\nHere are my suggestions.",
        "\n\nDone.",
    ]
    assert [tool for tool, _ in sink.activities] == ["Read", "Glob", "Read", "Grep"]
    assert "CLAUDE.md" in sink.activities[0][1]
    assert "src/**/*.tsx" in sink.activities[1][1]
    assert PAGE in sink.activities[2][1]
    assert "getCollections" in sink.activities[3][1]
    # Each suggestion went to the sink as it was submitted; drafting began with the first.
    assert [s.title for s in sink.suggestions] == [s["title"] for s in SUGGESTIONS]
    assert sink.phases == [ProgressPhase.DRAFTING]

    # The result: the suggestions sent, finish's context, what the API reported.
    assert result.suggestions == tuple(sink.suggestions)
    assert result.suggestions[0].implementation_considerations == [
        "Consideration 1.1",
        "Consideration 1.2",
    ]
    assert result.context == CONTEXT
    assert result.model == "claude-sonnet-4-5-20250929"
    assert result.retry_count == 0 and result.notice is None
    usage = result.token_usage
    assert (usage.input_tokens, usage.output_tokens) == (1850, 500)
    assert usage.cache_creation_input_tokens == 1000
    assert usage.cache_read_input_tokens == 5400

    # The run stopped at the accepted finish: no model turn after it.
    assert len(fake_anthropic.requests) == 5 and fake_anthropic.remaining == 1

    # What the runtime sent: our system prompt, our tools only, the key, the prompt.
    first = fake_anthropic.requests[0]
    assert first.body["model"] == MODEL and first.body["stream"] is True
    system = first.body["system"]
    system_text = system if isinstance(system, str) else "".join(b["text"] for b in system)
    assert system_prompt(None) in system_text
    assert ANTHROPIC_KEY in (
        first.headers.get("x-api-key", ""),
        first.headers.get("authorization", "")[7:],
    )
    ours = [mcp(name) for name in ("Glob", "Grep", "Read", SUBMIT_TOOL_NAME, FINISH_TOOL_NAME)]
    assert sorted(name for name in first.tool_names if name.startswith("mcp__")) == sorted(ours)
    for builtin in ("Read", "Glob", "Grep", "Bash", "Edit", "Write", "WebFetch", "Task"):
        assert builtin not in first.tool_names
    tools = {tool["name"]: tool for tool in first.body["tools"]}
    assert tools[mcp(SUBMIT_TOOL_NAME)]["input_schema"] == suggestion_schema()
    assert tools[mcp(FINISH_TOOL_NAME)]["input_schema"] == finish_schema()
    assert "Collections page" in json.dumps(first.body["messages"][0])

    # The results of OUR tools went back to the model.
    (claude_md,) = fake_anthropic.requests[1].tool_results()
    assert claude_md["tool_use_id"] == read_claude_md.id
    assert "Use server components" in tool_result_text(claude_md)
    (pages,) = fake_anthropic.requests[2].tool_results()
    assert PAGE in tool_result_text(pages)
    page, grep_result = fake_anthropic.requests[3].tool_results()
    assert PAGE_MARKER in tool_result_text(page)
    assert "src/lib/collections.ts" in tool_result_text(grep_result)
    accepted = _results(fake_anthropic, 4)
    assert [is_error for is_error, _ in accepted] == [False, False, False]
    assert accepted[0][1].startswith(
        "Suggestion 1 accepted and shown to the user, with 1 verified evidence item. "
        "Submit the next one (3 at least)."
    )
    assert accepted[2][1].startswith("Suggestion 3 accepted")
    assert f"or call {FINISH_TOOL_NAME}." in accepted[2][1]

    # Nothing of the repository configured the runtime, and no transcript was kept.
    assert not (repo / "HOOK_RAN").exists()
    assert not list((Path(os.environ["HOME"]) / ".claude").glob("projects/**/*.jsonl"))
    assert _runtime_children() == []


async def test_the_sandbox_holds_and_user_text_is_never_expanded_as_a_file_mention(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    escape = ToolCall(mcp("Read"), {"path": "../../../../../../etc/passwd"})
    secret = ToolCall(mcp("Read"), {"path": ".env"})
    script = [Turn(text=["Trying."], tool_calls=[escape, secret]), _deliver()]
    request = plan_request(repo, additional_context="See @.env and @/etc/passwd for details")

    result, _ = await play(make_provider(), fake_anthropic, script, request)

    assert len(result.suggestions) == 3
    sent = json.dumps([r.body for r in fake_anthropic.requests])
    assert ENV_SECRET not in sent and "root:x:0:0" not in sent
    assert "@.env" in json.dumps(fake_anthropic.requests[0].body["messages"][0])
    assert all(block.get("is_error") for block in fake_anthropic.requests[1].tool_results())


async def test_request_model_and_custom_agent_set_the_model_tools_and_prompt(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    request = plan_request(repo, model="claude-haiku-4-5", agent=READER_AGENT)

    result, _ = await play(make_provider(), fake_anthropic, [_deliver()], request)

    first = fake_anthropic.requests[0]
    assert first.body["model"] == "claude-haiku-4-5" and result.model == "claude-haiku-4-5"
    assert sorted(n for n in first.tool_names if n.startswith("mcp__")) == sorted(
        [mcp("Read"), mcp(SUBMIT_TOOL_NAME), mcp(FINISH_TOOL_NAME)]
    )
    system = json.dumps(first.body["system"])
    assert "You only read files. Never search." in system and "Careful reader" in system


# -- suggestions through the service: evidence verified, sent one by one --------------------


async def test_a_run_that_cites_correctly_sends_each_suggestion_as_it_comes(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    fake_anthropic.play(
        [
            Turn(text=["Reading the page."], tool_calls=[ToolCall(mcp("Read"), {"path": PAGE})]),
            _submit(SUGGESTIONS[0], text=["The grid first."]),
            _submit(SUGGESTIONS[1]),
            _submit(SUGGESTIONS[2]),
            _finish(),
            NEVER,
        ]
    )

    events = await job_events(make_provider(), plan_request(repo))

    names = [event.event for event in events]
    sent = _of(events, "suggestion")
    # Each suggestion as the model submitted it (every item verified), in order, then complete.
    assert [item["index"] for item in sent] == [0, 1, 2]
    assert [item["suggestion"] for item in sent] == SUGGESTIONS
    assert [name for name in names if name in ("suggestion", "complete", "error")] == [
        "suggestion",
        "suggestion",
        "suggestion",
        "complete",
    ]
    assert names[-1] == "complete"
    complete = events[-1].json()
    assert complete["suggestions"] == [item["suggestion"] for item in sent]
    assert complete["evidenceStats"] == {"cited": 3, "verified": 3, "dropped": 0}
    assert complete["retryCount"] == 0
    assert complete["context"] == CONTEXT
    assert complete["provider"] == "claude-agent-sdk" and "notice" not in complete

    # Progress: drafting begins before the first suggestion leaves, and only moves forward.
    progress = [(i, event.json()) for i, event in enumerate(events) if event.event == "progress"]
    phases = list(dict.fromkeys(data["phase"] for _, data in progress))
    assert phases == ["exploring", "drafting", "verifying"]
    drafting = next(i for i, data in progress if data["phase"] == "drafting")
    assert drafting < names.index("suggestion")
    assert [data["percent"] for _, data in progress][-1] == 100

    # The model heard of each acceptance; the runtime stopped at the accepted finish.
    assert [_results(fake_anthropic, n)[0][1][:22] for n in (2, 3, 4)] == [
        "Suggestion 1 accepted ",
        "Suggestion 2 accepted ",
        "Suggestion 3 accepted ",
    ]
    assert len(fake_anthropic.requests) == 5 and fake_anthropic.remaining == 1
    assert _runtime_children() == []


async def test_evidence_that_fails_goes_back_to_the_model_and_the_fix_is_sent(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    missing = "src/app/collections/CollectionGrid.tsx"
    grid = evidence(PAGE, GRID_LINE, GRID_LINE, GRID_QUOTE)
    fetch = evidence(LIB, 2, 2, FETCH_QUOTE)
    shifted = evidence(LIB, 1, 1, FETCH_QUOTE)  # the quote is on line 2
    past_end = evidence(PAGE, 40, 41, GRID_QUOTE)  # the page has 6 lines
    fake_anthropic.play(
        [
            _submit(suggestion_input(1, grid, evidence(missing, 1, 3, "export function"))),
            _submit(suggestion_input(1, grid)),  # the missing file's item removed
            _submit(suggestion_input(2, shifted, past_end)),
            _submit(suggestion_input(2, fetch, past_end)),  # one fixed, one still wrong
            _submit(SUGGESTIONS[2]),
            _finish(),
            NEVER,
        ]
    )

    events = await job_events(make_provider(), plan_request(repo))

    # The model was told what failed and why, each time as an error result.
    ((is_error, missing_file),) = _results(fake_anthropic, 1)
    assert is_error
    assert missing_file.startswith(
        'Suggestion "Suggestion 1 for the collections page": 1 of 2 evidence items could not '
        "be verified against the repository:\n"
        f"- evidence 2 ({missing}, lines 1-3): no such file: {missing}\n"
        "Submit the suggestion again with each of these items fixed or removed"
    )
    ((is_error, accepted),) = _results(fake_anthropic, 2)
    assert not is_error and accepted.startswith("Suggestion 1 accepted")
    ((is_error, wrong_lines),) = _results(fake_anthropic, 3)
    assert is_error
    assert wrong_lines.startswith(
        'Suggestion "Suggestion 2 for the collections page": 2 of 2 evidence items could not '
        "be verified against the repository, so it has no verified evidence and cannot be "
        "shown:\n"
        f"- evidence 1 ({LIB}, line 1): the quote does not occur in line 1 of {LIB} (it occurs "
        "at line 2); the lines read:\n  export async function getCollections() {\n"
        f"- evidence 2 ({PAGE}, lines 40-41): {PAGE} has 6 lines; lines 40-41 do not exist. "
        "The quote occurs at line 5.\n"
    )
    ((is_error, kept_one),) = _results(fake_anthropic, 4)
    assert not is_error
    assert kept_one.startswith(
        "Suggestion 2 accepted and shown to the user, with 1 verified evidence item. "
        "Evidence items 2 could not be verified and were dropped."
    )

    # Only what the repository bears out was sent: the fixes, with their verified items.
    sent = _of(events, "suggestion")
    assert [item["index"] for item in sent] == [0, 1, 2]
    assert [item["suggestion"]["evidence"] for item in sent] == [
        [grid],
        [fetch],
        SUGGESTIONS[2]["evidence"],
    ]
    complete = events[-1].json()
    assert events[-1].event == "complete"
    assert complete["suggestions"] == [item["suggestion"] for item in sent]
    # cited: 2 + 0 (the verified item kept) + 2 + 2 + 1; dropped: the range still wrong.
    assert complete["evidenceStats"] == {"cited": 7, "verified": 3, "dropped": 1}
    assert complete["retryCount"] == 2  # two suggestions sent back once each
    assert len(fake_anthropic.requests) == 6 and fake_anthropic.remaining == 1


async def test_nothing_unverified_is_sent_and_a_model_that_never_cites_fails(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    made_up = evidence(PAGE, GRID_LINE, GRID_LINE, "return <CollectionList paged />")
    uncited = {**suggestion_input(1), "evidence": []}
    fake_anthropic.play(
        [
            _submit(uncited),  # invalid input: a structured retry (1 of 2)
            _submit(suggestion_input(1, made_up)),  # sent back to be fixed
            _submit(suggestion_input(1, made_up)),  # still nothing verified: dropped (2 of 2)
            _submit(suggestion_input(2, made_up)),  # sent back to be fixed
            _submit(suggestion_input(2, made_up)),  # dropped: the retries have run out
            NEVER,
        ]
    )

    events = await job_events(make_provider(), plan_request(repo))

    ((is_error, no_evidence),) = _results(fake_anthropic, 1)
    assert (
        is_error
        and (
            f"The {SUBMIT_TOOL_NAME} input was not valid (evidence: List should have at least 1 "
            "item after validation, not 0)"
        )
        in no_evidence
    )
    ((is_error, made_up_quote),) = _results(fake_anthropic, 2)
    assert is_error and "the quote does not occur in line 5 of" in made_up_quote
    ((is_error, dropped),) = _results(fake_anthropic, 3)
    assert is_error and dropped.startswith(
        'Suggestion "Suggestion 1 for the collections page" was dropped: none of its '
        "evidence could be verified, so the user will not see it."
    )
    # The run failed without a suggestion event, and stopped without another model turn.
    assert [event.event for event in events if event.event in ("suggestion", "complete")] == []
    assert events[-1].event == "error"
    error = events[-1].json()
    assert error["code"] == "PROVIDER_ERROR"
    assert error["message"].startswith(
        "The model did not return valid suggestions after 2 retries; try again. (Last problem: "
        'no evidence of "Suggestion 2 for the collections page" could be verified)'
    )
    assert ANTHROPIC_KEY not in json.dumps([event.data for event in events])
    assert len(fake_anthropic.requests) == 5 and fake_anthropic.remaining == 1
    assert _runtime_children() == []


# -- invalid inputs and early ends -------------------------------------------------------------


async def test_invalid_inputs_are_refused_with_our_feedback_and_count_as_retries(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    # The SDK's MCP server checks inputs against the schema before any handler runs (the
    # runtime does not): our hook refuses them first, so that they count and say all that
    # is wrong.
    calls = [ToolCall(mcp(SUBMIT_TOOL_NAME), item, pieces=7) for item in SUGGESTIONS]
    script = [
        _submit(INVALID_SUGGESTION, text=["Submitting."]),
        Turn(text=["Fixed it."], tool_calls=[*calls, ToolCall(mcp(FINISH_TOOL_NAME), {})]),
        _finish(),
        NEVER,
    ]

    result, sink = await play(make_provider(), fake_anthropic, script, plan_request(repo))

    assert result.retry_count == 2
    assert len(result.suggestions) == 3 and len(sink.suggestions) == 3
    assert result.context == CONTEXT
    assert sink.narrative == "Submitting.\n\nFixed it."
    # parse_suggestion's / parse_finish's feedback went back to the model as error results.
    ((is_error, feedback),) = _results(fake_anthropic, 1)
    assert is_error
    assert (
        f"The {SUBMIT_TOOL_NAME} input was not valid (effort: Input should be 'small', 'medium' "
        f"or 'large'). Call {SUBMIT_TOOL_NAME} again with a corrected input."
    ) in feedback
    assert "Input validation error" not in feedback  # not the SDK's own check
    *accepted, (is_error, finish_feedback) = _results(fake_anthropic, 2)
    assert [error for error, _ in accepted] == [False, False, False]
    assert is_error
    assert f"The {FINISH_TOOL_NAME} input was not valid (context: Field required)" in (
        finish_feedback
    )
    assert len(fake_anthropic.requests) == 3 and fake_anthropic.remaining == 1


async def test_an_early_end_is_followed_up_and_finish_is_refused_once_below_three(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [
        Turn(text=["Here are some ideas in prose."]),
        _submit(SUGGESTIONS[0]),
        _finish(),
        _finish(),
        NEVER,
    ]

    result, sink = await play(make_provider(), fake_anthropic, script, plan_request(repo))

    assert result.retry_count == 1  # the prose; a refused finish is not a retry
    follow_up = json.dumps(fake_anthropic.requests[1].body["messages"][-1])
    assert f"without calling the {FINISH_TOOL_NAME} tool" in follow_up
    ((is_error, refused),) = _results(fake_anthropic, 3)
    assert is_error and refused.startswith(
        "Only 1 suggestion(s) were accepted; submit at least 3 if the code supports them. "
        f"Or call {FINISH_TOOL_NAME} again to end as it is."
    )
    assert [s.title for s in result.suggestions] == [SUGGESTIONS[0]["title"]]
    assert result.suggestions == tuple(sink.suggestions)
    assert result.context == CONTEXT
    assert result.notice is not None and "only 1 suggestion(s)" in result.notice
    assert len(fake_anthropic.requests) == 4 and fake_anthropic.remaining == 1


async def test_a_turn_that_ends_in_prose_after_three_suggestions_ends_the_run(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [_submit(*SUGGESTIONS), Turn(text=["That is all."]), NEVER]

    result, sink = await play(make_provider(), fake_anthropic, script, plan_request(repo))

    assert result.suggestions == tuple(sink.suggestions) and len(result.suggestions) == 3
    assert result.context == RAN_OUT  # finish never came: no context from the model
    assert result.retry_count == 0
    assert len(fake_anthropic.requests) == 2 and fake_anthropic.remaining == 1


async def test_retries_run_out_after_the_configured_count(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [_submit(INVALID_SUGGESTION), _submit(INVALID_SUGGESTION), NEVER]

    error, sink = await play_to_failure(
        make_provider(structured_retries=1), fake_anthropic, script, plan_request(repo)
    )

    assert "did not return valid suggestions after 1 retries" in str(error)
    assert "effort: Input should be" in str(error)
    assert sink.suggestions == []
    assert len(fake_anthropic.requests) == 2 and fake_anthropic.remaining == 1


async def test_a_model_that_never_submits_is_stopped_by_the_turn_limit(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    read = ToolCall(mcp("Read"), {"path": "README.md"})
    script = [Turn(text=["Reading."], tool_calls=[read]), Turn(text=["More."], tool_calls=[read])]

    error, _ = await play_to_failure(
        make_provider(max_turns=1), fake_anthropic, script, plan_request(repo)
    )

    assert "turns without submitting" in str(error)


# -- failures --------------------------------------------------------------------------------


async def test_a_refused_key_fails_at_once_with_an_actionable_message(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    started = time.monotonic()
    error, sink = await play_to_failure(
        make_provider(api_key="sk-ant-wrong-key-SECRET"),
        fake_anthropic,
        [HttpError(401, "authentication_error")] * 5,
        plan_request(repo),
    )

    assert time.monotonic() - started < 10  # the runtime alone would retry for minutes
    assert "ANTHROPIC_API_KEY" in str(error)
    assert "sk-ant-wrong-key-SECRET" not in str(error)
    assert sink.chunks == []
    assert _runtime_children() == []


async def test_an_unknown_model_is_named(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    error, _ = await play_to_failure(
        make_provider(),
        fake_anthropic,
        [HttpError(404, "not_found_error", "model: claude-nope")] * 3,
        plan_request(repo, model="claude-nope"),
    )

    assert "'claude-nope' is not available" in str(error)


async def test_overloaded_then_success_is_retried_by_the_runtime(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script: list[Step] = [HttpError(529, "overloaded_error"), _deliver(text=["Done."])]

    result, sink = await play(make_provider(), fake_anthropic, script, plan_request(repo))

    assert len(result.suggestions) == 3 and sink.narrative == "Done."
    assert len(fake_anthropic.requests) == 2


async def test_overloaded_past_the_retries_is_a_provider_error(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [HttpError(529, "overloaded_error")] * 2

    error, _ = await play_to_failure(
        make_provider(provider_retries=1), fake_anthropic, script, plan_request(repo)
    )

    assert "overloaded" in str(error)
    assert len(fake_anthropic.requests) == 2  # one try and provider_retries retries


async def test_a_response_that_breaks_off_after_text_is_not_retried_into_repeated_text(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    # (the pause lets the text reach the runtime before the cut: cut at once, the runtime can
    # drop the partial response unseen, and its retry is then safe and allowed)
    broken = Turn(text=["I'll start ", "by reading"], cut_after_text=True, delay_s=0.2)
    script = [broken, _deliver()]

    error, sink = await play_to_failure(make_provider(), fake_anthropic, script, plan_request(repo))

    assert str(error).startswith("The answer broke off mid-stream")
    assert sink.narrative == "I'll start by reading"
    assert len(fake_anthropic.requests) == 1


# -- cancellation ----------------------------------------------------------------------------


async def test_cancellation_stops_the_runtime_and_closes_the_request_at_once(
    fake_anthropic: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    fake_anthropic.play([Turn(text=["Let me think about this..."], stall_after_text=True)])
    sink = RecordingSink()
    task = asyncio.create_task(make_provider().run(plan_request(repo), sink))
    await asyncio.wait_for(sink.first_text.wait(), 30)
    assert len(_runtime_children()) == 1

    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert time.monotonic() - started < 2  # not the SDK's 5 s grace period
    assert await asyncio.to_thread(fake_anthropic.disconnected.wait, 5)
    assert _runtime_children() == []


# -- the SDK boundary: installation, and a runtime that misbehaves --------------------------


def _options(**overrides: Any) -> AIOptions:
    settings: dict[str, Any] = {
        "api_key": ANTHROPIC_KEY,
        "base_url": "http://127.0.0.1:9",
        "model": MODEL,
        "allowed_models": (MODEL, "claude-haiku-4-5"),
        **overrides,
    }
    return AIOptions(**settings)


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake-claude"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_without_the_sdk_the_service_refuses_to_start_and_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(claude_sdk, "_SDK_IMPORT_ERROR", ImportError("No module named x"))

    with pytest.raises(ConfigurationError, match=r"pip install 'feature-planner\[claude\]'"):
        ClaudeAgentSdkProvider(_options())


def test_without_the_runtime_the_service_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match="runtime was not found"):
        ClaudeAgentSdkProvider(_options(), cli_path=tmp_path / "missing")

    monkeypatch.setattr(claude_sdk, "_bundled_runtime", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigurationError, match="npm install -g @anthropic-ai/claude-code"):
        ClaudeAgentSdkProvider(_options())

    broken = _script(tmp_path, "exit 127")
    with pytest.raises(ConfigurationError, match="does not start"):
        ClaudeAgentSdkProvider(_options(), cli_path=broken)


def test_the_bundled_runtime_is_found_and_models_are_the_allowed_ones() -> None:
    provider = ClaudeAgentSdkProvider(_options())

    assert provider.name == "claude-agent-sdk"
    assert "_bundled" in provider.cli_path
    assert list(provider.models) == [MODEL, "claude-haiku-4-5"]


def test_the_runtime_environment_carries_key_base_url_and_limits() -> None:
    env = ClaudeAgentSdkProvider(_options(provider_retries=2)).runtime_env()
    assert env["ANTHROPIC_API_KEY"] == ANTHROPIC_KEY
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9"
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "2"

    # No key configured: the runtime's own login applies, and no empty key overrides it.
    bare = ClaudeAgentSdkProvider(_options(api_key=None, base_url=None)).runtime_env()
    assert "ANTHROPIC_API_KEY" not in bare and "ANTHROPIC_BASE_URL" not in bare


async def test_a_runtime_that_dies_is_a_provider_error(tmp_path: Path, repo: Path) -> None:
    crashing = _script(
        tmp_path,
        'if [ "$1" = "--version" ]; then echo "2.1.330 (Claude Code)"; exit 0; fi\n'
        f"echo 'fatal: {ANTHROPIC_KEY}' >&2\nexit 3",
    )
    provider = ClaudeAgentSdkProvider(_options(), cli_path=crashing)

    with pytest.raises(ProviderError) as caught:
        await provider.run(plan_request(repo), RecordingSink())

    assert "The Claude Code runtime stopped unexpectedly" in str(caught.value)
    assert ANTHROPIC_KEY not in str(caught.value)
