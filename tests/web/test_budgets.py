"""Budgets through the real server (DESIGN.md, "Act on a run"): a run past its token ceiling
ends with ``BUDGET_EXCEEDED``; a user past the daily budget is refused at create with 429 and
``Retry-After``; tokens and cost reach ``complete``, the history and /metrics. In memory with
SQLite, and with Redis and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from feature_planner.agent.planner import FINISH_TOOL_NAME, SUBMIT_TOOL_NAME
from feature_planner.agent.providers import build_provider
from feature_planner.config import load_settings
from feature_planner.serving import BackgroundServer
from tests.agent.anthropic_server import FakeAnthropic, ToolCall, Turn
from tests.conftest import BOB, LiveServer, ServerFactory
from tests.test_agent_store import postgres_url  # noqa: F401 - a fixture
from tests.web.test_runs_api import jobs, status

KEY = "sk-ant-budget-test-key"
PAGE = "src/app/collections/page.tsx"
QUOTE = "export default function CollectionsPage() { return null }"
DAY_S = 86_400


@pytest.fixture
def runs_server(make_server: ServerFactory, backend: str, request: Any) -> ServerFactory:
    """In memory the history is a SQLite file; with Redis it is PostgreSQL."""
    if backend == "memory":
        return make_server
    url = request.getfixturevalue("postgres_url")

    def start(**overrides: Any) -> LiveServer:
        return make_server(**{"database_url": url, **overrides})

    return start


def _ai(engine: str, **settings: Any) -> dict[str, Any]:
    """A server's overrides for an AI ``engine``: its provider as the server builds one from
    the settings (``build_provider``), the token ceiling included."""
    provider = build_provider(load_settings(provider=engine, **settings))
    return {"engine": provider, **settings}


@pytest.fixture
def anthropic() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic(api_key=KEY)
    with BackgroundServer(fake.app) as api:
        yield fake, api.url


@pytest.fixture
def runtime_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """For the Claude Code runtime: a fresh HOME, no credentials or settings of the machine."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "CLAUDE_")) or name == "CLAUDECODE":
            monkeypatch.delenv(name)


def _suggestion(n: int) -> dict[str, Any]:
    return {
        "title": f"Suggestion {n}",
        "rationale": f"Rationale {n}",
        "description": f"Description {n} of the collections page.",
        "implementationConsiderations": [f"Consideration {n}"],
        "evidence": [{"path": PAGE, "startLine": 1, "endLine": 1, "quote": QUOTE}],
        "effort": "small",
        "impact": "high",
    }


def _deliver(prefix: str = "") -> Turn:
    calls = [ToolCall(prefix + SUBMIT_TOOL_NAME, _suggestion(n), pieces=3) for n in (1, 2, 3)]
    finish = ToolCall(prefix + FINISH_TOOL_NAME, {"context": "Read the page."})
    return Turn(tool_calls=[*calls, finish])


