"""The Python clients acting on a run (DESIGN.md, "Act on a run"): ``follow_up``, ``export``
and ``file_issue``, against a real uvicorn; the parsing of their answers on a mock
transport."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from feature_planner.client import (
    AsyncFeaturePlannerClient,
    EventEnvelope,
    FeaturePlannerClient,
    IssueLink,
    UnexpectedResponseError,
)
from feature_planner.errors import (
    JobForbiddenError,
    JobNotCompleteError,
    JobNotFoundError,
    NotConfiguredError,
    RequestValidationError,
    SuggestionNotFoundError,
    UpstreamError,
)
from feature_planner.models import CompleteEvent, ConnectedEvent, JobState
from tests.github_server import OWNER_REPO, TOKEN, FakeGitHub, bad_credentials, serve_github
from tests.test_client import REQUEST, start_server

API = "/api/feature-planner/suggest-feature"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    background = start_server(tmp_path, database_url=f"sqlite:///{tmp_path}/history.db")
    try:
        yield background.url
    finally:
        background.stop()


def run_to_end(client: FeaturePlannerClient, job: Any) -> list[EventEnvelope]:
    return list(client.stream_envelopes(job))


def completed(client: FeaturePlannerClient) -> tuple[str, CompleteEvent]:
    """A job of alice's, run to its end: its id and its ``complete``."""
    job = client.create_job(REQUEST)
    final = run_to_end(client, job)[-1].event
    assert isinstance(final, CompleteEvent)
    return job.job_id, final


# --- follow_up --------------------------------------------------------------------------------


def test_follow_up_makes_a_new_job_that_streams_and_names_its_parent(server: str) -> None:
    with FeaturePlannerClient(server, "tok-a") as client:
        parent, _ = completed(client)
        child = client.follow_up(parent, "why #2?", suggestion_index=1)
        envelopes = run_to_end(client, child)
        status = client.get(child.job_id)
        listed = client.jobs(limit=2).jobs

    assert child.parent_job_id == parent
    assert child.job_id != parent
    assert uuid.UUID(child.job_id).version == 4
    assert child.stream_url == f"{API}/{child.job_id}"
    assert not child.replayed and child.idempotency_key
    connected = envelopes[0].event
    assert isinstance(connected, ConnectedEvent) and connected.job_id == child.job_id
    final = envelopes[-1].event
    assert isinstance(final, CompleteEvent) and final.suggestions
    assert status.status is JobState.COMPLETED
    assert status.parent_job_id == parent
    assert status.input == REQUEST  # it starts from its parent's input
    assert [(job.job_id, job.parent_job_id) for job in listed] == [
        (child.job_id, parent),
        (parent, None),
    ]


def test_follow_up_with_the_same_key_gives_the_same_job(server: str) -> None:
    with FeaturePlannerClient(server, "tok-a") as client:
        parent, _ = completed(client)
        first = client.follow_up(parent, "something for mobile", idempotency_key="follow-1")
        again = client.follow_up(parent, "something for mobile", idempotency_key="follow-1")
        other = client.follow_up(parent, "something for mobile")

    assert again.job_id == first.job_id and again.replayed and not first.replayed
    assert again.parent_job_id == parent
    assert other.job_id != first.job_id


def test_follow_up_refusals(server: str) -> None:
    with (
        FeaturePlannerClient(server, "tok-a") as alice,
        FeaturePlannerClient(server, "tok-b") as bob,
    ):
        parent, complete = completed(alice)
        pending = alice.create_job(REQUEST).job_id
        with pytest.raises(JobNotCompleteError):
            alice.follow_up(pending, "why?")
        with pytest.raises(SuggestionNotFoundError):
            alice.follow_up(parent, "why?", suggestion_index=len(complete.suggestions))
        with pytest.raises(RequestValidationError) as empty:
            alice.follow_up(parent, "")
        with pytest.raises(RequestValidationError) as long:
            alice.follow_up(parent, "x" * 1001)
        with pytest.raises(RequestValidationError) as negative:
            alice.follow_up(parent, "why?", suggestion_index=-1)
        with pytest.raises(JobNotFoundError):
            alice.follow_up(str(uuid.uuid4()), "why?")
        with pytest.raises(JobForbiddenError):
            bob.follow_up(parent, "why?")
        listed = [job.job_id for job in alice.iter_jobs()]

    assert [item["field"] for item in empty.value.fields] == ["message"]
    assert [item["field"] for item in long.value.fields] == ["message"]
    assert [item["field"] for item in negative.value.fields] == ["suggestionIndex"]
    assert listed == [pending, parent]  # no refused follow-up made a job


