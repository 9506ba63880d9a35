"""The ``openai`` provider through the real SDK, against a local Chat Completions fake.

The model submits each suggestion with ``submit_suggestion`` and ends with ``finish``. Most
tests run the provider on a ``RecordingSink`` (which sends every suggestion as it is); those
at the end run it through the service's ``JobRun`` (``job_events``): evidence verified
against the repository, failed items sent back to the model, and the events a client sees.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from feature_planner.agent.providers.openai import OpenAIProvider
from feature_planner.agent.providers.options import AIOptions
from feature_planner.errors import ProviderError
from feature_planner.models import ProgressPhase
from tests.agent.conftest import (
    CLAUDE_MD,
    CONTEXT,
    FETCH_QUOTE,
    FINISH_INPUT,
    GRID_QUOTE,
    INVALID_SUGGESTION,
    LIB,
    PAGE,
    READER_AGENT,
    SUGGESTIONS,
    evidence,
    plan_request,
    suggestion_input,
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
from tests.agent.sinks import RecordingSink, job_events
from tests.sse_decoder import ServerSentEvent

pytestmark = pytest.mark.timeout(20)

SUBMIT_TOOL = "submit_suggestion"
FINISH = Call("finish", FINISH_INPUT)
# A whole run in one reply: the three suggestions, one call each, then finish.
SUBMIT = [*(Call(SUBMIT_TOOL, item) for item in SUGGESTIONS), FINISH]
TITLES = [item["title"] for item in SUGGESTIONS]


def submit(item: dict[str, Any], id: str | None = None) -> Call:
    return Call(SUBMIT_TOOL, item, id=id)


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


def answers(request: dict[str, Any]) -> list[str]:
    """The tool results that ``request`` answers the model's last turn with, in order."""
    messages = request["messages"]
    last = max(n for n, message in enumerate(messages) if message["role"] == "assistant")
    assert all(message["role"] == "tool" for message in messages[last + 1 :])
    return [message["content"] for message in messages[last + 1 :]]


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
        Reply(text=["Done."], calls=SUBMIT, usage=(500, 50), cached_tokens=10),
    )
    sink = RecordingSink()

    result = await provider.run(plan_request(repo), sink)

    assert [s.title for s in result.suggestions] == TITLES
    assert [s.to_wire() for s in sink.suggestions] == SUGGESTIONS  # each as the model wrote it
    assert list(result.suggestions) == sink.suggestions
    assert result.context == CONTEXT
    assert result.model == SERVED_MODEL
    assert result.retry_count == 0
    assert result.notice is None
    usage = result.token_usage
    assert (usage.input_tokens, usage.output_tokens) == (900, 100)
    assert usage.cache_read_input_tokens == 50
    assert sink.narrative == "I'll start with CLAUDE.md.\n\nThe page renders a grid.\n\nDone."
    assert [tool for tool, _ in sink.activities] == ["Read", "Glob", "Grep"]
    assert "CLAUDE.md" in sink.activities[0][1]
    assert sink.phases == [ProgressPhase.DRAFTING]  # once, at the first submit_suggestion

    first, second, third = fake_openai.requests
    assert [tool["function"]["name"] for tool in first["tools"]] == [
        "Glob",
        "Grep",
        "Read",
        "submit_suggestion",
        "finish",
    ]
    submit_schema = first["tools"][-2]["function"]["parameters"]
    assert sorted(submit_schema["required"]) == sorted(SUGGESTIONS[0])
    assert submit_schema["properties"]["evidence"]["minItems"] == 1
    assert submit_schema["properties"]["evidence"]["maxItems"] == 5
    assert first["tools"][-1]["function"]["parameters"]["required"] == ["context"]
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


