"""A follow-up through each AI provider, against the local fake model servers (the Claude
Agent SDK through its real runtime): the first request carries the parent's suggestions with
their evidence, the user's message and which suggestion it is about, and the text of the
files the parent read (through the sandbox, bounded); a model that reads nothing more still
completes, its evidence verified against the repository."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from feature_planner.agent.base import FollowUp, PlanRequest
from feature_planner.agent.follow_up import read_parent_files
from feature_planner.agent.planner import FINISH_TOOL_NAME, SUBMIT_TOOL_NAME, parse_suggestion
from feature_planner.agent.providers.anthropic import AnthropicProvider
from feature_planner.agent.providers.claude_sdk import ClaudeAgentSdkProvider
from feature_planner.agent.providers.openai import OpenAIProvider
from feature_planner.agent.providers.options import AIOptions
from tests.agent.anthropic_server import FakeAnthropic, ToolCall, Turn
from tests.agent.conftest import (
    ANTHROPIC_KEY,
    ENV_SECRET,
    FINISH_INPUT,
    GRID_QUOTE,
    LIB,
    PAGE,
    SUGGESTIONS,
    plan_request,
    write,
)
from tests.agent.openai_server import API_KEY, MODEL, Call, FakeOpenAI, Reply
from tests.agent.sinks import job_events
from tests.sse_decoder import ServerSentEvent

pytestmark = pytest.mark.timeout(60)

MESSAGE = "Split this into smaller steps, please"
PARENT_SUGGESTIONS = tuple(parse_suggestion(item).to_suggestion() for item in SUGGESTIONS)
# What the parent read: the page and its data source; a secret and a file since deleted,
# which the sandbox keeps out of the follow-up's message.
FILES_READ = (PAGE, LIB, ".env", "src/gone.ts", PAGE)


def follow_up_request(repo: Path) -> PlanRequest:
    follow_up = FollowUp(MESSAGE, 1, PARENT_SUGGESTIONS, FILES_READ)
    return plan_request(repo, follow_up=follow_up)


def texts(node: Any) -> str:
    """Every text a request's messages carry, whatever form the client used."""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return "\n".join(texts(item) for item in node)
    if isinstance(node, dict):
        if node.get("type") == "text" or "text" in node:
            return str(node.get("text", ""))
        return texts(node.get("content", ""))
    return ""


def assert_carries_the_parent(first_message: str, repo: Path) -> None:
    assert MESSAGE in first_message
    assert f'suggestion 2 ("{SUGGESTIONS[1]["title"]}")' in first_message
    for item in SUGGESTIONS:
        assert item["title"] in first_message
        assert item["description"] in first_message
        cited = item["evidence"][0]
        assert f"{cited['path']}:{cited['startLine']}-{cited['endLine']}" in first_message
    for path in (PAGE, LIB):  # the files' text, numbered as the Read tool numbers it
        for number, line in enumerate((repo / path).read_text().splitlines(), start=1):
            assert f"{number:>6}\t{line}" in first_message
    assert first_message.count(f"--- {PAGE}\n") == 1  # read twice, shown once
    assert ENV_SECRET not in first_message
    assert "src/gone.ts" not in first_message


def assert_completed_without_reading(events: list[ServerSentEvent]) -> None:
    names = [event.event for event in events]
    assert names[-1] == "complete", events[-1].data
    assert "activity" not in names
    complete = events[-1].json()
    assert len(complete["suggestions"]) == 3
    stats = complete["evidenceStats"]
    assert stats["verified"] == stats["cited"] == 3 and stats["dropped"] == 0


# -- Anthropic's Messages API ----------------------------------------------------------------


@pytest.fixture
async def anthropic_provider(
    anthropic_api: tuple[FakeAnthropic, str],
) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider(
        AIOptions(
            api_key=ANTHROPIC_KEY,
            base_url=anthropic_api[1],
            model="claude-sonnet-4-6",
            allowed_models=(),
        ),
        retry_base_delay_s=0.01,
        retry_max_delay_s=0.05,
    )
    yield provider
    await provider.aclose()


def _turns(prefix: str = "") -> list[Turn]:
    calls = [ToolCall(prefix + SUBMIT_TOOL_NAME, item, pieces=5) for item in SUGGESTIONS]
    return [
        Turn(text=["From the earlier run's files: "], tool_calls=calls),
        Turn(tool_calls=[ToolCall(prefix + FINISH_TOOL_NAME, FINISH_INPUT)]),
    ]