async def test_async_follow_up_export_and_file_issue(server: str) -> None:
    async with AsyncFeaturePlannerClient(server, "tok-a") as client:
        job = await client.create_job(REQUEST)
        final = [envelope async for envelope in client.stream_envelopes(job)][-1].event
        child = await client.follow_up(
            job.job_id, "split #1 into smaller steps", suggestion_index=0
        )
        streamed = [envelope.name async for envelope in client.stream_envelopes(child)]
        markdown = await client.export(job.job_id)
        document = await client.export(job.job_id, "json")
        with pytest.raises(NotConfiguredError):
            await client.file_issue(job.job_id, 0)

    assert isinstance(final, CompleteEvent)
    assert child.parent_job_id == job.job_id
    assert streamed[0] == "connected" and streamed[-1] == "complete"
    assert all(suggestion.title in markdown for suggestion in final.suggestions)
    assert isinstance(document, dict)


# --- export -----------------------------------------------------------------------------------


def raw_export(server: str, token: str, job_id: str, format: str) -> httpx.Response:
    return httpx.get(
        f"{server}{API}/{job_id}/export",
        params={"format": format},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_export_returns_the_documents_as_the_server_sent_them(server: str) -> None:
    with FeaturePlannerClient(server, "tok-a") as client:
        job_id, complete = completed(client)
        markdown = client.export(job_id)
        also_markdown = client.export(job_id, "markdown")
        document = client.export(job_id, "json")
    raw_markdown = raw_export(server, "tok-a", job_id, "markdown")
    raw_json = raw_export(server, "tok-a", job_id, "json")

    assert isinstance(markdown, str)
    assert markdown == also_markdown
    assert markdown.encode() == raw_markdown.content  # byte for byte
    for suggestion in complete.suggestions:
        assert suggestion.title in markdown
    assert document == json.loads(raw_json.content)
    assert "attachment" in raw_markdown.headers["content-disposition"]
    assert json.dumps(document).count(complete.suggestions[0].title) >= 1


def test_export_refusals_and_a_share_token_reads_it(server: str) -> None:
    with (
        FeaturePlannerClient(server, "tok-a") as alice,
        FeaturePlannerClient(server, "tok-b") as bob,
    ):
        job_id, _ = completed(alice)
        pending = alice.create_job(REQUEST).job_id
        with pytest.raises(JobNotCompleteError):
            alice.export(pending)
        with pytest.raises(RequestValidationError) as bad_format:
            alice.export(job_id, "pdf")  # type: ignore[call-overload]
        with pytest.raises(JobNotFoundError):
            alice.export(str(uuid.uuid4()), "json")
        with pytest.raises(JobForbiddenError):
            bob.export(job_id)
        link = alice.share(job_id)
        with FeaturePlannerClient(server, link.token) as viewer:
            shared = viewer.export(job_id)
        mine = alice.export(job_id)

    assert [item["field"] for item in bad_format.value.fields] == ["format"]
    assert shared == mine


# --- file_issue -------------------------------------------------------------------------------


def test_file_issue_without_github_settings_is_not_configured(server: str) -> None:
    with FeaturePlannerClient(server, "tok-a") as client:
        job_id, _ = completed(client)
        with pytest.raises(NotConfiguredError) as info:
            client.file_issue(job_id, 0)

    assert info.value.status == 501
    assert "FEATURE_PLANNER_GITHUB" in info.value.message  # it names what to set


def test_file_issue_files_once_and_answers_the_first_issue_again(tmp_path: Path) -> None:
    fake = FakeGitHub()
    with serve_github(fake) as api_url:
        background = start_server(
            tmp_path,
            database_url=f"sqlite:///{tmp_path}/history.db",
            github_token=TOKEN,
            github_repository=OWNER_REPO,
            github_api_url=api_url,
        )
        try:
            with (
                FeaturePlannerClient(background.url, "tok-a") as alice,
                FeaturePlannerClient(background.url, "tok-b") as bob,
            ):
                job_id, complete = completed(alice)
                first = alice.file_issue(job_id, 0)
                again = alice.file_issue(job_id, 0)
                second = alice.file_issue(job_id, 1)
                with pytest.raises(SuggestionNotFoundError):
                    alice.file_issue(job_id, len(complete.suggestions))
                with pytest.raises(JobNotCompleteError):
                    alice.file_issue(alice.create_job(REQUEST).job_id, 0)
                with pytest.raises(JobForbiddenError):
                    bob.file_issue(job_id, 0)
                fake.refuse_next(bad_credentials())
                with pytest.raises(UpstreamError) as refused:
                    alice.file_issue(job_id, 2)
        finally:
            background.stop()

    assert len(complete.suggestions) >= 3
    assert first.created and first.number == 1
    assert first.url.endswith(f"/{OWNER_REPO}/issues/1")
    assert again == first.model_copy(update={"created": False})  # the first issue, not filed again
    assert second.created and second.number == 2
    assert [issue["title"] for issue in fake.issues] == [
        complete.suggestions[0].title,
        complete.suggestions[1].title,
    ]
    assert refused.value.status == 502
    assert "Bad credentials" in refused.value.message  # GitHub's own words
    assert TOKEN not in refused.value.message


# --- the answers' parsing, on a mock transport ------------------------------------------------

JOB_ID = "6f1c2a4e-8d4b-4c1e-9a57-0c1d2e3f4a5b"
CHILD_ID = "0b7a1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"


def answering(
    answers: list[httpx.Response | Exception],
) -> tuple[httpx.Client, list[httpx.Request]]:
    """A mock server answering each request with the next of ``answers``."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[len(seen) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def test_follow_up_sends_its_body_and_key_and_retries_with_the_same_key() -> None:
    created = {
        "jobId": CHILD_ID,
        "streamUrl": f"{API}/{CHILD_ID}",
        "expiresAt": 1,
        "parentJobId": JOB_ID,
    }
    http, seen = answering(
        [
            httpx.ConnectError("refused"),
            httpx.Response(201, json={"success": True, "data": created}),
            httpx.Response(201, json={"success": True, "data": created}),
        ]
    )
    with (
        http,
        FeaturePlannerClient("http://t", "tok", http_client=http, reconnect_delay=0) as client,
    ):
        child = client.follow_up(JOB_ID, "why #2?", suggestion_index=1)
        whole_run = client.follow_up(JOB_ID, "something for mobile", idempotency_key="k-1")

    assert [request.url.path for request in seen] == [f"{API}/{JOB_ID}/follow-up"] * 3
    assert [json.loads(request.content) for request in seen] == [
        {"message": "why #2?", "suggestionIndex": 1},
        {"message": "why #2?", "suggestionIndex": 1},
        {"message": "something for mobile"},  # no index: about the whole run
    ]
    keys = [request.headers["idempotency-key"] for request in seen]
    assert keys[0] == keys[1] == child.idempotency_key and keys[2] == "k-1"
    assert child.parent_job_id == JOB_ID and child.job_id == CHILD_ID
    assert child.to_wire() == created
    assert whole_run.idempotency_key == "k-1"


def test_file_issue_says_whether_it_filed_it_now() -> None:
    data: dict[str, Any] = {"url": "https://github.com/acme/shop/issues/7", "number": 7}
    http, seen = answering(
        [
            httpx.Response(201, json={"success": True, "data": data}),
            httpx.Response(200, json={"success": True, "data": data}),
        ]
    )
    with http, FeaturePlannerClient("http://t", "tok", http_client=http) as client:
        first = client.file_issue(JOB_ID, 2)
        again = client.file_issue(JOB_ID, 2)

    assert first == IssueLink(url=data["url"], number=7, created=True)
    assert again.created is False and again.number == 7 and again.url == data["url"]
    assert first.to_wire() == data  # ``created`` is not wire data
    assert [(r.method, r.url.path) for r in seen] == [
        ("POST", f"{API}/{JOB_ID}/suggestions/2/issue")
    ] * 2


@pytest.mark.parametrize(
    ("answer", "format"),
    [
        (
            httpx.Response(200, text="<html>proxy</html>", headers={"content-type": "text/html"}),
            "markdown",
        ),
        (httpx.Response(200, text="# Run\n", headers={"content-type": "text/markdown"}), "json"),
        (httpx.Response(200, json=[1, 2]), "json"),
        (httpx.Response(201, json={"success": True, "data": {"url": "u"}}), "issue"),
    ],
    ids=["html-for-markdown", "markdown-for-json", "json-not-an-object", "issue-without-number"],
)
def test_answers_that_are_not_what_was_asked_for(answer: httpx.Response, format: str) -> None:
    http, _ = answering([answer])
    with (
        http,
        FeaturePlannerClient("http://t", "tok", http_client=http) as client,
        pytest.raises(UnexpectedResponseError),
    ):
        if format == "issue":
            client.file_issue(JOB_ID, 0)
        elif format == "json":
            client.export(JOB_ID, "json")
        else:
            client.export(JOB_ID, "markdown")


def test_export_decodes_markdown_by_its_charset_and_asks_for_its_format() -> None:
    text = "# Collections page\n\n“Sort” · ünïcödé\n"
    http, seen = answering(
        [
            httpx.Response(
                200,
                content=text.encode(),
                headers={"content-type": "text/markdown; charset=utf-8"},
            )
        ]
    )
    with http, FeaturePlannerClient("http://t", "tok", http_client=http) as client:
        document = client.export(JOB_ID)

    assert document == text
    assert seen[0].url.params["format"] == "markdown"