async def test_suggestions_and_finish_may_come_one_per_reply(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(*(Reply(calls=[call]) for call in SUBMIT))
    sink = RecordingSink()

    result = await provider.run(plan_request(repo), sink)

    assert [s.title for s in result.suggestions] == TITLES
    assert result.context == CONTEXT
    assert result.retry_count == 0
    assert len(fake_openai.requests) == 4
    assert sink.phases == [ProgressPhase.DRAFTING]
    # Each answer tells the model where it stands.
    assert answers(fake_openai.requests[1]) == [
        "Suggestion 1 accepted and shown to the user, with 1 verified evidence item. Submit "
        "the next one (3 at least)."
    ]
    assert answers(fake_openai.requests[3])[-1] == (
        "Suggestion 3 accepted and shown to the user, with 1 verified evidence item. Submit "
        "another if it is worth it (at most 5), or call finish."
    )
    assert fake_openai.problems == []


async def test_a_custom_agent_chooses_the_tools_the_temperature_and_the_prompt(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(Reply(calls=SUBMIT))

    result = await provider.run(
        plan_request(repo, agent=READER_AGENT, model="gpt-test"), RecordingSink()
    )

    assert len(result.suggestions) == 3
    (request,) = fake_openai.requests
    assert [t["function"]["name"] for t in request["tools"]] == [
        "Read",
        "submit_suggestion",
        "finish",
    ]
    assert request["temperature"] == 0.2
    assert "Careful reader" in request["messages"][0]["content"]


async def test_an_invalid_suggestion_is_sent_back_with_the_errors_and_the_valid_retry_counts(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(
        Reply(text=["Submitting."], calls=[submit(INVALID_SUGGESTION, id="call_bad")]),
        Reply(calls=SUBMIT),
    )
    sink = RecordingSink()

    result = await provider.run(plan_request(repo), sink)

    assert result.retry_count == 1
    assert [s.title for s in result.suggestions] == TITLES
    assert [s.title for s in sink.suggestions] == TITLES  # the invalid one never reached it
    (feedback,) = tool_messages(fake_openai.requests[1])
    assert feedback["tool_call_id"] == "call_bad"
    assert feedback["content"].startswith(
        "Error: The submit_suggestion input was not valid (effort: "
    )
    assert feedback["content"].endswith("Call submit_suggestion again with a corrected input.")


async def test_invalid_suggestions_beyond_the_retry_budget_end_the_run(
    fake_openai: FakeOpenAI, base_url: str, repo: Path
) -> None:
    invalid = Call(SUBMIT_TOOL, '{"title": "A grid"')  # truncated JSON
    fake_openai.add(Reply(calls=[invalid]), Reply(calls=[invalid]))
    provider = OpenAIProvider(options(base_url, structured_retries=1))
    sink = RecordingSink()

    with pytest.raises(ProviderError, match="did not return valid suggestions after 1 retries"):
        await provider.run(plan_request(repo), sink)
    await provider.aclose()
    assert sink.suggestions == []
    assert len(fake_openai.requests) == 2
    # Truncated arguments go back as an empty object, so that servers can re-render them.
    assert fake_openai.requests[1]["messages"][2]["tool_calls"][0]["function"]["arguments"] == "{}"
    (feedback,) = answers(fake_openai.requests[1])
    assert feedback.startswith("Error: The submit_suggestion input was not valid (")


async def test_a_suggestion_cut_off_at_the_token_limit_is_asked_again_shorter(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    cut = Call(SUBMIT_TOOL, json.dumps(SUGGESTIONS[1])[:60])
    fake_openai.add(
        Reply(calls=[submit(SUGGESTIONS[0]), cut], finish_reason="length"),
        Reply(calls=SUBMIT[1:]),
    )
    sink = RecordingSink()

    result = await provider.run(plan_request(repo), sink)

    assert [s.title for s in result.suggestions] == TITLES
    assert result.retry_count == 1
    assert answers(fake_openai.requests[1]) == [
        "Suggestion 1 accepted and shown to the user, with 1 verified evidence item. Submit "
        "the next one (3 at least).",
        "Error: Your output reached the token limit before this tool call was complete. Call "
        "the tool again with a shorter input.",
    ]
    assert fake_openai.requests[1]["messages"][2]["tool_calls"][1]["function"]["arguments"] == "{}"


async def test_finish_before_any_suggestion_is_sent_back_and_counts_as_a_retry(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(Reply(calls=[FINISH]), Reply(calls=SUBMIT))

    result = await provider.run(plan_request(repo), RecordingSink())

    assert [s.title for s in result.suggestions] == TITLES
    assert result.retry_count == 1
    assert answers(fake_openai.requests[1]) == [
        "Error: No suggestion has been accepted yet. Call submit_suggestion for each "
        "suggestion first, citing its evidence, then finish."
    ]


async def test_a_turn_without_finish_after_three_suggestions_ends_the_run_with_them(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(Reply(calls=SUBMIT[:3]), Reply(text=["That is all."]))

    result = await provider.run(plan_request(repo), RecordingSink())

    assert [s.title for s in result.suggestions] == TITLES
    assert result.context == "The run ended before the model summarised what it read."
    assert result.retry_count == 0
    assert len(fake_openai.requests) == 2  # not reminded: three were sent


async def test_rate_limits_and_server_errors_before_any_text_are_retried(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(RATE_LIMITED, SERVER_ERROR, Reply(text=["Hi."], calls=SUBMIT))
    sink = RecordingSink()

    result = await provider.run(plan_request(repo), sink)

    assert len(result.suggestions) == 3
    assert len(fake_openai.requests) == 3
    assert sink.narrative == "Hi."


async def test_retries_are_bounded_and_the_user_is_told_why(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(RATE_LIMITED, RATE_LIMITED, RATE_LIMITED, Reply(calls=SUBMIT))

    with pytest.raises(ProviderError, match=r"rate limited.*still failing after 2 retries"):
        await provider.run(plan_request(repo), RecordingSink())
    assert len(fake_openai.requests) == 3


async def test_an_exhausted_quota_is_not_retried(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(
        error_reply(429, "You exceeded your current quota.", code="insufficient_quota"),
        Reply(calls=SUBMIT),
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
        Reply(text=["Looking at ", "the page"], cut_after_text=True), Reply(calls=SUBMIT)
    )
    sink = RecordingSink()

    with pytest.raises(ProviderError, match=r"^The answer broke off mid-stream"):
        await provider.run(plan_request(repo), sink)
    assert sink.narrative == "Looking at the page"
    assert len(fake_openai.requests) == 1


async def test_a_connection_cut_before_any_text_is_retried(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(Reply(cut_after_text=True), Reply(text=["Fine."], calls=SUBMIT))
    sink = RecordingSink()

    result = await provider.run(plan_request(repo), sink)

    assert len(result.suggestions) == 3
    assert sink.narrative == "Fine."
    assert len(fake_openai.requests) == 2


async def test_an_error_event_inside_the_stream_is_retried_before_any_text(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    overloaded = {"error": {"message": "The server is overloaded", "type": "server_error"}}
    fake_openai.add(Reply(stream_error=overloaded), Reply(calls=SUBMIT))

    result = await provider.run(plan_request(repo), RecordingSink())

    assert len(result.suggestions) == 3
    assert len(fake_openai.requests) == 2


async def test_an_error_event_after_text_ends_the_run_with_the_servers_message(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    overloaded = {"error": {"message": "The server is overloaded", "type": "server_error"}}
    fake_openai.add(Reply(text=["Reading"], stream_error=overloaded), Reply(calls=SUBMIT))

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
    fake_openai.add(Reply(text=["Here are my ideas."]), Reply(calls=SUBMIT))

    result = await provider.run(plan_request(repo), RecordingSink())

    assert len(result.suggestions) == 3
    assert result.retry_count == 1  # the reminder is a structured retry
    *_, answer, reminder = fake_openai.requests[1]["messages"]
    assert answer == {"role": "assistant", "content": "Here are my ideas."}
    assert reminder["role"] == "user"
    assert reminder["content"].startswith("You ended your turn without calling the finish tool.")
    assert "Call submit_suggestion for each suggestion not yet accepted" in reminder["content"]


async def test_a_model_that_never_calls_the_tool_fails_after_the_reminder(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(Reply(text=["Idea one."]), Reply(text=["Idea two."]))

    with pytest.raises(ProviderError, match="answered without calling submit_suggestion"):
        await provider.run(plan_request(repo), RecordingSink())
    assert len(fake_openai.requests) == 2


async def test_unknown_tools_and_broken_arguments_are_reported_to_the_model(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(
        Reply(calls=[Call("Bash", {"command": "ls"}), Call("Read", "{not json")]),
        Reply(calls=SUBMIT),
    )
    sink = RecordingSink()

    await provider.run(plan_request(repo), sink)

    bash, read = answers(fake_openai.requests[1])
    assert bash.startswith("Error: There is no tool named 'Bash'")
    assert bash.endswith("the tools are Glob, Grep, Read, submit_suggestion, finish.")
    assert read.startswith("Error:")
    assert sink.activities == []


async def test_tool_rounds_are_capped(fake_openai: FakeOpenAI, base_url: str, repo: Path) -> None:
    fake_openai.add(*[Reply(calls=[Call("Read", {"path": "README.md"})])] * 3)
    provider = OpenAIProvider(options(base_url), max_tool_rounds=3)

    with pytest.raises(ProviderError, match="did not call submit_suggestion within 3 rounds"):
        await provider.run(plan_request(repo), RecordingSink())
    await provider.aclose()
    last = fake_openai.requests[-1]["messages"][-1]
    assert last["role"] == "user"
    assert last["content"] == (
        "You have used all your tool rounds. Submit what you have with submit_suggestion "
        "now, then call finish."
    )


async def test_out_of_rounds_a_run_ends_with_the_suggestions_it_sent(
    fake_openai: FakeOpenAI, base_url: str, repo: Path
) -> None:
    fake_openai.add(
        Reply(calls=[submit(SUGGESTIONS[0])]),
        Reply(calls=[Call("Read", {"path": "README.md"})]),
    )
    provider = OpenAIProvider(options(base_url), max_tool_rounds=2)

    result = await provider.run(plan_request(repo), RecordingSink())
    await provider.aclose()

    assert [s.title for s in result.suggestions] == TITLES[:1]
    assert result.notice == (
        "The model found only 1 suggestion(s) that the code bears out (a run usually has 3 to 5)."
    )
    assert len(fake_openai.requests) == 2


async def test_a_model_that_refuses_a_temperature_is_asked_again_without_one(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.refuse_temperature = True
    fake_openai.add(Reply(calls=SUBMIT))

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


# -- through the service's runner: evidence verified, the events a client sees ------------

MISSING_FILE = evidence("src/lib/collection.ts", 2, 2, FETCH_QUOTE)  # collections.ts exists
RETRY_TAIL = (
    "Submit the suggestion again with each of these items fixed or removed: cite a file you "
    "have read, its exact lines (1-based, inclusive), and a quote copied verbatim from those "
    "lines (whitespace may differ; a paraphrase fails). Keep the items that were verified as "
    "they are."
)


def cited(n: int, *items: dict[str, Any]) -> dict[str, Any]:
    """Suggestion ``n`` of ``SUGGESTIONS`` (or a new one), citing ``items`` instead."""
    base = SUGGESTIONS[n - 1] if n <= len(SUGGESTIONS) else suggestion_input(n)
    return {**base, "evidence": list(items)}


async def events_of(provider: OpenAIProvider, repo: Path) -> list[ServerSentEvent]:
    events = await job_events(provider, plan_request(repo))
    assert all(API_KEY not in event.data for event in events)
    return events


def names(events: list[ServerSentEvent], *only: str) -> list[str]:
    return [event.event for event in events if not only or event.event in only]


def sent(events: list[ServerSentEvent]) -> list[dict[str, Any]]:
    """The suggestions of the ``suggestion`` events, each checked to be at its index."""
    shown = [event.json() for event in events if event.event == "suggestion"]
    assert [item["index"] for item in shown] == list(range(len(shown)))
    return [item["suggestion"] for item in shown]


def completed(events: list[ServerSentEvent]) -> dict[str, Any]:
    """The ``complete`` event, the last one, which repeats exactly what was sent."""
    assert names(events)[-1] == "complete"
    assert names(events).count("complete") == 1
    complete: dict[str, Any] = events[-1].json()
    assert complete["suggestions"] == sent(events)
    assert complete["provider"] == "openai"
    assert complete["model"] == SERVED_MODEL
    assert complete["context"] == CONTEXT
    return complete


async def test_a_run_that_cites_correctly_sends_each_suggestion_before_complete(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(
        Reply(text=["Reading the page."], calls=[Call("Read", {"path": PAGE})]),
        Reply(text=["Three ideas."], calls=SUBMIT),
    )

    events = await events_of(provider, repo)

    assert names(events, "delta", "activity", "suggestion", "complete", "error") == [
        "delta",
        "activity",
        "delta",
        "suggestion",
        "suggestion",
        "suggestion",
        "complete",
    ]
    assert sent(events) == SUGGESTIONS  # in order, whole: effort, impact and evidence too
    assert [(item["effort"], item["impact"]) for item in sent(events)] == [("small", "high")] * 3
    complete = completed(events)
    assert complete["evidenceStats"] == {"cited": 3, "verified": 3, "dropped": 0}
    assert complete["retryCount"] == 0
    assert "notice" not in complete
    assert complete["tokenUsage"]["inputTokens"] == 200
    texts = [event.json()["text"] for event in events if event.event == "delta"]
    assert "".join(texts) == "Reading the page.\n\nThree ideas."
    assert len(fake_openai.requests) == 2
    assert fake_openai.problems == []


async def test_a_missing_file_goes_back_to_the_model_and_its_fix_is_sent(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(
        Reply(calls=[submit(SUGGESTIONS[0]), submit(cited(2, MISSING_FILE), id="call_s2")]),
        Reply(calls=[submit(SUGGESTIONS[1]), submit(SUGGESTIONS[2]), FINISH]),
    )

    events = await events_of(provider, repo)

    accepted, feedback = tool_messages(fake_openai.requests[1])
    assert accepted["content"] == (
        "Suggestion 1 accepted and shown to the user, with 1 verified evidence item. Submit "
        "the next one (3 at least)."
    )
    assert feedback["tool_call_id"] == "call_s2"
    assert feedback["content"].split("\n") == [
        'Error: Suggestion "Suggestion 2 for the collections page": 1 of 1 evidence items '
        "could not be verified against the repository, so it has no verified evidence and "
        "cannot be shown:",
        "- evidence 1 (src/lib/collection.ts, line 2): no such file: src/lib/collection.ts",
        RETRY_TAIL,
    ]
    assert sent(events) == SUGGESTIONS  # the second as fixed; nothing of the missing file
    complete = completed(events)
    assert complete["retryCount"] == 1
    # cited: 1, then the missing item and its fix, then 1.
    assert complete["evidenceStats"] == {"cited": 4, "verified": 3, "dropped": 0}
    assert len(fake_openai.requests) == 2


WRONG_RANGES = {
    "past the end": (
        evidence(LIB, 7, 8, FETCH_QUOTE),
        [
            f"- evidence 2 ({LIB}, lines 7-8): {LIB} has 3 lines; lines 7-8 do not exist. "
            "The quote occurs at line 2."
        ],
    ),
    "quote from other lines": (
        evidence(PAGE, 4, 4, GRID_QUOTE),
        [
            f"- evidence 2 ({PAGE}, line 4): the quote does not occur in line 4 of {PAGE} "
            "(it occurs at line 5); the lines read:",
            "    const collections = await getCollections()",
        ],
    ),
}


@pytest.mark.parametrize("case", WRONG_RANGES, ids=list(WRONG_RANGES))
async def test_a_wrong_line_range_goes_back_to_the_model_and_its_fix_is_sent(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path, case: str
) -> None:
    wrong, reason = WRONG_RANGES[case]
    (good,) = SUGGESTIONS[2]["evidence"]
    fixed = cited(3, good, evidence(LIB, 2, 2, FETCH_QUOTE))
    fake_openai.add(
        Reply(
            calls=[submit(SUGGESTIONS[0]), submit(SUGGESTIONS[1]), submit(cited(3, good, wrong))]
        ),
        Reply(calls=[submit(fixed), FINISH]),
    )

    events = await events_of(provider, repo)

    *_, feedback = answers(fake_openai.requests[1])
    assert feedback.split("\n") == [
        'Error: Suggestion "Suggestion 3 for the collections page": 1 of 2 evidence items '
        "could not be verified against the repository:",
        *reason,
        RETRY_TAIL,
    ]
    assert sent(events) == [SUGGESTIONS[0], SUGGESTIONS[1], fixed]
    complete = completed(events)
    assert complete["retryCount"] == 1
    # cited: 1 + 1, the third's two items, then only its fixed item (the kept one is not new).
    assert complete["evidenceStats"] == {"cited": 5, "verified": 4, "dropped": 0}


UNCITED = {
    "no evidence": (
        {key: value for key, value in SUGGESTIONS[0].items() if key != "evidence"},
        "evidence: Field required",
    ),
    "empty evidence": (
        cited(1),
        "evidence: List should have at least 1 item after validation, not 0",
    ),
}


@pytest.mark.parametrize("case", UNCITED, ids=list(UNCITED))
async def test_a_suggestion_that_cites_nothing_goes_back_and_is_never_sent(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path, case: str
) -> None:
    uncited, problem = UNCITED[case]
    fake_openai.add(Reply(calls=[submit(uncited)]), Reply(calls=SUBMIT))

    events = await events_of(provider, repo)

    assert answers(fake_openai.requests[1]) == [
        f"Error: The submit_suggestion input was not valid ({problem}). Call "
        "submit_suggestion again with a corrected input."
    ]
    assert sent(events) == SUGGESTIONS
    complete = completed(events)
    assert complete["retryCount"] == 1
    # The uncited submission never reached the verifier: nothing of it is counted.
    assert complete["evidenceStats"] == {"cited": 3, "verified": 3, "dropped": 0}


async def test_a_quote_of_only_whitespace_cites_nothing_and_goes_back(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    blank = cited(1, evidence(PAGE, 5, 5, " \n\t "))
    fake_openai.add(Reply(calls=[submit(blank)]), Reply(calls=SUBMIT))

    events = await events_of(provider, repo)

    assert answers(fake_openai.requests[1])[0].split("\n")[1] == (
        f"- evidence 1 ({PAGE}, line 5): the quote is empty (only whitespace); copy the text "
        f"of line 5 of {PAGE} verbatim"
    )
    assert sent(events) == SUGGESTIONS
    complete = completed(events)
    assert complete["retryCount"] == 1
    assert complete["evidenceStats"] == {"cited": 4, "verified": 3, "dropped": 0}


async def test_a_model_that_never_cites_ends_with_a_provider_error_and_nothing_sent(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    uncited = cited(1)
    fake_openai.add(*[Reply(calls=[submit(uncited)])] * 3)

    events = await events_of(provider, repo)

    assert names(events, "suggestion", "complete", "error") == ["error"]
    error = events[-1].json()
    assert error["code"] == "PROVIDER_ERROR"
    assert error["message"].startswith(
        "The model did not return valid suggestions after 2 retries; try again. (Last "
        "problem: The submit_suggestion input was not valid (evidence: List should have at "
        "least 1 item"
    )
    assert len(fake_openai.requests) == 3  # structured_retries=2: asked twice again
    progress = [event.json()["percent"] for event in events if event.event == "progress"]
    assert progress and max(progress) < 100  # a failed run never shows 100


async def test_a_suggestion_whose_second_attempt_fails_too_is_dropped_and_the_run_goes_on(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    broken = cited(2, MISSING_FILE)
    fake_openai.add(
        Reply(calls=[submit(SUGGESTIONS[0]), submit(broken)]),
        Reply(calls=[submit(broken)]),
        Reply(calls=[submit(SUGGESTIONS[2]), submit(suggestion_input(4)), FINISH]),
    )

    events = await events_of(provider, repo)

    assert answers(fake_openai.requests[2]) == [
        'Error: Suggestion "Suggestion 2 for the collections page" was dropped: none of its '
        "evidence could be verified, so the user will not see it. Submit another suggestion, "
        "grounded in lines you have read, or call finish."
    ]
    assert sent(events) == [SUGGESTIONS[0], SUGGESTIONS[2], suggestion_input(4)]
    complete = completed(events)
    assert complete["retryCount"] == 2  # sent back once, then dropped (a structured retry)
    assert complete["evidenceStats"] == {"cited": 5, "verified": 3, "dropped": 1}
    assert "notice" not in complete


async def test_a_second_attempt_partly_verified_is_sent_with_the_verified_items(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    good = evidence(LIB, 2, 2, FETCH_QUOTE)
    partial = cited(2, good, MISSING_FILE)
    fake_openai.add(
        Reply(calls=[submit(SUGGESTIONS[0]), submit(partial)]),
        Reply(calls=[submit(partial), submit(SUGGESTIONS[2])]),
        Reply(calls=[FINISH]),
    )

    events = await events_of(provider, repo)

    *_, feedback = answers(fake_openai.requests[1])
    assert feedback.split("\n")[0] == (
        'Error: Suggestion "Suggestion 2 for the collections page": 1 of 2 evidence items '
        "could not be verified against the repository:"
    )
    assert answers(fake_openai.requests[2]) == [
        "Suggestion 2 accepted and shown to the user, with 1 verified evidence item. Evidence "
        "items 2 could not be verified and were dropped. Submit the next one (3 at least).",
        "Suggestion 3 accepted and shown to the user, with 1 verified evidence item. Submit "
        "another if it is worth it (at most 5), or call finish.",
    ]
    assert sent(events) == SUGGESTIONS  # the second with its verified item only
    complete = completed(events)
    assert complete["retryCount"] == 1
    # cited: 1, the second's two items then its missing one again, 1; dropped: that one.
    assert complete["evidenceStats"] == {"cited": 5, "verified": 3, "dropped": 1}


async def test_finish_with_fewer_than_three_is_refused_once_then_accepted_with_a_notice(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(
        Reply(calls=[submit(SUGGESTIONS[0]), submit(SUGGESTIONS[1]), FINISH]),
        Reply(calls=[FINISH]),
    )

    events = await events_of(provider, repo)

    assert answers(fake_openai.requests[1])[-1] == (
        "Error: Only 2 suggestion(s) were accepted; submit at least 3 if the code supports "
        "them. Or call finish again to end as it is."
    )
    assert len(fake_openai.requests) == 2
    assert sent(events) == SUGGESTIONS[:2]
    complete = completed(events)
    assert complete["notice"] == (
        "The model found only 2 suggestion(s) that the code bears out (a run usually has 3 to 5)."
    )
    assert complete["retryCount"] == 0
    assert complete["evidenceStats"] == {"cited": 2, "verified": 2, "dropped": 0}


async def test_finish_while_a_suggestion_awaits_its_fix_is_refused_once(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(
        Reply(calls=[*SUBMIT[:3], submit(cited(4, MISSING_FILE)), FINISH]),
        Reply(calls=[FINISH]),
    )

    events = await events_of(provider, repo)

    assert answers(fake_openai.requests[1])[-1] == (
        'Error: Suggestion "Suggestion 4 for the collections page" still awaits fixed '
        "evidence: submit it again. Or call finish again to end as it is."
    )
    assert sent(events) == SUGGESTIONS
    complete = completed(events)
    assert "notice" not in complete
    assert complete["retryCount"] == 1
    assert complete["evidenceStats"] == {"cited": 4, "verified": 3, "dropped": 1}


async def test_progress_drafts_before_the_first_suggestion_and_never_goes_down(
    fake_openai: FakeOpenAI, provider: OpenAIProvider, repo: Path
) -> None:
    fake_openai.add(
        Reply(calls=[Call("Read", {"path": "CLAUDE.md"}), Call("Read", {"path": PAGE})]),
        Reply(calls=[Call("Grep", {"pattern": "getCollections"})]),
        *(Reply(text=[f"Idea {n}."], calls=[call]) for n, call in enumerate(SUBMIT, 1)),
    )

    events = await events_of(provider, repo)

    progress = [(n, event.json()) for n, event in enumerate(events) if event.event == "progress"]
    phases = [item["phase"] for _, item in progress]
    assert list(dict.fromkeys(phases)) == ["reading-docs", "exploring", "drafting", "verifying"]
    first_drafting = next(n for n, item in progress if item["phase"] == "drafting")
    assert first_drafting < names(events).index("suggestion")
    percents = [item["percent"] for _, item in progress]
    assert percents == sorted(percents)
    assert percents[-1] == 100 and max(percents[:-1]) < 100
    assert names(events)[-2:] == ["progress", "complete"]
    last = progress[-1][1]
    assert (last["filesRead"], last["suggestionsReady"]) == (2, 3)
    completed(events)
