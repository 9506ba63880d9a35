"""``feature-planner follow-up``, ``show --markdown`` and ``issue``, and what the terminal
says about a run's budget, run as real subprocesses against a real server."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from feature_planner.client import FeaturePlannerClient
from feature_planner.models import CompleteEvent, JobState
from feature_planner.terminal import print_result
from tests.agent.openai_server import API_KEY as OPENAI_KEY
from tests.agent.openai_server import MODEL as OPENAI_MODEL
from tests.agent.openai_server import FakeOpenAI, Reply
from tests.agent.openai_server import serve as serve_openai
from tests.github_server import OWNER_REPO, TOKEN, FakeGitHub, bad_credentials, serve_github
from tests.test_cli import cli_env, run_cli
from tests.test_cli_runs import as_alice, finished_job, history_server, job_id_of
from tests.test_client import REQUEST


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "app" / "collections").mkdir(parents=True)
    (repo / "README.md").write_text("# Shop\n\nA small shop with collections and a cart.\n")
    (repo / "app" / "collections" / "page.tsx").write_text(
        "export default function CollectionsPage() {\n  return <ul />\n}\n"
    )
    return repo


@pytest.fixture
def server(repository: Path) -> Iterator[str]:
    with history_server(repository) as background:
        yield background.url


def completed_run(url: str) -> tuple[str, CompleteEvent]:
    envelopes = finished_job(url)
    final = envelopes[-1].event
    assert isinstance(final, CompleteEvent)
    return job_id_of(envelopes), final


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def no_traceback(*results: Any) -> None:
    for result in results:
        assert "Traceback" not in result.stderr


# --- follow-up --------------------------------------------------------------------------------


def test_follow_up_json_streams_the_new_job_and_names_its_parent(
    server: str, repository: Path
) -> None:
    parent, complete = completed_run(server)
    last = len(complete.suggestions)

    result = run_cli(
        "follow-up", parent, "why this one?", "--suggestion", str(last), "--json",
        *as_alice(server), cwd=repository,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    events = json_lines(result.stdout)  # nothing but the events on stdout
    assert events[0]["event"] == "connected"
    child = events[0]["data"]["jobId"]
    assert child != parent
    assert events[-1]["event"] == "complete"
    assert [e["id"] for e in events[1:]] == list(range(1, len(events)))
    assert f"Follow-up of job {parent}, suggestion {last}: job {child}" in result.stderr
    with FeaturePlannerClient(server, "tok-a") as client:
        status = client.get(child)
    assert status.parent_job_id == parent
    assert status.status is JobState.COMPLETED


def test_follow_up_shows_the_cards_as_suggest_does(server: str, repository: Path) -> None:
    parent, _ = completed_run(server)

    result = run_cli("follow-up", parent, "something for mobile", *as_alice(server), cwd=repository)

    assert result.returncode == 0, result.stderr
    streamed, _, rest = result.stdout.partition("\n\n")
    assert streamed  # the live text (stdout is not a terminal: printed as it comes)
    assert rest.startswith("1. ")
    assert re.search(r"scripted · \S+ · \d+ input / \d+ output tokens · [\d.]+ s", rest)
    assert f"Follow-up of job {parent}: job " in result.stderr


def test_follow_up_numbers_suggestions_from_1(server: str, repository: Path) -> None:
    parent, complete = completed_run(server)
    count = len(complete.suggestions)

    beyond = run_cli(
        "follow-up", parent, "why?", "--suggestion", str(count + 1), *as_alice(server),
        cwd=repository,
    )  # fmt: skip
    zero = run_cli(
        "follow-up", parent, "why?", "--suggestion", "0", *as_alice(server), cwd=repository
    )

    assert beyond.returncode == 3
    line = beyond.stderr.strip()
    assert line == (
        f"SUGGESTION_NOT_FOUND: job {parent} has no suggestion {count + 1} "
        f"(feature-planner show {parent} numbers them from 1)"
    )
    assert zero.returncode == 2
    assert "--suggestion" in zero.stderr
    for result in (beyond, zero):
        assert result.stdout == ""
    no_traceback(beyond, zero)


def test_follow_up_refusals(server: str, repository: Path) -> None:
    with FeaturePlannerClient(server, "tok-a") as client:
        pending = client.create_job(REQUEST).job_id
    unknown_id = str(uuid.uuid4())
    not_complete = run_cli("follow-up", pending, "why?", *as_alice(server), cwd=repository)
    unknown = run_cli("follow-up", unknown_id, "why?", *as_alice(server), "--json", cwd=repository)
    not_an_id = run_cli("follow-up", "nope", "why?", *as_alice(server), cwd=repository)
    empty = run_cli("follow-up", pending, "   ", *as_alice(server), cwd=repository)
    too_long = run_cli("follow-up", pending, "x" * 1001, *as_alice(server), cwd=repository)
    bad_token = run_cli(
        "follow-up", pending, "why?", "--server", server, "--token", "wrong", cwd=repository
    )

    assert not_complete.returncode == 3
    assert not_complete.stderr.startswith("JOB_NOT_COMPLETE: ")
    assert f"(job {pending})" in not_complete.stderr
    assert unknown.returncode == 3
    assert unknown.stderr.startswith("JOB_NOT_FOUND: ") and unknown_id in unknown.stderr
    assert not_an_id.returncode == 2 and "not a job id" in not_an_id.stderr
    assert empty.returncode == 2 and "MESSAGE must be 1 to 1000 characters" in empty.stderr
    assert too_long.returncode == 2 and "MESSAGE must be 1 to 1000 characters" in too_long.stderr
    assert bad_token.returncode == 3 and "--token" in bad_token.stderr
    for result in (not_complete, unknown, not_an_id, empty, too_long, bad_token):
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1  # one line
    no_traceback(not_complete, unknown, not_an_id, empty, too_long, bad_token)
    with FeaturePlannerClient(server, "tok-a") as client:
        assert [job.job_id for job in client.iter_jobs()] == [pending]  # nothing was made


def test_follow_up_in_process_follows_a_run_of_suggest(repository: Path) -> None:
    """Without --server: the service in-process (offline engine), whose history keeps the
    ``cli`` user's runs across commands."""
    env = cli_env(
        FEATURE_PLANNER_OFFLINE_INTERVAL_MS="0",
        FEATURE_PLANNER_REPOSITORY=str(repository),
        FEATURE_PLANNER_DATABASE_URL=f"sqlite:///{repository.parent}/in-process.db",
    )
    suggested = run_cli("suggest", "Collections page", "--json", cwd=repository, env=env)
    assert suggested.returncode == 0, suggested.stderr
    parent = json_lines(suggested.stdout)[0]["data"]["jobId"]

    followed = run_cli(
        "follow-up", parent, "something for mobile", "--json", cwd=repository, env=env
    )
    listed = run_cli("runs", "--json", cwd=repository, env=env)

    assert followed.returncode == 0, followed.stderr
    events = json_lines(followed.stdout)
    child = events[0]["data"]["jobId"]
    assert events[-1]["event"] == "complete"
    assert f"Follow-up of job {parent}: job {child}" in followed.stderr
    runs = json.loads(listed.stdout)["jobs"]
    assert [(run["jobId"], run["parentJobId"]) for run in runs] == [(child, parent), (parent, None)]


