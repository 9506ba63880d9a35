"""The ``openai`` provider through the real SDK, against a local Chat Completions fake."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from feature_planner.agent.providers.openai import OpenAIProvider
from feature_planner.agent.providers.options import AIOptions
from feature_planner.errors import ProviderError
from tests.agent.conftest import (
    CLAUDE_MD,
    INVALID_PLAN,
    PAGE,
    READER_AGENT,
    VALID_PLAN,
    plan_request,
)
from tests.agent.openai_server import (
    API_KEY,
    MODEL,
    RATE_LIMITED,
    SERVED_MODEL,
    SERVER_ERROR,
    Call,
    FakeOpenAI,
    Reply,
    error_reply,
)
from tests.agent.sinks import RecordingSink

pytestmark = pytest.mark.timeout(20)

SUBMIT = Call("submit_suggestions", VALID_PLAN)


@pytest.fixture
def base_url(openai_api: tuple[FakeOpenAI, str]) -> str:
    return openai_api[1]


def options(base_url: str | None, **overrides: Any) -> AIOptions:
    values: dict[str, Any] = {
        "api_key": API_KEY,
        "base_url": base_url,
        "model": MODEL,
        "allowed_models": (MODEL, "gpt-other"),
        "structured_retries": 2,
        "provider_retries": 2,
    }
    return AIOptions(**(values | overrides))


@pytest.fixture
async def provider(base_url: str) -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider(options(base_url), retry_base_delay=0.001)
    yield provider
    await provider.aclose()


def tool_messages(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [message for message in request["messages"] if message["role"] == "tool"]


async def test_a_run_with_several_tool_rounds_reads_the_repository_and_returns_the_plan(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(
        Reply(
            text=["I'll start ", "with CLAUDE.md."],
            calls=[Call("Read", {"path": "CLAUDE.md"}), Call("Glob", {"pattern": "src/**/*.tsx"})],
            usage=(100, 20),
            cached_tokens=40,
        ),
        Reply(
            text=["The page renders ", "a grid."],
            calls=[Call("Grep", {"pattern": "CollectionGrid"})],
            usage=(300, 30),
        ),
        Reply(text=["Done."], calls=[SUBMIT], usage=(500, 50), cached_tokens=10),
    )
    sink = RecordingSink()

    result = await provider.run(plan_request(repo), sink)

    assert [s.title for s in result.suggestions] == [s["title"] for s in VALID_PLAN["suggestions"]]
    assert result.context == VALID_PLAN["context"]
    assert result.model == SERVED_MODEL
    assert result.retry_count == 0
    usage = result.token_usage
    assert (usage.input_tokens, usage.output_tokens) == (900, 100)
    assert usage.cache_read_input_tokens == 50
    assert sink.narrative == "I'll start with CLAUDE.md.\n\nThe page renders a grid.\n\nDone."
    assert [tool for tool, _ in sink.activities] == ["Read", "Glob", "Grep"]
    assert "CLAUDE.md" in sink.activities[0][1]

    first, second, third = fake_openai.requests
    assert [tool["function"]["name"] for tool in first["tools"]] == [
        "Glob",
        "Grep",
        "Read",
        "submit_suggestions",
    ]
    assert first["tools"][-1]["function"]["parameters"]["required"] == ["suggestions", "context"]
    assert first["stream"] is True
    assert first["stream_options"] == {"include_usage": True}
    assert first["model"] == MODEL
    assert first["max_tokens"] == 4096  # not api.openai.com: the parameter every server knows
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert "Collections page" in first["messages"][1]["content"]

    assistant = second["messages"][2]
    assert assistant["role"] == "assistant"
    assert assistant["content"] == "I'll start with CLAUDE.md."
    assert [(c["id"], c["function"]["name"]) for c in assistant["tool_calls"]] == [
        ("call_1_0", "Read"),
        ("call_1_1", "Glob"),
    ]
    assert assistant["tool_calls"][0]["function"]["arguments"] == '{"path": "CLAUDE.md"}'
    read, glob = tool_messages(second)
    assert read["tool_call_id"] == "call_1_0"
    assert CLAUDE_MD in read["content"]
    assert glob["tool_call_id"] == "call_1_1"
    assert PAGE in glob["content"]
    (grep,) = tool_messages(third)[2:]
    assert grep["tool_call_id"] == "call_2_0"
    assert PAGE in grep["content"]
    assert fake_openai.problems == []


async def test_a_custom_agent_chooses_the_tools_the_temperature_and_the_prompt(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(Reply(calls=[SUBMIT]))

    result = await provider.run(
        plan_request(repo, agent=READER_AGENT, model="gpt-test"), RecordingSink()
    )

    assert len(result.suggestions) == 3
    (request,) = fake_openai.requests
    assert [t["function"]["name"] for t in request["tools"]] == ["Read", "submit_suggestions"]
    assert request["temperature"] == 0.2
    assert "Careful reader" in request["messages"][0]["content"]


async def test_an_invalid_plan_is_sent_back_with_the_errors_and_the_valid_retry_counts(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(
        Reply(
            text=["Submitting."], calls=[Call("submit_suggestions", INVALID_PLAN, id="call_bad")]
        ),
        Reply(calls=[SUBMIT]),
    )

    result = await provider.run(plan_request(repo), RecordingSink())

    assert result.retry_count == 1
    (feedback,) = tool_messages(fake_openai.requests[1])
    assert feedback["tool_call_id"] == "call_bad"
    assert "suggestions" in feedback["content"]
    assert "not valid" in feedback["content"]


async def test_invalid_plans_beyond_the_retry_budget_end_the_run(
    fake_openai: FakeOpenAI, base_url: str, repo: Path
) -> None:
    invalid = Call("submit_suggestions", '{"suggestions": []')  # truncated JSON
    fake_openai.add(Reply(calls=[invalid]), Reply(calls=[invalid]))
    provider = OpenAIProvider(options(base_url, structured_retries=1))

    with pytest.raises(ProviderError, match="did not return valid suggestions after 1 retries"):
        await provider.run(plan_request(repo), RecordingSink())
    await provider.aclose()
    # Truncated arguments go back as an empty object, so that servers can re-render them.
    assert fake_openai.requests[1]["messages"][2]["tool_calls"][0]["function"]["arguments"] == "{}"


async def test_rate_limits_and_server_errors_before_any_text_are_retried(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(RATE_LIMITED, SERVER_ERROR, Reply(text=["Hi."], calls=[SUBMIT]))
    sink = RecordingSink()

    result = await provider.run(plan_request(repo), sink)

    assert len(result.suggestions) == 3
    assert len(fake_openai.requests) == 3
    assert sink.narrative == "Hi."


async def test_retries_are_bounded_and_the_user_is_told_why(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(RATE_LIMITED, RATE_LIMITED, RATE_LIMITED, Reply(calls=[SUBMIT]))

    with pytest.raises(ProviderError, match=r"rate limited.*still failing after 2 retries"):
        await provider.run(plan_request(repo), RecordingSink())
    assert len(fake_openai.requests) == 3


async def test_an_exhausted_quota_is_not_retried(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(
        error_reply(429, "You exceeded your current quota.", code="insufficient_quota"),
        Reply(calls=[SUBMIT]),
    )

    with pytest.raises(ProviderError, match="run out of quota"):
        await provider.run(plan_request(repo), RecordingSink())
    assert len(fake_openai.requests) == 1


async def test_a_refused_api_key_names_the_setting_and_never_the_key(
    fake_openai: FakeOpenAI, base_url: str, repo: Path
) -> None:
    secret = "sk-wrong-secret-key-98765"
    provider = OpenAIProvider(options(base_url, api_key=secret), retry_base_delay=0.001)

    with pytest.raises(ProviderError) as caught:
        await provider.run(plan_request(repo), RecordingSink())
    await provider.aclose()

    message = str(caught.value)
    assert message == ("The OpenAI API key was refused; check FEATURE_PLANNER_OPENAI_API_KEY")
    assert "8765" not in message
    assert caught.value.__cause__ is None


async def test_a_model_the_server_does_not_have_is_named(
    provider: OpenAIProvider, repo: Path
) -> None:
    with pytest.raises(ProviderError, match="The model gpt-missing was not found") as caught:
        await provider.run(plan_request(repo, model="gpt-missing"), RecordingSink())
    assert "does not exist" in str(caught.value)


async def test_a_connection_cut_after_text_ends_the_run_without_a_retry(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(
        Reply(text=["Looking at ", "the page"], cut_after_text=True), Reply(calls=[SUBMIT])
    )
    sink = RecordingSink()

    with pytest.raises(ProviderError, match=r"^The answer broke off mid-stream"):
        await provider.run(plan_request(repo), sink)
    assert sink.narrative == "Looking at the page"
    assert len(fake_openai.requests) == 1


async def test_a_connection_cut_before_any_text_is_retried(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(Reply(cut_after_text=True), Reply(text=["Fine."], calls=[SUBMIT]))
    sink = RecordingSink()

    result = await provider.run(plan_request(repo), sink)

    assert len(result.suggestions) == 3
    assert sink.narrative == "Fine."
    assert len(fake_openai.requests) == 2


async def test_an_error_event_inside_the_stream_is_retried_before_any_text(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    overloaded = {"error": {"message": "The server is overloaded", "type": "server_error"}}
    fake_openai.add(Reply(stream_error=overloaded), Reply(calls=[SUBMIT]))

    result = await provider.run(plan_request(repo), RecordingSink())

    assert len(result.suggestions) == 3
    assert len(fake_openai.requests) == 2


async def test_an_error_event_after_text_ends_the_run_with_the_servers_message(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    overloaded = {"error": {"message": "The server is overloaded", "type": "server_error"}}
    fake_openai.add(Reply(text=["Reading"], stream_error=overloaded), Reply(calls=[SUBMIT]))

    with pytest.raises(ProviderError, match=r"broke off.*The server is overloaded"):
        await provider.run(plan_request(repo), RecordingSink())
    assert len(fake_openai.requests) == 1


async def test_a_base_url_that_is_not_a_chat_completions_api_is_named(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, base_url: str, repo: Path
) -> None:
    fake_openai.add(Reply(raw=b"<html><body>Welcome to nginx!</body></html>"))

    with pytest.raises(ProviderError, match="did not answer with a Chat Completions") as caught:
        await provider.run(plan_request(repo), RecordingSink())
    assert base_url in str(caught.value)
    assert len(fake_openai.requests) == 1


async def test_cancellation_closes_the_upstream_stream_at_once(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(Reply(text=["Thinking"], hang_after_text=True))
    sink = RecordingSink()
    task = asyncio.create_task(provider.run(plan_request(repo), sink))
    await asyncio.wait_for(sink.first_text.wait(), timeout=5)

    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await asyncio.to_thread(fake_openai.disconnected.wait, 5)
    assert time.monotonic() - started < 1


async def test_a_plain_text_answer_is_reminded_once_to_submit(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(Reply(text=["Here are my ideas."]), Reply(calls=[SUBMIT]))

    result = await provider.run(plan_request(repo), RecordingSink())

    assert len(result.suggestions) == 3
    *_, answer, reminder = fake_openai.requests[1]["messages"]
    assert answer == {"role": "assistant", "content": "Here are my ideas."}
    assert reminder["role"] == "user"
    assert "submit_suggestions" in reminder["content"]


async def test_a_model_that_never_calls_the_tool_fails_after_the_reminder(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(Reply(text=["Idea one."]), Reply(text=["Idea two."]))

    with pytest.raises(ProviderError, match="supports tool calls"):
        await provider.run(plan_request(repo), RecordingSink())
    assert len(fake_openai.requests) == 2


async def test_unknown_tools_and_broken_arguments_are_reported_to_the_model(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(
        Reply(calls=[Call("Bash", {"command": "ls"}), Call("Read", "{not json")]),
        Reply(calls=[SUBMIT]),
    )
    sink = RecordingSink()

    await provider.run(plan_request(repo), sink)

    bash, read = tool_messages(fake_openai.requests[1])
    assert bash["content"].startswith("Error: There is no tool named 'Bash'")
    assert read["content"].startswith("Error:")
    assert sink.activities == []


async def test_tool_rounds_are_capped(fake_openai: FakeOpenAI, base_url: str, repo: Path) -> None:
    fake_openai.add(*[Reply(calls=[Call("Read", {"path": "README.md"})])] * 3)
    provider = OpenAIProvider(options(base_url), max_tool_rounds=3)

    with pytest.raises(ProviderError, match="within 3 rounds"):
        await provider.run(plan_request(repo), RecordingSink())
    await provider.aclose()
    last = fake_openai.requests[-1]["messages"][-1]
    assert last["role"] == "user"
    assert "submit_suggestions now" in last["content"]


async def test_a_model_that_refuses_a_temperature_is_asked_again_without_one(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.refuse_temperature = True
    fake_openai.add(Reply(calls=[SUBMIT]))

    await provider.run(plan_request(repo), RecordingSink())

    assert [("temperature" in request) for request in fake_openai.requests] == [True, False]


async def test_the_official_api_gets_max_completion_tokens() -> None:
    provider = OpenAIProvider(options("https://api.openai.com/v1"))
    try:
        params = provider._params("gpt-4.1-mini", 0.7, [])
    finally:
        await provider.aclose()
    assert params["max_completion_tokens"] == 4096
    assert "max_tokens" not in params


async def test_the_module_name_does_not_shadow_the_sdk() -> None:
    import openai

    from feature_planner.agent.providers import openai as module

    assert vars(module)["openai"] is openai
    assert hasattr(openai, "AsyncOpenAI")
    provider = OpenAIProvider(options("http://127.0.0.1:9/v1"))
    assert provider.models == (MODEL, "gpt-other")
    await provider.aclose()
