"""The per-run token ceiling (``FEATURE_PLANNER_MAX_RUN_TOKENS``) through each provider's real
SDK against the local fake model servers: the first usage report past it stops the run with
``BUDGET_EXCEEDED`` and closes the upstream request; a run under it completes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from feature_planner.agent.planner import FINISH_TOOL_NAME, SUBMIT_TOOL_NAME
from feature_planner.agent.providers.anthropic import AnthropicProvider
from feature_planner.agent.providers.claude_sdk import ClaudeAgentSdkProvider
from feature_planner.agent.providers.conversation import UsageTotals
from feature_planner.agent.providers.openai import OpenAIProvider
from feature_planner.agent.providers.options import AIOptions
from feature_planner.errors import BudgetExceededError
from tests.agent.anthropic_server import FakeAnthropic, ToolCall, Turn, Usage
from tests.agent.conftest import ANTHROPIC_KEY, FINISH_INPUT, PAGE, SUGGESTIONS, plan_request
from tests.agent.openai_server import API_KEY, MODEL, Call, FakeOpenAI, Reply
from tests.agent.sinks import RecordingSink, job_events

CLAUDE = "claude-sonnet-4-5"
READ_PAGE = ToolCall("Read", {"path": PAGE})
RUN_TIMEOUT_S = 60  # a run the ceiling failed to stop would wait on a stalled stream


@pytest.fixture(autouse=True)
def runtime_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """For the Claude Code runtime: a fresh HOME, no credentials or settings of the machine."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "CLAUDE_")) or name == "CLAUDECODE":
            monkeypatch.delenv(name)


def _anthropic_options(base_url: str, ceiling: int | None) -> AIOptions:
    return AIOptions(
        api_key=ANTHROPIC_KEY,
        base_url=base_url,
        model=CLAUDE,
        allowed_models=(CLAUDE,),
        provider_retries=0,
        max_run_tokens=ceiling,
    )


@pytest.fixture
async def anthropic_provider(
    anthropic_api: tuple[FakeAnthropic, str],
) -> AsyncIterator[Callable[[int | None], AnthropicProvider]]:
    made: list[AnthropicProvider] = []

    def make(ceiling: int | None) -> AnthropicProvider:
        made.append(AnthropicProvider(_anthropic_options(anthropic_api[1], ceiling)))
        return made[-1]

    yield make
    for provider in made:
        await provider.aclose()


def _deliver(tool: Callable[[str], str] = str) -> Turn:
    calls = [ToolCall(tool(SUBMIT_TOOL_NAME), item, pieces=7) for item in SUGGESTIONS]
    return Turn(tool_calls=[*calls, ToolCall(tool(FINISH_TOOL_NAME), FINISH_INPUT)])


# -- the totals ---------------------------------------------------------------------------


def test_a_report_counts_only_what_is_new_and_the_first_past_the_ceiling_raises() -> None:
    usage = UsageTotals(ceiling=300)
    usage.start_response()
    usage.report(input_tokens=100, output_tokens=1, cache_read=50)
    usage.report(output_tokens=40)  # cumulative for the response: 39 more
    usage.report(output_tokens=40)  # repeated: nothing more
    assert (usage.input_tokens, usage.output_tokens, usage.tokens) == (100, 40, 190)
    usage.start_response()
    usage.report(input_tokens=100, output_tokens=1)  # 291: not past it
    with pytest.raises(BudgetExceededError) as raised:
        usage.report(output_tokens=11)  # 301
    assert (raised.value.tokens, raised.value.ceiling) == (301, 300)
    assert "FEATURE_PLANNER_MAX_RUN_TOKENS" in str(raised.value) and "300" in str(raised.value)


def test_cached_tokens_inside_the_input_are_not_counted_twice() -> None:
    usage = UsageTotals(cache_in_input=True)
    usage.report(input_tokens=100, output_tokens=10, cache_read=80)
    assert usage.tokens == 110


# -- anthropic -----------------------------------------------------------------------------


async def test_anthropic_stops_at_the_first_report_past_the_ceiling_and_closes_the_stream(
    fake_anthropic: FakeAnthropic,
    anthropic_provider: Callable[[int | None], AnthropicProvider],
    repo: Path,
) -> None:
    # Round 1 reports 100 in + 20 out; round 2's message_start (100 more in) passes 150.
    fake_anthropic.play(
        [
            Turn(text=["Reading."], tool_calls=[READ_PAGE]),
            Turn(text=["Never ", "shown"], stall_after_text=True, delay_s=0.05),
        ]
    )
    sink = RecordingSink()
    async with asyncio.timeout(RUN_TIMEOUT_S):
        with pytest.raises(BudgetExceededError) as raised:
            await anthropic_provider(150).run(plan_request(repo), sink)
    assert raised.value.tokens == 221  # 120, then 100 in + 1 out at message_start
    assert await asyncio.to_thread(fake_anthropic.disconnected.wait, 5)
    assert "Never" not in sink.narrative  # stopped before the response's text
    assert len(fake_anthropic.requests) == 2


async def test_anthropic_run_ends_with_budget_exceeded_and_one_under_it_completes(
    fake_anthropic: FakeAnthropic,
    anthropic_provider: Callable[[int | None], AnthropicProvider],
    repo: Path,
) -> None:
    fake_anthropic.play([Turn(text=["Hm"], stall_after_text=True)])
    async with asyncio.timeout(RUN_TIMEOUT_S):
        events = await job_events(anthropic_provider(50), plan_request(repo))
    error = events[-1]
    assert error.event == "error" and error.json()["code"] == "BUDGET_EXCEEDED"
    assert "50" in error.json()["message"]
    assert await asyncio.to_thread(fake_anthropic.disconnected.wait, 5)

    fake_anthropic.play([Turn(tool_calls=[READ_PAGE]), _deliver()])
    async with asyncio.timeout(RUN_TIMEOUT_S):
        result = await anthropic_provider(240).run(plan_request(repo), RecordingSink())
    assert result.tokens == 240  # exactly the ceiling: not past it
    assert len(result.suggestions) == 3 and result.token_usage.cost_usd is None