# --- show --markdown --------------------------------------------------------------------------


def test_show_markdown_prints_the_export(server: str, repository: Path) -> None:
    job_id, complete = completed_run(server)
    with FeaturePlannerClient(server, "tok-a") as client:
        exported = client.export(job_id)

    result = run_cli("show", job_id, "--markdown", *as_alice(server), cwd=repository)

    assert result.returncode == 0, result.stderr
    expected = exported if exported.endswith("\n") else exported + "\n"
    assert result.stdout == expected  # byte for byte, nothing else
    assert complete.suggestions[0].title in result.stdout
    assert result.stderr == ""


def test_show_markdown_of_a_pending_job_runs_it_first(server: str, repository: Path) -> None:
    with FeaturePlannerClient(server, "tok-a") as client:
        job = client.create_job(REQUEST)

    result = run_cli("show", job.job_id, "--markdown", *as_alice(server), cwd=repository)

    assert result.returncode == 0, result.stderr
    with FeaturePlannerClient(server, "tok-a") as client:
        assert client.get(job.job_id).status is JobState.COMPLETED
        exported = client.export(job.job_id)
    assert result.stdout.rstrip("\n") == exported.rstrip("\n")


def test_show_markdown_of_a_failed_job_and_bad_usage(repository: Path) -> None:
    with history_server(repository, scripted_fail_at=5) as background:
        job_id = job_id_of(finished_job(background.url))
        failed = run_cli("show", job_id, "--markdown", *as_alice(background.url), cwd=repository)
        both = run_cli(
            "show", job_id, "--markdown", "--json", *as_alice(background.url), cwd=repository
        )

    assert failed.returncode == 1
    assert failed.stdout == ""
    assert "PROVIDER_ERROR" in failed.stderr
    assert both.returncode == 2
    assert "--json and --markdown: choose one" in both.stderr
    no_traceback(failed, both)


# --- issue ------------------------------------------------------------------------------------


def test_issue_without_github_settings_says_what_is_missing(server: str, repository: Path) -> None:
    job_id, _ = completed_run(server)

    result = run_cli("issue", job_id, "1", *as_alice(server), cwd=repository)

    assert result.returncode == 3
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line
    assert line.startswith("NOT_CONFIGURED: ")
    assert "FEATURE_PLANNER_GITHUB_TOKEN" in line
    no_traceback(result)