def _samples(server: LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = server.http.get("/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _history_item(server: LiveServer, job_id: str) -> dict[str, Any]:
    listed = jobs(server).json()["data"]["jobs"]
    return next(item for item in listed if item["jobId"] == job_id)


# -- the run's ceiling --------------------------------------------------------------------------


def test_a_run_past_its_ceiling_ends_with_budget_exceeded_and_its_tokens_are_kept(
    runs_server: ServerFactory, anthropic: tuple[FakeAnthropic, str]
) -> None:
    fake, url = anthropic
    server = runs_server(
        **_ai(
            "anthropic",
            anthropic_api_key=KEY,
            anthropic_base_url=url,
            max_run_tokens=50,
            provider_retries=0,
        )
    )
    # message_start reports 100 input tokens: past 50 at the first report, before any text.
    fake.play([Turn(text=["Never ", "shown"], stall_after_text=True, delay_s=0.05)])
    job_id = server.create_job()
    streamed = server.stream(job_id)
    assert streamed.last.event == "error", streamed.raw
    error = streamed.last.json()
    assert error["code"] == "BUDGET_EXCEEDED"
    assert "50" in error["message"] and "FEATURE_PLANNER_MAX_RUN_TOKENS" in error["message"]
    assert "delta" not in streamed.names
    assert fake.disconnected.wait(5)  # the upstream request was closed

    data = status(server, job_id, wait=10).json()["data"]
    assert data["status"] == "failed" and data["error"]["code"] == "BUDGET_EXCEEDED"
    assert data["tokens"] == 101  # 100 in + 1 out, when it was stopped
    assert _history_item(server, job_id)["tokens"] == 101
    finished = (
        "feature_planner_jobs_finished_total",
        (("code", "BUDGET_EXCEEDED"), ("outcome", "failed")),
    )
    samples = _samples(server)
    assert samples[finished] == 1
    input_tokens = ("feature_planner_tokens_total", (("kind", "input"), ("provider", "anthropic")))
    assert samples[input_tokens] == 100


# -- the user's daily budget --------------------------------------------------------------------


def test_past_the_daily_budget_creates_answer_429_with_retry_after(
    runs_server: ServerFactory,
) -> None:
    probe = runs_server()
    first = probe.create_job(token=BOB)  # (with PostgreSQL the servers share the history)
    tokens = probe.stream(first, token=BOB).last.json()["tokenUsage"]
    per_run = tokens["inputTokens"] + tokens["outputTokens"]
    probe.close()

    # One run's worth and one more: after one run the user is under it, after two past it.
    server = runs_server(daily_user_tokens=per_run + 1)
    for _ in range(2):
        job_id = server.create_job()
        assert server.stream(job_id).last.event == "complete"
        assert _history_item(server, job_id)["tokens"] == per_run
    refused = server.create()
    assert refused.status_code == 429, refused.text
    body = refused.json()
    assert body["error"]["code"] == "DAILY_BUDGET_EXCEEDED"
    assert "FEATURE_PLANNER_DAILY_USER_TOKENS" in body["error"]["message"]
    assert str(per_run + 1) in body["error"]["message"]
    retry_after = int(refused.headers["retry-after"])
    # Once the first run is a day old the user is back under the budget.
    assert DAY_S - 120 < retry_after <= DAY_S
    assert server.create(token=BOB).status_code == 201  # another user's budget is their own
    samples = _samples(server)
    assert samples[("feature_planner_rate_limited_total", (("limit", "daily_budget"),))] == 1


def test_without_a_daily_budget_create_reads_no_history(
    runs_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = runs_server()
    assert server.service.daily_budget is None

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("create read the history without a daily budget")

    monkeypatch.setattr(server.service.history, "tokens_since", refuse)
    for _ in range(3):
        assert server.stream(server.create_job()).last.event == "complete"


def test_with_the_database_down_a_daily_budget_fails_closed(
    runs_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feature_planner.errors import StoreUnavailableError

    server = runs_server(daily_user_tokens=1000)

    async def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailableError("The job history database is unreachable; try again shortly")

    monkeypatch.setattr(server.service.history, "tokens_since", down)
    refused = server.create()
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "STORE_UNAVAILABLE"


# -- cost: the Claude Code runtime reports one ---------------------------------------------------


@pytest.mark.usefixtures("runtime_environment")
def test_the_runtimes_cost_reaches_complete_the_history_and_metrics(
    runs_server: ServerFactory, anthropic: tuple[FakeAnthropic, str]
) -> None:
    fake, url = anthropic
    server = runs_server(
        time_limit_s=60,
        **_ai(
            "claude-agent-sdk",
            anthropic_api_key=KEY,
            anthropic_base_url=url,
            model="claude-sonnet-4-5",
        ),
    )
    fake.play([_deliver("mcp__repository__")])
    job_id = server.create_job()
    streamed = server.stream(job_id)
    assert streamed.last.event == "complete", streamed.raw
    usage = streamed.last.json()["tokenUsage"]
    cost = usage["costUsd"]
    assert isinstance(cost, float) and cost > 0  # the runtime's total_cost_usd

    data = status(server, job_id, wait=10).json()["data"]
    assert data["result"]["tokenUsage"]["costUsd"] == cost
    assert data["costUsd"] == cost
    assert data["tokens"] == usage["inputTokens"] + usage["outputTokens"] + usage.get(
        "cacheReadInputTokens", 0
    ) + usage.get("cacheCreationInputTokens", 0)
    assert _history_item(server, job_id)["costUsd"] == cost
    samples = _samples(server)
    assert samples[("feature_planner_cost_usd_total", (("provider", "claude-agent-sdk"),))] == (
        pytest.approx(cost)
    )
    output = (
        "feature_planner_tokens_total",
        (("kind", "output"), ("provider", "claude-agent-sdk")),
    )
    assert samples[output] == usage["outputTokens"]


def test_a_provider_that_reports_no_cost_shows_none(
    runs_server: ServerFactory, anthropic: tuple[FakeAnthropic, str], repo: Path
) -> None:
    fake, url = anthropic
    server = runs_server(**_ai("anthropic", anthropic_api_key=KEY, anthropic_base_url=url))
    fake.play([_deliver()])
    job_id = server.create_job()
    complete = server.stream(job_id).last.json()
    assert complete["tokenUsage"] == {"inputTokens": 100, "outputTokens": 20}  # no costUsd
    item = _history_item(server, job_id)
    assert item["tokens"] == 120 and "costUsd" not in item
    assert not any(name == "feature_planner_cost_usd_total" for name, _ in _samples(server))