# -- openai -------------------------------------------------------------------------------


@pytest.fixture
async def openai_provider(
    openai_api: tuple[FakeOpenAI, str],
) -> AsyncIterator[Callable[[int | None], OpenAIProvider]]:
    made: list[OpenAIProvider] = []

    def make(ceiling: int | None) -> OpenAIProvider:
        options = AIOptions(
            api_key=API_KEY,
            base_url=openai_api[1],
            model=MODEL,
            allowed_models=(MODEL,),
            provider_retries=0,
            max_run_tokens=ceiling,
        )
        made.append(OpenAIProvider(options))
        return made[-1]

    yield make
    for provider in made:
        await provider.aclose()


def _openai_deliver() -> Reply:
    calls = [Call(SUBMIT_TOOL_NAME, item) for item in SUGGESTIONS]
    return Reply(calls=[*calls, Call(FINISH_TOOL_NAME, FINISH_INPUT)])


async def test_openai_stops_mid_stream_where_the_server_reports_usage_on_every_chunk(
    fake_openai: FakeOpenAI,
    openai_provider: Callable[[int | None], OpenAIProvider],
    repo: Path,
) -> None:
    text = [f"word{n} " for n in range(10)]
    # 100 in, then 2 more out per chunk: the chunk that reports 106 passes 105.
    fake_openai.add(Reply(text=text, usage=(100, 24), usage_every_chunk=True, hang_after_text=True))
    sink = RecordingSink()
    async with asyncio.timeout(RUN_TIMEOUT_S):
        with pytest.raises(BudgetExceededError) as raised:
            await openai_provider(105).run(plan_request(repo), sink)
    assert raised.value.tokens == 106
    assert await asyncio.to_thread(fake_openai.disconnected.wait, 5)
    assert sink.narrative == "word0 "  # the chunk that passed it is not shown
    assert fake_openai.problems == []


async def test_openai_counts_across_rounds_and_a_run_under_the_ceiling_completes(
    fake_openai: FakeOpenAI,
    openai_provider: Callable[[int | None], OpenAIProvider],
    repo: Path,
) -> None:
    read = Reply(text=["Reading."], calls=[Call("Read", {"path": PAGE})])
    fake_openai.add(read, read, _openai_deliver())
    async with asyncio.timeout(RUN_TIMEOUT_S):
        events = await job_events(openai_provider(239), plan_request(repo))
    assert events[-1].event == "error" and events[-1].json()["code"] == "BUDGET_EXCEEDED"
    assert len(fake_openai.requests) == 2  # stopped at round 2's usage: no third request

    fake_openai.reset([read, _openai_deliver()])
    async with asyncio.timeout(RUN_TIMEOUT_S):
        events = await job_events(openai_provider(240), plan_request(repo))
    complete = events[-1].json()
    assert events[-1].event == "complete"
    assert complete["tokenUsage"] == {"inputTokens": 200, "outputTokens": 40}  # no costUsd


# -- claude-agent-sdk (the real runtime against the Anthropic fake) -------------------------


def _claude(base_url: str, ceiling: int | None) -> ClaudeAgentSdkProvider:
    options = _anthropic_options(base_url, ceiling)
    return ClaudeAgentSdkProvider(options)


def _mcp(tool: str) -> str:
    return f"mcp__repository__{tool}"


async def test_claude_sdk_stops_the_runtime_at_the_first_report_past_the_ceiling(
    fake_anthropic: FakeAnthropic, anthropic_api: tuple[FakeAnthropic, str], repo: Path
) -> None:
    fake_anthropic.play(
        [
            Turn(text=["Reading."], tool_calls=[ToolCall(_mcp("Read"), {"path": PAGE})]),
            Turn(text=["Never ", "shown"], stall_after_text=True, delay_s=0.05),
        ]
    )
    sink = RecordingSink()
    async with asyncio.timeout(RUN_TIMEOUT_S):
        with pytest.raises(BudgetExceededError) as raised:
            await _claude(anthropic_api[1], 150).run(plan_request(repo), sink)
    assert raised.value.tokens == 221
    assert await asyncio.to_thread(fake_anthropic.disconnected.wait, 5)
    assert "Never" not in sink.narrative


async def test_claude_sdk_under_the_ceiling_completes_with_the_runtimes_cost(
    fake_anthropic: FakeAnthropic, anthropic_api: tuple[FakeAnthropic, str], repo: Path
) -> None:
    fake_anthropic.play(
        [_deliver(_mcp), Turn(text=["Done."], usage=Usage(input_tokens=10, output_tokens=5))]
    )
    async with asyncio.timeout(RUN_TIMEOUT_S):
        events = await job_events(_claude(anthropic_api[1], 1000), plan_request(repo))
    assert events[-1].event == "complete", events[-1].data
    usage: dict[str, Any] = events[-1].json()["tokenUsage"]
    assert usage["inputTokens"] >= 100 and usage["outputTokens"] >= 20
    # What the runtime's ResultMessage reported (total_cost_usd), never a price of ours.
    assert isinstance(usage["costUsd"], float) and usage["costUsd"] > 0