def test_issue_prints_the_url_once_filed_and_the_same_issue_again(repository: Path) -> None:
    fake = FakeGitHub()
    with (
        serve_github(fake) as api_url,
        history_server(
            repository, github_token=TOKEN, github_repository=OWNER_REPO, github_api_url=api_url
        ) as background,
    ):
        job_id, complete = completed_run(background.url)
        alice = as_alice(background.url)
        filed = run_cli("issue", job_id, "2", *alice, cwd=repository)
        again = run_cli("issue", job_id, "2", *alice, cwd=repository)
        beyond = run_cli(
            "issue", job_id, str(len(complete.suggestions) + 1), *alice, cwd=repository
        )
        fake.refuse_next(bad_credentials())
        refused = run_cli("issue", job_id, "1", *alice, cwd=repository)

    assert filed.returncode == 0, filed.stderr
    url = f"{fake.issues[0]['html_url']}\n"
    assert filed.stdout == url  # the URL alone on stdout
    assert filed.stderr.strip() == "Filed as issue #1"
    assert fake.issues[0]["title"] == complete.suggestions[1].title  # N counts from 1
    assert again.returncode == 0, again.stderr
    assert again.stdout == url
    assert again.stderr.strip() == "Filed before, as issue #1"
    assert len(fake.issues) == 1
    assert beyond.returncode == 3
    assert beyond.stderr.strip() == (
        f"SUGGESTION_NOT_FOUND: job {job_id} has no suggestion {len(complete.suggestions) + 1} "
        f"(feature-planner show {job_id} numbers them from 1)"
    )
    assert refused.returncode == 3
    line = refused.stderr.strip()
    assert "\n" not in line
    assert line.startswith("UPSTREAM_ERROR: ") and "Bad credentials" in line
    for result in (beyond, refused):
        assert result.stdout == ""
        assert TOKEN not in result.stderr
    no_traceback(filed, again, beyond, refused)


def test_issue_usage_errors(server: str, repository: Path) -> None:
    zero = run_cli("issue", str(uuid.uuid4()), "0", *as_alice(server), cwd=repository)
    not_an_id = run_cli("issue", "nope", "1", *as_alice(server), cwd=repository)

    assert zero.returncode == 2
    assert not_an_id.returncode == 2 and "not a job id" in not_an_id.stderr
    no_traceback(zero, not_an_id)


# --- budgets ----------------------------------------------------------------------------------


def test_a_run_stopped_by_its_token_ceiling_says_so(repository: Path) -> None:
    """Through the ``openai`` provider (its real SDK) on the local fake model server: its
    first usage report passes the ceiling."""
    reply = Reply(text=["Reading the page and its components"], usage=(100, 20))
    fake = FakeOpenAI([reply, reply])  # one per run
    with (
        serve_openai(fake) as base_url,
        history_server(
            repository,
            provider="openai",
            openai_api_key=OPENAI_KEY,
            openai_base_url=base_url,
            model=OPENAI_MODEL,
            provider_retries=0,
            max_run_tokens=50,
        ) as background,
    ):
        result = run_cli("suggest", "Collections page", *as_alice(background.url), cwd=repository)
        as_json = run_cli(
            "suggest", "Collections page", "--json", *as_alice(background.url), cwd=repository
        )

    assert result.returncode == 1
    line = result.stderr.strip()
    assert "\n" not in line  # one line, the run's own words
    assert re.fullmatch(
        r"Error BUDGET_EXCEEDED: The run was stopped after \d+ tokens: it passed its ceiling "
        r"of 50 tokens \(FEATURE_PLANNER_MAX_RUN_TOKENS\); raise the setting or narrow the request",
        line,
    )
    assert as_json.returncode == 1
    final = json_lines(as_json.stdout)[-1]
    assert final["event"] == "error" and final["data"]["code"] == "BUDGET_EXCEEDED"
    no_traceback(result, as_json)


def test_a_spent_daily_budget_says_when_to_retry(repository: Path) -> None:
    with history_server(repository, daily_user_tokens=1) as background:
        completed_run(background.url)  # spends it
        result = run_cli("suggest", "Checkout", *as_alice(background.url), cwd=repository)

    assert result.returncode == 3
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line
    assert line.startswith("DAILY_BUDGET_EXCEEDED: ")
    assert re.search(r"try again at \d\d:\d\d \(in \d+ (s|min|h)", line)
    no_traceback(result)


def test_the_result_line_shows_tokens_and_cost_when_reported() -> None:
    complete = CompleteEvent.model_validate(
        {
            "suggestions": [],
            "context": "",
            "tokenUsage": {"inputTokens": 1200, "outputTokens": 340, "costUsd": 0.01234},
            "executionTimeMs": 2500,
            "retryCount": 0,
            "provider": "anthropic",
            "model": "claude-sonnet-4-6",
            "timestamp": 1,
        }
    )
    without_cost = complete.model_copy(
        update={"token_usage": complete.token_usage.model_validate({"inputTokens": 5})}
    )
    out = io.StringIO()
    console = Console(file=out, width=200)

    print_result(console, complete)
    print_result(console, without_cost)

    assert out.getvalue().splitlines() == [
        "anthropic · claude-sonnet-4-6 · 1200 input / 340 output tokens · $0.0123 · 2.5 s",
        "anthropic · claude-sonnet-4-6 · 5 input / 0 output tokens · 2.5 s",
    ]
