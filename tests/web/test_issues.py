"""Filing a suggestion as a GitHub issue (DESIGN.md, "Act on a run"), against a real server and
the local fake of GitHub's REST API: once per suggestion, also when two requests race on two
replicas; the issue's text; every refusal; the token in no answer and no log line. In memory
with SQLite, and with Redis and PostgreSQL (where the issue_links row is shared)."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from feature_planner.agent.providers import ScriptedProvider, scripted_text
from feature_planner.models import Suggestion
from feature_planner.serving import free_port
from tests.conftest import ALICE, API, BOB, LiveServer, ServerFactory
from tests.github_server import (
    OWNER_REPO,
    TOKEN,
    FakeGitHub,
    Refusal,
    bad_credentials,
    no_permission,
    rate_limited,
    secondary_rate_limit,
    serve_github,
    validation_failed,
)
from tests.test_agent_store import postgres_url  # noqa: F401 - a fixture

ZWJ = "\u200d"
GRID = "src/app/collections/grid.tsx"
GRID_LINES = [
    "export function Grid({ items }) {",
    "  return <ul>{items.map((item) => <li>{item.name}</li>)}</ul>",
    "}",
]
PAGE = "src/app/collections/page.tsx"
PAGE_LINE = "export default function CollectionsPage() { return null }"

SUGGESTIONS = [
    Suggestion.model_validate(
        {
            "title": "Give the grid keys, as @alice asked in #12",
            "rationale": "React warns about missing keys; cc @acme/web-team.",
            "description": "Each <li> of the grid needs a stable key (see GH-7).",
            "implementationConsiderations": ["Use item.id", "Ask @bob before renaming #3"],
            "evidence": [
                {"path": GRID, "startLine": 2, "endLine": 2, "quote": "items.map((item) =>"},
                {"path": PAGE, "startLine": 1, "endLine": 1, "quote": "CollectionsPage()"},
            ],
            "effort": "small",
            "impact": "medium",
        }
    ),
    Suggestion.model_validate(
        {
            "title": "Show an empty state",
            "rationale": "An empty grid shows nothing at all.",
            "description": "Say so when there are no collections.",
            "evidence": [{"path": GRID, "startLine": 1, "endLine": 3, "quote": "function Grid"}],
        }
    ),
    Suggestion.model_validate(
        {"title": "Third", "rationale": "Why three.", "description": "The third suggestion."}
    ),
]


def git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(autouse=True)
def shop(repo: Path) -> Path:
    """The planned repository holds what the suggestions cite."""
    (repo / GRID).write_text("\n".join(GRID_LINES) + "\n")
    return repo


@pytest.fixture
def commit(shop: Path) -> str:
    """The planned repository as a git checkout; its commit."""
    repo = shop
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "shop")
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def fake() -> FakeGitHub:
    return FakeGitHub()


@pytest.fixture
def api_url(fake: FakeGitHub) -> Iterator[str]:
    with serve_github(fake) as url:
        yield url


@pytest.fixture
def issue_server(
    make_server: ServerFactory, backend: str, request: pytest.FixtureRequest, api_url: str
) -> ServerFactory:
    """Servers that file issues with the fake; in memory the issue_links row is in SQLite,
    with Redis in PostgreSQL, shared by every server the test starts."""
    shared: dict[str, Any] = {}
    if backend == "redis":
        shared["database_url"] = request.getfixturevalue("postgres_url")

    def start(**overrides: Any) -> LiveServer:
        provider = ScriptedProvider(scripted_text(2, 8), suggestions=SUGGESTIONS)
        options = {
            "github_token": TOKEN,
            "github_repository": OWNER_REPO,
            "github_api_url": api_url,
            **shared,
            **overrides,
        }
        return make_server(engine=provider, **options)

    return start


def completed_job(server: LiveServer, token: str = ALICE) -> str:
    job_id = server.create_job(token=token)
    assert server.stream(job_id, token=token).last.event == "complete"
    return job_id


def file(server: LiveServer, job_id: str, index: int | str, **headers: str) -> httpx.Response:
    return server.http.post(
        f"{API}/{job_id}/suggestions/{index}/issue", headers=headers or server.auth()
    )


def refusal(response: httpx.Response) -> tuple[int, str, str]:
    assert TOKEN not in response.text
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


# -- filed once ---------------------------------------------------------------------------------


def test_a_suggestion_is_filed_once_with_its_text_labels_and_permalinks(
    issue_server: ServerFactory, fake: FakeGitHub, api_url: str, commit: str
) -> None:
    server = issue_server()
    job_id = completed_job(server)
    web = api_url.removesuffix("/api/v3")

    first = file(server, job_id, 0)
    assert first.status_code == 201, first.text
    assert first.headers["cache-control"] == "no-store"
    assert first.json() == {
        "success": True,
        "data": {"url": f"{web}/{OWNER_REPO}/issues/1", "number": 1},
    }
    [issue] = fake.issues
    assert issue["title"] == f"Give the grid keys, as @{ZWJ}alice asked in #{ZWJ}12"
    assert [label["name"] for label in issue["labels"]] == ["enhancement", "priority: high"]
    blob = f"{web}/{OWNER_REPO}/blob/{commit}"
    assert issue["body"] == (
        f"Each <li> of the grid needs a stable key (see GH-{ZWJ}7).\n\n"
        "### Why\n\n"
        f"React warns about missing keys; cc @{ZWJ}acme/web-team.\n\n"
        "### Implementation considerations\n\n"
        f"- Use item.id\n- Ask @{ZWJ}bob before renaming #{ZWJ}3\n\n"
        "**Effort:** small · **Impact:** medium\n\n"
        "### Evidence\n\n"
        f"{blob}/{GRID}#L2-L2\n\n"
        f"{blob}/{PAGE}#L1-L1\n\n"
        "<sub>Suggested by Feature Planner for “Collections page” (enhancement, high "
        f"priority): job {job_id}, suggestion 1.</sub>\n"
    )

    again = file(server, job_id, 0)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert len(fake.created) == 1  # the second request never reached GitHub

    other = file(server, job_id, 2)
    assert (other.status_code, other.json()["data"]["number"]) == (201, 2)
    assert "### Evidence" not in fake.issues[1]["body"]  # it cites nothing
    assert "**Effort:**" not in fake.issues[1]["body"]


def test_two_requests_at_once_file_one_issue_even_on_two_replicas(
    issue_server: ServerFactory, fake: FakeGitHub, backend: str, commit: str
) -> None:
    fake.create_delay_s = 0.5  # both requests arrive while the first is being filed
    first = issue_server()
    second = issue_server() if backend == "redis" else first  # replicas share Redis + SQL
    job_id = completed_job(first)
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(2)

    def post(server: LiveServer) -> None:
        barrier.wait()
        answers.append(file(server, job_id, 1))

    threads = [threading.Thread(target=post, args=(server,)) for server in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answer.status_code for answer in answers) == [200, 201], [
        answer.text for answer in answers
    ]
    assert answers[0].json() == answers[1].json()
    assert len(fake.created) == 1 and len(fake.issues) == 1


def test_a_refused_filing_can_be_tried_again(
    issue_server: ServerFactory, fake: FakeGitHub, commit: str
) -> None:
    server = issue_server()
    job_id = completed_job(server)
    fake.refuse_next(no_permission())
    assert file(server, job_id, 0).status_code == 502
    retried = file(server, job_id, 0)
    assert retried.status_code == 201, retried.text
    assert retried.json()["data"]["number"] == 1
    assert len(fake.created) == 2 and len(fake.issues) == 1


# -- what the page is told --------------------------------------------------------------------


def test_config_says_whether_issues_can_be_filed(
    issue_server: ServerFactory, make_server: ServerFactory
) -> None:
    configured = issue_server()
    answer = configured.http.get("/api/feature-planner/config", headers=configured.auth())
    assert answer.json()["data"]["githubIssues"] is True
    assert TOKEN not in answer.text
    for missing in ({"github_token": None}, {"github_repository": None}):
        server = issue_server(**missing)
        data = server.http.get("/api/feature-planner/config", headers=server.auth()).json()
        assert data["data"]["githubIssues"] is False


# -- refusals ---------------------------------------------------------------------------------


def test_not_configured_names_both_settings(issue_server: ServerFactory, fake: FakeGitHub) -> None:
    server = issue_server(github_token=None)
    job_id = completed_job(server)
    status, code, message = refusal(file(server, job_id, 0))
    assert (status, code) == (501, "NOT_CONFIGURED")
    assert "FEATURE_PLANNER_GITHUB_TOKEN" in message
    assert "FEATURE_PLANNER_GITHUB_REPOSITORY" in message
    assert fake.seen == []


def test_what_cannot_be_filed(issue_server: ServerFactory, fake: FakeGitHub) -> None:
    server = issue_server()
    job_id = completed_job(server)
    status, code, message = refusal(file(server, job_id, 3))
    assert (status, code) == (404, "SUGGESTION_NOT_FOUND")
    assert message == "The job has 3 suggestions (index 0 to 2); there is none at 3"
    for index in ("x", "-1", "1.5", "1e3", "0x1", "1234567890"):
        response = file(server, job_id, index)
        status, code, message = refusal(response)
        assert (status, code) == (422, "VALIDATION_ERROR"), index
        assert response.json()["error"]["fields"] == [
            {"field": "index", "message": "must be a whole number from 0 to 999999999"}
        ]
    pending = server.create_job()
    status, code, message = refusal(file(server, pending, 0))
    assert (status, code) == (409, "JOB_NOT_COMPLETE")
    assert message == (
        "The job is pending; only a completed job's suggestions can be filed as issues"
    )
    unknown = "0b3c8a52-5f6e-4d8c-9a1b-2c3d4e5f6a7b"
    assert refusal(file(server, unknown, 0))[:2] == (404, "JOB_NOT_FOUND")
    assert refusal(file(server, "not-a-job", 0))[:2] == (400, "INVALID_JOB_ID")
    assert fake.seen == []


def test_who_may_file(issue_server: ServerFactory, fake: FakeGitHub) -> None:
    server = issue_server()
    job_id = completed_job(server)
    assert refusal(file(server, job_id, 0, authorization="Bearer nope"))[:2] == (
        401,
        "UNAUTHORIZED",
    )
    assert refusal(file(server, job_id, 0, **server.auth(BOB)))[:2] == (403, "FORBIDDEN")
    share = server.http.post(f"{API}/{job_id}/share", headers=server.auth()).json()["data"]
    by_share = file(server, job_id, 0, authorization=f"Bearer {share['token']}")
    assert refusal(by_share)[:2] == (403, "SHARE_READ_ONLY")
    created = server.create().json()["data"]
    assert server.stream(created["jobId"]).last.event == "complete"
    in_query = server.http.post(
        f"{API}/{created['jobId']}/suggestions/0/issue", params={"token": created["streamToken"]}
    )
    assert refusal(in_query)[:2] == (401, "UNAUTHORIZED")  # a stream token only reads its job
    assert fake.seen == []


@pytest.mark.parametrize(
    ("given", "says"),
    [
        (bad_credentials(), "GitHub refused the token (Bad credentials)"),
        (no_permission(), "GitHub refused to file the issue (Resource not accessible by"),
        (
            rate_limited(int(time.time()) + 600),
            "GitHub's rate limit is used up (API rate limit exceeded for user ID 1.); it "
            "resets at ",
        ),
        (secondary_rate_limit(30), "GitHub's secondary rate limit was hit (You have exceeded"),
        (
            validation_failed(
                {"resource": "Issue", "code": "custom", "field": "title", "message": "bad title"}
            ),
            "GitHub refused the issue: Validation Failed: bad title",
        ),
    ],
)
def test_github_refusing_is_a_502_in_its_own_words(
    issue_server: ServerFactory,
    fake: FakeGitHub,
    commit: str,
    given: Refusal,
    says: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    server = issue_server()
    job_id = completed_job(server)
    fake.refuse_next(given)
    status, code, message = refusal(file(server, job_id, 0))
    assert (status, code) == (502, "UPSTREAM_ERROR")
    assert message.startswith(says), message
    assert "GitHub refused an issue request" in caplog.text  # logged, and
    assert TOKEN not in caplog.text  # without the token


def test_no_such_repository_and_an_unreachable_github(
    issue_server: ServerFactory, commit: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = issue_server(github_repository="acme/elsewhere")
    job_id = completed_job(server)
    status, code, message = refusal(file(server, job_id, 0))
    assert (status, code) == (502, "UPSTREAM_ERROR")
    assert message == (
        "GitHub has no repository acme/elsewhere this token can see (Not Found): check "
        "FEATURE_PLANNER_GITHUB_REPOSITORY and the token's access"
    )
    closed = f"http://127.0.0.1:{free_port('127.0.0.1')}/api/v3"
    server = issue_server(github_api_url=closed)
    job_id = completed_job(server)
    status, code, message = refusal(file(server, job_id, 0))
    assert (status, code) == (502, "UPSTREAM_ERROR")
    assert (
        message
        == f"GitHub's API at {closed} could not be reached (ConnectError); try again shortly"
    )
    assert TOKEN not in caplog.text
