"""The ``anthropic`` provider, through the real SDK, against a local fake of the Messages API."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from feature_planner.agent.base import PlanRequest, PlanResult
from feature_planner.agent.planner import SUBMIT_TOOL_NAME, plan_schema, system_prompt
from feature_planner.agent.profile import AgentProfile
from feature_planner.agent.providers.anthropic import KEY_REFUSED, AnthropicProvider
from feature_planner.agent.providers.options import AIOptions
from feature_planner.errors import ProviderError
from feature_planner.models import FeatureType, PriorityLevel
from feature_planner.serving import BackgroundServer
from tests.agent.anthropic_server import (
    FakeAnthropic,
    HttpError,
    Step,
    ToolCall,
    Turn,
    Usage,
    tool_result_text,
)
from tests.agent.sinks import RecordingSink

KEY = "sk-ant-test-0123456789-SECRET"
MODEL = "claude-sonnet-4-6"
PAGE = "src/app/collections/page.tsx"
PAGE_MARKER = "export default async function CollectionsPage()"

VALID_PLAN: dict[str, Any] = {
    "suggestions": [
        {
            "title": f"Suggestion {n} for the collections page",
            "rationale": f"Rationale {n}, grounded in {PAGE}",
            "description": f"Description {n}: extend CollectionGrid in {PAGE}.",
            "implementationConsiderations": [f"Consideration {n}.1", f"Consideration {n}.2"],
        }
        for n in (1, 2, 3)
    ],
    "context": f"Read CLAUDE.md and {PAGE}; getCollections lives in src/lib/collections.ts.",
}
INVALID_PLAN: dict[str, Any] = {"suggestions": VALID_PLAN["suggestions"][:1], "context": "x"}

MakeProvider = Callable[..., AnthropicProvider]


@pytest.fixture(scope="module")
def fake_server() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic(api_key=KEY)
    with BackgroundServer(fake.app) as server:
        yield fake, server.url


@pytest.fixture
def fake(fake_server: tuple[FakeAnthropic, str]) -> FakeAnthropic:
    fake_server[0].play([])
    return fake_server[0]


@pytest.fixture
async def make_provider(
    fake_server: tuple[FakeAnthropic, str],
) -> AsyncIterator[Callable[..., AnthropicProvider]]:
    """Providers pointed at the fake, with tiny backoff delays; closed after the test."""
    created: list[AnthropicProvider] = []

    def make(*, max_tool_rounds: int = 25, **overrides: Any) -> AnthropicProvider:
        settings: dict[str, Any] = {
            "api_key": KEY,
            "base_url": fake_server[1],
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


def _write(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    _write(root / "CLAUDE.md", "# CLAUDE.md\n\nUse server components for data fetching.\n")
    _write(root / "README.md", "# Acme Shop\n\nA storefront built with Next.js.\n")
    _write(
        root / PAGE,
        "import { getCollections } from '@/lib/collections'\n\n"
        f"{PAGE_MARKER} {{\n"
        "  const collections = await getCollections()\n"
        "  return <CollectionGrid items={collections} />\n}\n",
    )
    _write(
        root / "src/lib/collections.ts",
        "export async function getCollections() {\n  return fetch('/api/collections')\n}\n",
    )
    _write(root / "src/app/cart/page.tsx", "export default function CartPage() { return null }\n")
    _write(root / ".env", "STRIPE_KEY=sk_live_ENVSECRET\n")
    return root


def _request(repo: Path, **overrides: Any) -> PlanRequest:
    fields: dict[str, Any] = {
        "page_or_component": "Collections page",
        "feature_type": FeatureType.ENHANCEMENT,
        "priority_level": PriorityLevel.HIGH,
        "repository": repo,
    }
    fields.update(overrides)
    return PlanRequest(**fields)


def _submit(plan: dict[str, Any] = VALID_PLAN, text: Sequence[str] = ()) -> Turn:
    return Turn(text=text, tool_calls=[ToolCall(SUBMIT_TOOL_NAME, plan, pieces=7)])


async def _run(
    provider: AnthropicProvider, fake: FakeAnthropic, script: Sequence[Step], request: PlanRequest
) -> tuple[PlanResult, RecordingSink]:
    fake.play(script)
    sink = RecordingSink()
    result = await provider.run(request, sink)
    return result, sink


async def _fail(
    provider: AnthropicProvider, fake: FakeAnthropic, script: Sequence[Step], request: PlanRequest
) -> tuple[ProviderError, RecordingSink]:
    fake.play(script)
    sink = RecordingSink()
    with pytest.raises(ProviderError) as caught:
        await provider.run(request, sink)
    message = str(caught.value)
    assert KEY not in message and "Traceback" not in message
    return caught.value, sink


# -- a whole run ------------------------------------------------------------------------------


async def test_full_run_streams_the_narrative_runs_tools_and_returns_suggestions(
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path
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
            tool_calls=[ToolCall(SUBMIT_TOOL_NAME, VALID_PLAN, pieces=9)],
            usage=Usage(input_tokens=100, output_tokens=400, cache_read_input_tokens=1500),
            model="claude-sonnet-4-6-20260115",
        ),
    ]

    result, sink = await _run(make_provider(), fake, script, _request(repo))

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

    # The structured result, and what the API reported.
    assert [s.title for s in result.suggestions] == [s["title"] for s in VALID_PLAN["suggestions"]]
    assert result.suggestions[0].implementation_considerations == [
        "Consideration 1.1",
        "Consideration 1.2",
    ]
    assert result.context == VALID_PLAN["context"]
    assert result.model == "claude-sonnet-4-6-20260115"
    assert result.retry_count == 0
    usage = result.token_usage
    assert (usage.input_tokens, usage.output_tokens) == (1800, 490)
    assert usage.cache_creation_input_tokens == 1000
    assert usage.cache_read_input_tokens == 3800

    # What was sent: the prompt, the tools, and the real results of the tools.
    assert len(fake.requests) == 4
    first = fake.requests[0].body
    assert first["model"] == MODEL and first["stream"] is True
    assert first["system"] == system_prompt(None)
    assert "Collections page" in first["messages"][0]["content"]
    assert "temperature" not in first
    assert fake.requests[0].tool_names == ["Glob", "Grep", "Read", SUBMIT_TOOL_NAME]
    assert first["tools"][-1]["input_schema"] == plan_schema()
    assert first["tool_choice"] == {"type": "auto"}

    (glob_result,) = fake.requests[1].tool_results()
    assert glob_result["tool_use_id"] == glob.id and not glob_result.get("is_error")
    assert PAGE in tool_result_text(glob_result)
    assert "src/app/cart/page.tsx" in tool_result_text(glob_result)
    (read_result,) = fake.requests[2].tool_results()
    assert read_result["tool_use_id"] == read.id
    assert PAGE_MARKER in tool_result_text(read_result)
    (grep_result,) = fake.requests[3].tool_results()
    assert "src/lib/collections.ts" in tool_result_text(grep_result)

    # The assistant turns went back as they came: text, and the tool calls' parsed inputs.
    history = fake.requests[3].body["messages"]
    assert [message["role"] for message in history] == ["user", "assistant"] * 3 + ["user"]
    assert history[1]["content"] == [
        {"type": "text", "text": "I'll look for the collections page."},
        {"type": "tool_use", "id": glob.id, "name": "Glob", "input": glob.input},
    ]


async def test_request_model_is_used_and_the_key_is_sent(
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    result, _ = await _run(
        make_provider(), fake, [_submit()], _request(repo, model="claude-haiku-4-5")
    )

    assert fake.requests[0].body["model"] == "claude-haiku-4-5"
    assert result.model == "claude-haiku-4-5"
    headers = fake.requests[0].headers
    assert KEY in (headers.get("x-api-key", ""), headers.get("authorization", "")[7:])
    assert "anthropic-version" in headers


async def test_custom_agent_limits_the_tools_and_sets_the_system_prompt(
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    agent = AgentProfile(
        name="Reader",
        role="Careful reader",
        focus="Accessibility",
        system_prompt="You only read files. Never search.",
        temperature=0.2,
        tools=["Read"],
    )
    glob = ToolCall("Glob", {"pattern": "**/*"})
    script = [Turn(text=["Searching anyway."], tool_calls=[glob]), _submit()]

    result, sink = await _run(make_provider(), fake, script, _request(repo, agent=agent))

    assert fake.requests[0].tool_names == ["Read", SUBMIT_TOOL_NAME]
    assert fake.requests[0].body["system"] == system_prompt(agent)
    assert "You only read files." in fake.requests[0].body["system"]
    (refused,) = fake.requests[1].tool_results()
    assert refused["is_error"] is True and "no tool named Glob" in tool_result_text(refused)
    assert sink.activities == []
    assert len(result.suggestions) == 3


async def test_a_refused_tool_call_goes_back_as_an_error_result(
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    secret = ToolCall("Read", {"path": ".env"})
    script = [Turn(tool_calls=[secret]), _submit()]

    _, sink = await _run(make_provider(), fake, script, _request(repo))

    assert sink.activities == [("Read", ".env")]
    (refused,) = fake.requests[1].tool_results()
    assert refused["tool_use_id"] == secret.id and refused["is_error"] is True
    assert "ENVSECRET" not in tool_result_text(refused)


# -- the structured result --------------------------------------------------------------------


async def test_an_invalid_result_is_fed_back_and_the_retry_counted(
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [_submit(INVALID_PLAN, text=["Done."]), _submit(text=["Fixed."])]

    result, sink = await _run(make_provider(), fake, script, _request(repo))

    assert result.retry_count == 1
    assert len(result.suggestions) == 3
    assert sink.narrative == "Done.\n\nFixed."
    (feedback,) = fake.requests[1].tool_results()
    assert feedback["is_error"] is True
    assert "suggestions" in tool_result_text(feedback)
    assert f"Call {SUBMIT_TOOL_NAME} again" in tool_result_text(feedback)


async def test_an_invalid_result_every_time_ends_with_a_provider_error(
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [_submit(INVALID_PLAN)] * 3

    error, _ = await _fail(make_provider(structured_retries=2), fake, script, _request(repo))

    assert "did not return valid suggestions after 2 retries" in str(error)
    assert len(fake.requests) == 3


async def test_a_turn_without_the_result_is_asked_again_for_it(
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [Turn(text=["I think the page needs filters."]), _submit()]

    result, _ = await _run(make_provider(), fake, script, _request(repo))

    assert result.retry_count == 1
    nudge = fake.requests[1].body
    assert nudge["tool_choice"] == {"type": "tool", "name": SUBMIT_TOOL_NAME}
    assert SUBMIT_TOOL_NAME in nudge["messages"][-1]["content"]


async def test_a_result_cut_off_at_the_token_limit_is_asked_for_again(
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    cut_off = ToolCall(SUBMIT_TOOL_NAME, VALID_PLAN, pieces=4)
    script = [Turn(tool_calls=[cut_off], stop_reason="max_tokens"), _submit()]

    result, _ = await _run(make_provider(), fake, script, _request(repo))

    assert result.retry_count == 1
    (answer,) = fake.requests[1].tool_results()
    assert answer["tool_use_id"] == cut_off.id and answer["is_error"] is True
    assert "token limit" in tool_result_text(answer)


async def test_tool_rounds_are_capped(
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [Turn(tool_calls=[ToolCall("Glob", {"pattern": "*.md"})]) for _ in range(3)]

    error, _ = await _fail(make_provider(max_tool_rounds=3), fake, script, _request(repo))

    assert "within 3 rounds" in str(error)
    assert len(fake.requests) == 3
    # The last round asks for the result outright.
    assert fake.requests[2].body["tool_choice"] == {"type": "tool", "name": SUBMIT_TOOL_NAME}


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
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path, failure: Step
) -> None:
    result, sink = await _run(
        make_provider(), fake, [failure, _submit(text=["Done."])], _request(repo)
    )

    assert len(result.suggestions) == 3
    assert sink.narrative == "Done."
    assert len(fake.requests) == 2
    assert result.retry_count == 0


async def test_a_failure_in_a_later_round_before_its_text_is_retried(
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script: list[Step] = [
        Turn(text=["Reading."], tool_calls=[ToolCall("Read", {"path": "CLAUDE.md"})]),
        HttpError(529, "overloaded_error"),
        _submit(text=["Done."]),
    ]

    _, sink = await _run(make_provider(), fake, script, _request(repo))

    assert sink.narrative == "Reading.\n\nDone."
    assert fake.requests[1].body == fake.requests[2].body


async def test_retries_are_bounded(
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    script = [HttpError(529, "overloaded_error")] * 3

    error, _ = await _fail(make_provider(provider_retries=2), fake, script, _request(repo))

    assert "overloaded" in str(error) and "after 2 retries" in str(error)
    assert len(fake.requests) == 3


async def test_a_refused_key_is_a_provider_error_without_the_key(
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "sk-ant-wrong-key-PRIVATE"
    provider = make_provider(api_key=wrong)

    error, _ = await _fail(provider, fake, [_submit()], _request(repo))

    assert str(error) == KEY_REFUSED
    assert wrong not in str(error)
    assert fake.refused == 1  # not retried
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
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path, failure: HttpError, expected: str
) -> None:
    error, _ = await _fail(make_provider(), fake, [failure], _request(repo, model="claude-nope"))

    assert "claude-nope" in str(error) and expected in str(error)
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [
        Turn(text=["Reading the ", "page"], cut_after_text=True),
        Turn(text=["Reading the ", "page"], error_event="overloaded_error"),
    ],
    ids=["cut", "error-event"],
)
async def test_a_failure_after_text_has_streamed_is_not_retried(
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path, failure: Turn
) -> None:
    error, sink = await _fail(make_provider(), fake, [failure, _submit()], _request(repo))

    assert str(error).startswith("The answer broke off mid-stream")
    assert sink.narrative == "Reading the page"
    assert len(fake.requests) == 1


async def test_cancellation_closes_the_upstream_connection_at_once(
    fake: FakeAnthropic, make_provider: MakeProvider, repo: Path
) -> None:
    fake.play([Turn(text=["Looking at ", "the page"], stall_after_text=True)])
    sink = RecordingSink()
    task = asyncio.create_task(make_provider().run(_request(repo), sink))
    await asyncio.wait_for(sink.first_text.wait(), 5)
    assert await asyncio.to_thread(fake.stalled.wait, 5)

    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(fake.disconnected.wait, 2)
    assert time.monotonic() - started < 1.0
    assert sink.narrative == "Looking at the page"