async def test_anthropic_follow_up_starts_from_the_parent(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider, repo: Path
) -> None:
    fake_anthropic.play(_turns())
    events = await job_events(anthropic_provider, follow_up_request(repo))
    assert_completed_without_reading(events)
    first = fake_anthropic.requests[0].body["messages"][0]
    assert_carries_the_parent(texts(first), repo)


async def test_a_first_run_carries_no_follow_up(
    fake_anthropic: FakeAnthropic, anthropic_provider: AnthropicProvider, repo: Path
) -> None:
    fake_anthropic.play(_turns())
    events = await job_events(anthropic_provider, plan_request(repo))
    assert events[-1].event == "complete"
    first = texts(fake_anthropic.requests[0].body["messages"][0])
    assert "follows up" not in first and MESSAGE not in first


# -- an OpenAI-compatible Chat Completions API ----------------------------------------------


@pytest.fixture
async def openai_provider(openai_api: tuple[FakeOpenAI, str]) -> AsyncIterator[OpenAIProvider]:
    options = AIOptions(api_key=API_KEY, base_url=openai_api[1], model=MODEL, allowed_models=())
    provider = OpenAIProvider(options, retry_base_delay=0.001)
    yield provider
    await provider.aclose()


async def test_openai_follow_up_starts_from_the_parent(
    fake_openai: FakeOpenAI, openai_provider: OpenAIProvider, repo: Path
) -> None:
    submit = [Call(SUBMIT_TOOL_NAME, item) for item in SUGGESTIONS]
    fake_openai.add(
        Reply(
            text=["From the files given: "], calls=[*submit, Call(FINISH_TOOL_NAME, FINISH_INPUT)]
        )
    )
    events = await job_events(openai_provider, follow_up_request(repo))
    assert_completed_without_reading(events)
    messages = fake_openai.requests[0]["messages"]
    user = [message for message in messages if message["role"] == "user"]
    assert_carries_the_parent(texts(user[0]["content"]), repo)


# -- the Claude Agent SDK, through its real runtime ------------------------------------------


@pytest.fixture
def runtime_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh HOME, and no credentials or settings of the machine, for the runtime."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "CLAUDE_")) or name == "CLAUDECODE":
            monkeypatch.delenv(name)
    yield


async def test_claude_sdk_follow_up_starts_from_the_parent(
    runtime_home: None,
    fake_anthropic: FakeAnthropic,
    anthropic_api: tuple[FakeAnthropic, str],
    repo: Path,
) -> None:
    provider = ClaudeAgentSdkProvider(
        AIOptions(
            api_key=ANTHROPIC_KEY,
            base_url=anthropic_api[1],
            model="claude-sonnet-4-5",
            allowed_models=(),
        )
    )
    fake_anthropic.play(_turns("mcp__repository__"))
    events = await job_events(provider, follow_up_request(repo))
    await provider.aclose()
    assert_completed_without_reading(events)
    first = fake_anthropic.requests[0].body["messages"]
    assert_carries_the_parent(texts(first), repo)


# -- the parent's files, bounded -------------------------------------------------------------


def test_the_parents_files_are_bounded_and_cut_at_a_line(repo: Path) -> None:
    line = "const row = 'x'.repeat(40) // padding to fill the budget\n"
    write(repo / "src/big.ts", line * 2000)  # about 110 KB
    files = read_parent_files(repo, ["src/big.ts", PAGE])
    assert [file.path for file in files] == ["src/big.ts"]  # the budget was spent on it
    (big,) = files
    assert big.truncated
    raw = "".join(text.split("\t", 1)[1] for text in big.text.splitlines(keepends=True))
    assert len(raw.encode()) <= 60_000
    assert raw.endswith(line)  # whole lines only
    small = read_parent_files(repo, [PAGE, "src/big.ts"], budget=2_000)
    assert [file.path for file in small] == [PAGE, "src/big.ts"]
    assert not small[0].truncated and GRID_QUOTE in small[0].text
    assert sum(len(file.text) for file in small) < 2_000 + 8 * 60  # numbering aside


def test_a_path_the_sandbox_refuses_is_never_read(repo: Path) -> None:
    outside = repo.parent / "outside.txt"
    outside.write_text("outside the repository\n")
    files = read_parent_files(repo, ["../outside.txt", ".env", "src", str(outside)])
    assert files == []
    assert json.dumps([file.text for file in files]).count("outside") == 0
