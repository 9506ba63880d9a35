"""Follow-ups (DESIGN.md, "Act on a run"): a new job from a completed one, answered like
Phase 1 plus its parentJobId, every refusal, the create limit, idempotency, the history's
link, and the run itself — against a real server, in memory with SQLite and with Redis and
PostgreSQL (where another replica runs the follow-up from the records alone)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from feature_planner.database import Database
from feature_planner.history import HistoryEntry, HistoryStore
from feature_planner.models import JobState, SuggestionRequest
from feature_planner.serving import BackgroundServer
from tests.agent.anthropic_server import FakeAnthropic, ToolCall, Turn
from tests.conftest import ALICE, API, BOB, VALID_BODY, LiveServer, ServerFactory
from tests.test_agent_store import postgres_url  # noqa: F401 - a fixture

JOBS = "/api/feature-planner/jobs"
JSON = {"accept": "application/json"}
MESSAGE = "Not this one: something for mobile"


@pytest.fixture
def runs_server(make_server: ServerFactory, backend: str, request: Any) -> ServerFactory:
    """In memory the history is a SQLite file; with Redis it is PostgreSQL."""
    if backend == "memory":
        return make_server
    url = request.getfixturevalue("postgres_url")

    def start(**overrides: Any) -> LiveServer:
        return make_server(**{"database_url": url, **overrides})

    return start


def follow_up(
    server: LiveServer,
    job_id: str,
    body: Any = None,
    token: str = ALICE,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    content = json.dumps({"message": MESSAGE} if body is None else body)
    return server.http.post(
        f"{API}/{job_id}/follow-up",
        content=content,
        headers={"content-type": "application/json", **server.auth(token), **(headers or {})},
    )


def status(server: LiveServer, job_id: str, token: str = ALICE) -> dict[str, Any]:
    response = server.http.get(f"{API}/{job_id}", headers={**server.auth(token), **JSON})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def completed_job(server: LiveServer, body: dict[str, Any] | None = None) -> str:
    job_id = server.create_job(body)
    assert server.stream(job_id).last.event == "complete"
    return job_id


def error(response: httpx.Response) -> dict[str, Any]:
    payload = response.json()
    assert payload["success"] is False
    found: dict[str, Any] = payload["error"]
    return found


# -- the answer, the run, the history -------------------------------------------------------


def test_a_follow_up_is_answered_like_phase_1_streams_and_names_its_parent(
    runs_server: ServerFactory,
) -> None:
    server = runs_server()
    body = {**VALID_BODY, "additionalContext": "for shoppers"}
    parent = completed_job(server, body)
    response = follow_up(
        server, parent, {"message": "  split #2\x07 into steps ", "suggestionIndex": 1}
    )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert set(data) == {"jobId", "streamUrl", "expiresAt", "streamToken", "parentJobId"}
    child = data["jobId"]
    assert child != parent and data["parentJobId"] == parent
    assert data["streamUrl"] == f"{API}/{child}"
    assert response.headers["location"] == data["streamUrl"]
    assert "idempotent-replayed" not in response.headers

    streamed = server.stream(child)
    assert streamed.names[0] == "connected" and streamed.names[-1] == "complete"
    assert "delta" in streamed.names and "suggestion" in streamed.names
    # The stream token works for the follow-up, as for any job.
    watched = server.http.get(f"{API}/{child}", params={"token": data["streamToken"]}, headers=JSON)
    assert watched.status_code == 200 and watched.json()["data"]["status"] == "completed"

    read = status(server, child)
    assert read["parentJobId"] == parent
    assert read["input"] == body  # the parent's input, unchanged
    assert read["status"] == "completed"
    assert status(server, parent)["parentJobId"] is None
    listed = server.http.get(JOBS, headers=server.auth()).json()["data"]["jobs"]
    assert [(job["jobId"], job["parentJobId"]) for job in listed] == [
        (child, parent),
        (parent, None),
    ]


def test_a_follow_up_of_a_follow_up_names_its_own_parent(runs_server: ServerFactory) -> None:
    server = runs_server()
    first = completed_job(server)
    second = follow_up(server, first).json()["data"]["jobId"]
    assert server.stream(second).last.event == "complete"
    third = follow_up(server, second, {"message": "more like the first"})
    assert third.status_code == 201, third.text
    assert status(server, third.json()["data"]["jobId"])["parentJobId"] == second


def test_a_follow_up_counts_toward_the_create_limit(runs_server: ServerFactory) -> None:
    server = runs_server(create_limit=2)
    parent = completed_job(server)  # 1
    assert follow_up(server, parent).status_code == 201  # 2
    refused = follow_up(server, parent)
    assert refused.status_code == 429
    assert error(refused)["code"] == "RATE_LIMITED"
    assert int(refused.headers["retry-after"]) >= 1
    assert server.create().status_code == 429  # and Phase 1 shares the count
    assert follow_up(server, parent, token=BOB).status_code == 403  # another user's: not counted


def test_a_follow_up_is_refused_once_the_daily_budget_is_spent(runs_server: ServerFactory) -> None:
    server = runs_server(daily_user_tokens=1)
    parent = completed_job(server)  # the scripted run reports tokens: the budget is spent
    refused = follow_up(server, parent)
    assert refused.status_code == 429, refused.text
    assert error(refused)["code"] == "DAILY_BUDGET_EXCEEDED"
    assert int(refused.headers["retry-after"]) >= 1


def test_an_idempotency_key_gives_the_same_follow_up(runs_server: ServerFactory) -> None:
    server = runs_server(create_limit=3)
    parent = completed_job(server)
    key = {"idempotency-key": "follow-up-1"}
    first = follow_up(server, parent, headers=key)
    assert first.status_code == 201, first.text
    again = follow_up(server, parent, headers=key)
    assert again.status_code == 201
    assert again.json()["data"]["jobId"] == first.json()["data"]["jobId"]
    assert again.json()["data"]["parentJobId"] == parent
    assert again.headers["idempotent-replayed"] == "true"
    other = follow_up(server, parent, {"message": "something else"}, headers=key)
    assert other.status_code == 422
    assert error(other)["code"] == "IDEMPOTENCY_KEY_REUSED"
    # A replay made no job and used no limit: two creates are left of three.
    assert follow_up(server, parent).status_code == 201
    assert follow_up(server, parent).status_code == 429


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "message"),
        ({"message": ""}, "message"),
        ({"message": " \t\x01 "}, "message"),
        ({"message": "x" * 1001}, "message"),
        ({"message": 12}, "message"),
        ({"message": "ok", "suggestionIndex": -1}, "suggestionIndex"),
        ({"message": "ok", "suggestionIndex": "1"}, "suggestionIndex"),
        ({"message": "ok", "suggestionIndex": 1.5}, "suggestionIndex"),
        ({"message": "ok", "suggestionIndex": True}, "suggestionIndex"),
        ({"message": "ok", "suggestion": 1}, "suggestion"),
        ([], "body"),
    ],
)
def test_a_bad_body_value_is_422_naming_the_field(
    server: LiveServer, body: Any, field: str
) -> None:
    parent = completed_job(server)
    response = follow_up(server, parent, body)
    assert response.status_code == 422, response.text
    problem = error(response)
    assert problem["code"] == "VALIDATION_ERROR"
    assert [item["field"] for item in problem["fields"]] == [field]
    assert problem["fields"][0]["message"]


def test_a_message_of_1000_characters_after_trimming_is_taken(server: LiveServer) -> None:
    parent = completed_job(server)
    assert follow_up(server, parent, {"message": " " + "x" * 1000 + "\n"}).status_code == 201


def test_body_refusals_are_those_of_phase_1(server: LiveServer) -> None:
    parent = completed_job(server)
    url = f"{API}/{parent}/follow-up"
    not_json = server.http.post(
        url, content=b"{nope", headers={**server.auth(), "content-type": "application/json"}
    )
    assert (not_json.status_code, error(not_json)["code"]) == (400, "INVALID_JSON")
    as_text = server.http.post(
        url, content=b'{"message": "hi"}', headers={**server.auth(), "content-type": "text/plain"}
    )
    assert as_text.status_code == 415
    too_big = follow_up(server, parent, {"message": "x" * 20_000})
    assert too_big.status_code == 413


def test_only_a_completed_job_can_be_followed_up(runs_server: ServerFactory) -> None:
    server = runs_server()
    pending = server.create_job()
    refused = follow_up(server, pending)
    assert (refused.status_code, error(refused)["code"]) == (409, "JOB_NOT_COMPLETE")
    assert "pending" in error(refused)["message"]
    cancelled = server.create_job()
    assert server.delete(cancelled).status_code == 202
    assert follow_up(server, cancelled).status_code == 409
    failing = runs_server(scripted_fail_at=0)
    failed = failing.create_job()
    assert failing.stream(failed).last.event == "error"
    assert error(follow_up(failing, failed))["code"] == "JOB_NOT_COMPLETE"


def test_an_index_with_no_suggestion_is_404(server: LiveServer) -> None:
    parent = completed_job(server)
    count = len(status(server, parent)["result"]["suggestions"])
    last = follow_up(server, parent, {"message": "why this one?", "suggestionIndex": count - 1})
    assert last.status_code == 201
    whole = follow_up(server, parent, {"message": "why this one?", "suggestionIndex": 1.0})
    assert whole.status_code == 201, whole.text  # a whole number, as JSON Schema says
    beyond = follow_up(server, parent, {"message": "why this one?", "suggestionIndex": count})
    assert beyond.status_code == 404
    problem = error(beyond)
    assert problem["code"] == "SUGGESTION_NOT_FOUND"
    assert f"{count} suggestions" in problem["message"]


def test_who_may_follow_up(server: LiveServer) -> None:
    parent = completed_job(server)
    assert follow_up(server, "not-a-uuid").status_code == 400
    assert follow_up(server, "7c3f4c1e-1b7d-4c59-9d7a-0c2b7f7f4e11").status_code == 404
    assert error(follow_up(server, parent, token=BOB))["code"] == "FORBIDDEN"
    assert follow_up(server, parent, token="nope").status_code == 401
    stream_token = server.create().json()["data"]["streamToken"]
    by_stream_token = server.http.post(
        f"{API}/{parent}/follow-up", params={"token": stream_token}, json={"message": "hi"}
    )
    assert by_stream_token.status_code == 401  # it only watches its own job
    share = server.http.post(f"{API}/{parent}/share", headers=server.auth())
    token = share.json()["data"]["token"]
    for shared in (
        server.http.post(
            f"{API}/{parent}/follow-up", params={"token": token}, json={"message": "hi"}
        ),
        follow_up(server, parent, token=token),
    ):
        assert (shared.status_code, error(shared)["code"]) == (403, "SHARE_READ_ONLY")
    cross_site = server.http.post(
        f"{API}/{parent}/follow-up",
        json={"message": "hi"},
        headers={**server.login_cookie(), "origin": "https://evil.example"},
    )
    assert (cross_site.status_code, error(cross_site)["code"]) == (403, "CSRF_REJECTED")


# -- through a model: the parent's context reaches the follow-up, on any replica -------------

PAGE = "src/app/collections/page.tsx"
PAGE_TEXT = (
    "export default async function CollectionsPage() {\n"
    "  const collections = await fetch('/api/collections').then(r => r.json())\n"
    '  return <ul className="grid grid-cols-4">{collections.map(c => <li>{c.name}</li>)}</ul>\n'
    "}\n"
)
QUOTE = 'return <ul className="grid grid-cols-4">'
KEY = "sk-ant-follow-up-test"


def _submission(n: int) -> dict[str, Any]:
    return {
        "title": f"Collections idea {n}",
        "rationale": f"Rationale {n}",
        "description": f"Description {n}",
        "implementationConsiderations": [f"Step {n}"],
        "evidence": [{"path": PAGE, "startLine": 3, "endLine": 3, "quote": QUOTE}],
        "effort": "small",
        "impact": "high",
    }


def _run(read: bool) -> list[Turn]:
    """A run: (read the page,) submit three suggestions, finish."""
    reads = [Turn(text=["Reading the page."], tool_calls=[ToolCall("Read", {"path": PAGE})])]
    return [
        *(reads if read else []),
        Turn(
            text=["Suggesting."],
            tool_calls=[ToolCall("submit_suggestion", _submission(n)) for n in (1, 2, 3)],
        ),
        Turn(tool_calls=[ToolCall("finish", {"context": "Read the page."})]),
    ]


@pytest.fixture
def anthropic() -> Iterator[tuple[FakeAnthropic, str]]:
    fake = FakeAnthropic(api_key=KEY)
    with BackgroundServer(fake.app) as api:
        yield fake, api.url


def test_the_follow_up_starts_from_the_parents_suggestions_and_files_on_any_replica(
    runs_server: ServerFactory, backend: str, repo: Path, anthropic: tuple[FakeAnthropic, str]
) -> None:
    (repo / PAGE).write_text(PAGE_TEXT)
    fake, url = anthropic
    settings = {"provider": "anthropic", "anthropic_api_key": KEY, "anthropic_base_url": url}
    creating = runs_server(**settings)
    # With Redis, another replica (sharing Redis and PostgreSQL) runs the follow-up.
    running = runs_server(**settings) if backend == "redis" else creating
    fake.play(_run(read=True))
    parent = completed_job(creating)
    parent_result = status(creating, parent)["result"]

    fake.play(_run(read=False))  # it reads nothing: the page's text is in its first message
    response = follow_up(creating, parent, {"message": MESSAGE, "suggestionIndex": 1})
    assert response.status_code == 201, response.text
    child = response.json()["data"]["jobId"]
    streamed = running.stream(child)
    assert streamed.last.event == "complete", streamed.raw
    assert "activity" not in streamed.names
    result = streamed.last.json()
    assert len(result["suggestions"]) == 3
    assert result["evidenceStats"]["verified"] == 3  # cited from the given text, and checked

    first = fake.requests[0].body["messages"][0]["content"]
    text = first if isinstance(first, str) else "".join(part["text"] for part in first)
    assert MESSAGE in text
    assert 'suggestion 2 ("Collections idea 2")' in text
    for suggestion in parent_result["suggestions"]:
        assert suggestion["title"] in text
    assert f"{PAGE}:3-3" in text  # the parent's evidence
    assert "     3\t" + PAGE_TEXT.splitlines()[2] in text  # the file's text, numbered
    assert status(running, child)["parentJobId"] == parent

    # The child was given the page's text, so its own follow-up starts from the page too.
    fake.play(_run(read=False))
    again = follow_up(running, child, {"message": "more like this"})
    assert again.status_code == 201, again.text
    assert creating.stream(again.json()["data"]["jobId"]).last.event == "complete"
    first = fake.requests[0].body["messages"][0]["content"]
    text = first if isinstance(first, str) else "".join(part["text"] for part in first)
    assert "more like this" in text and "Collections idea 3" in text
    assert "     3\t" + PAGE_TEXT.splitlines()[2] in text


# -- what each run read, kept ---------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def history(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[HistoryStore]:
    url = (
        f"sqlite:///{tmp_path / 'history.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    database = Database(url)
    await database.start()  # migrated to head: 0004 adds files_read
    store = HistoryStore(database, retention_days=30, retry_initial_s=0.01)
    await store.start()
    yield store
    await store.close()
    await database.close()


async def test_the_files_a_run_read_are_kept_and_a_later_repair_keeps_them(
    history: HistoryStore,
) -> None:
    now = int(time.time() * 1000)
    request = SuggestionRequest.model_validate(VALID_BODY)
    done = HistoryEntry(
        "job-1", "alice", JobState.COMPLETED, request, now, finished_at_ms=now + 5,
        parent_job_id="job-0", files_read=(PAGE, "README.md"),
    )  # fmt: skip
    history.record(done)
    await history.flushed()
    kept = await history.get("job-1")
    assert kept is not None and kept.files_read == (PAGE, "README.md")
    assert kept.parent_job_id == "job-0"
    # Another replica repairs the row from the job's final event, which knows no files.
    history.record(replace(done, files_read=None, last_event_id=9))
    await history.flushed()
    repaired = await history.get("job-1")
    assert repaired is not None and repaired.last_event_id == 9
    assert repaired.files_read == (PAGE, "README.md")
    history.record(replace(done, job_id="job-2", files_read=None))
    await history.flushed()
    never = await history.get("job-2")
    assert never is not None and never.files_read is None
