"""The issue a suggestion becomes, and the REST client that files it, against the local fake
of GitHub's API (``tests/github_server.py``): what is sent, and how each refusal is told."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from feature_planner.errors import NotConfiguredError, UpstreamError
from feature_planner.github import (
    FiledIssue,
    GitHubIssues,
    issue_draft,
    neutralise,
    permalink,
    web_url,
)
from feature_planner.models import Evidence, Suggestion, SuggestionRequest
from feature_planner.serving import free_port
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

ZWJ = "\u200d"
JOB = "0b3c8a52-5f6e-4d8c-9a1b-2c3d4e5f6a7b"
REQUEST = SuggestionRequest.model_validate(
    {"pageOrComponent": "Checkout", "featureType": "optimization", "priorityLevel": "critical"}
)
SUGGESTION = Suggestion.model_validate(
    {
        "title": "Page the orders list",
        "rationale": "The list loads every order at once.",
        "description": "Load orders 50 at a time.",
        "implementationConsiderations": ["Keep the sort stable", "Cursor, not offset"],
        "evidence": [
            {"path": "src/orders.ts", "startLine": 3, "endLine": 4, "quote": "fetchAll()"},
            {"path": "src/list.tsx", "startLine": 9, "endLine": 9, "quote": "orders.map"},
        ],
        "effort": "medium",
        "impact": "high",
    }
)


# -- the issue's text ---------------------------------------------------------------------------


def test_the_body_says_everything_with_permalinks_at_the_commit() -> None:
    draft = issue_draft(
        REQUEST,
        SUGGESTION,
        blob_url="https://github.com/acme/shop/blob/0123abc",
        job_id=JOB,
        index=1,
    )
    assert draft.title == "Page the orders list"
    assert draft.labels == ("optimization", "priority: critical")
    assert draft.body == (
        "Load orders 50 at a time.\n\n"
        "### Why\n\n"
        "The list loads every order at once.\n\n"
        "### Implementation considerations\n\n"
        "- Keep the sort stable\n- Cursor, not offset\n\n"
        "**Effort:** medium · **Impact:** high\n\n"
        "### Evidence\n\n"
        "https://github.com/acme/shop/blob/0123abc/src/orders.ts#L3-L4\n\n"
        "https://github.com/acme/shop/blob/0123abc/src/list.tsx#L9-L9\n\n"
        "<sub>Suggested by Feature Planner for “Checkout” (optimization, critical priority): "
        f"job {JOB}, suggestion 2.</sub>\n"
    )


def test_mentions_and_issue_references_ping_and_link_nobody() -> None:
    assert neutralise("ask @alice and @acme/web about #12, GH-7 and acme/shop#3") == (
        f"ask @{ZWJ}alice and @{ZWJ}acme/web about #{ZWJ}12, GH-{ZWJ}7 and acme/shop#{ZWJ}3"
    )
    # What GitHub does not turn into a mention or a reference is left as it is.
    assert neutralise("mail ops@acme.io, heading # 1, #main, C# and @ 2") == (
        "mail ops@acme.io, heading # 1, #main, C# and @ 2"
    )
    hostile = Suggestion.model_validate(
        {
            "title": "Thank @octocat for #1",
            "rationale": "As @security-team said in GH-9",
            "description": "Ping @everyone (see #4)",
            "implementationConsiderations": ["cc @ops"],
            "evidence": [{"path": "src/@scope/a#1.ts", "startLine": 1, "endLine": 1, "quote": "x"}],
        }
    )
    request = REQUEST.model_copy(update={"page_or_component": "Cart @bob #5"})
    draft = issue_draft(
        request, hostile, blob_url="https://github.com/o/n/blob/c", job_id=JOB, index=0
    )
    for text in (draft.title, draft.body):
        assert "@" + ZWJ in text
        bare = text.replace("@" + ZWJ, "").replace("#" + ZWJ, "").replace("GH-" + ZWJ, "")
        assert "@" not in bare and "#1" not in bare and "#4" not in bare and "#5" not in bare
    assert "GH-9" not in draft.body
    assert "https://github.com/o/n/blob/c/src/%40scope/a%231.ts#L1-L1" in draft.body


def test_long_titles_and_bodies_are_cut_to_what_github_takes() -> None:
    long = SUGGESTION.model_copy(update={"title": "t" * 300, "description": "d" * 70_000})
    draft = issue_draft(
        REQUEST, long, blob_url="https://github.com/o/n/blob/c", job_id=JOB, index=0
    )
    assert len(draft.title) == 256 and draft.title.endswith("…")
    assert len(draft.body) <= 65_536 and draft.body.endswith("*(cut short)*\n")


def test_the_web_address_is_derived_from_the_api_url() -> None:
    assert web_url("https://api.github.com") == "https://github.com"
    assert web_url("https://api.github.com/") == "https://github.com"
    assert web_url("https://ghe.acme.io/api/v3") == "https://ghe.acme.io"
    assert web_url("https://api.acme.ghe.com") == "https://acme.ghe.com"
    evidence = Evidence(path="a/b.ts", start_line=2, end_line=5, quote="x")
    assert permalink("https://ghe.acme.io/o/n/blob/c", evidence, "web/") == (
        "https://ghe.acme.io/o/n/blob/c/web/a/b.ts#L2-L5"
    )


# -- filing -------------------------------------------------------------------------------------


@pytest.fixture
def fake() -> FakeGitHub:
    return FakeGitHub()


@pytest.fixture
def api_url(fake: FakeGitHub) -> Iterator[str]:
    with serve_github(fake) as url:
        yield url


def git(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git checkout whose planned repository is its ``web/`` folder."""
    (tmp_path / "web" / "src").mkdir(parents=True)
    (tmp_path / "web" / "src" / "orders.ts").write_text("a\nb\nfetchAll()\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def issues(
    api_url: str, checkout: Path, *, token: str | None = TOKEN, **options: float
) -> GitHubIssues:
    return GitHubIssues(
        token=token, repository=OWNER_REPO, api_url=api_url, checkout=checkout, **options
    )


async def test_an_issue_is_filed_with_githubs_headers_and_the_checkouts_commit(
    fake: FakeGitHub, api_url: str, checkout: Path
) -> None:
    commit = git(checkout, "rev-parse", "HEAD")
    filed = await issues(api_url, checkout / "web").file(REQUEST, SUGGESTION, job_id=JOB, index=0)
    web = api_url.removesuffix("/api/v3")
    assert filed == FiledIssue(1, f"{web}/{OWNER_REPO}/issues/1")
    [seen] = fake.seen  # one call: a checkout needs no lookup of the default branch
    assert (seen.method, seen.path) == ("POST", f"/api/v3/repos/{OWNER_REPO}/issues")
    assert seen.headers["accept"] == "application/vnd.github+json"
    assert seen.headers["x-github-api-version"] == "2022-11-28"
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["user-agent"].startswith("feature-planner/")
    assert seen.body["title"] == "Page the orders list"
    assert seen.body["labels"] == ["optimization", "priority: critical"]
    # The planned repository is web/ of the checkout: its paths are prefixed in the links.
    assert f"{web}/{OWNER_REPO}/blob/{commit}/web/src/orders.ts#L3-L4\n" in seen.body["body"]
    assert fake.issues[0]["labels"][1]["name"] == "priority: critical"
    # A later commit moves the links with it.
    (checkout / "web" / "src" / "list.tsx").write_text("x\n")
    git(checkout, "add", ".")
    git(checkout, "commit", "-q", "-m", "second")
    await issues(api_url, checkout / "web").file(REQUEST, SUGGESTION, job_id=JOB, index=0)
    assert f"/blob/{git(checkout, 'rev-parse', 'HEAD')}/web/src/" in fake.seen[-1].body["body"]


async def test_without_a_checkout_the_links_use_the_default_branch(
    fake: FakeGitHub, api_url: str, tmp_path: Path
) -> None:
    await issues(api_url, tmp_path).file(REQUEST, SUGGESTION, job_id=JOB, index=0)
    assert [seen.method for seen in fake.seen] == ["GET", "POST"]
    assert f"/{OWNER_REPO}/blob/trunk/src/orders.ts#L3-L4\n" in fake.seen[-1].body["body"]


async def test_labels_github_refuses_are_left_off_and_the_issue_is_filed(
    fake: FakeGitHub, api_url: str, checkout: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.refused_labels = {"priority: critical"}
    filed = await issues(api_url, checkout).file(REQUEST, SUGGESTION, job_id=JOB, index=0)
    assert filed.number == 1
    first, second = fake.created
    assert first.body["labels"] == ["optimization", "priority: critical"]
    assert "labels" not in second.body
    assert fake.issues[0]["labels"] == []
    assert "filing the issue without them" in caplog.text


@pytest.mark.parametrize(
    ("refusal", "says"),
    [
        (
            bad_credentials(),
            "GitHub refused the token (Bad credentials): check FEATURE_PLANNER_GITHUB_TOKEN",
        ),
        (
            no_permission(),
            "GitHub refused to file the issue (Resource not accessible by personal access "
            f"token): the token needs permission to create issues in {OWNER_REPO}",
        ),
        (
            secondary_rate_limit(60),
            "GitHub's secondary rate limit was hit (You have exceeded a secondary rate limit.",
        ),
        (
            validation_failed(
                {
                    "resource": "Issue",
                    "code": "custom",
                    "field": "body",
                    "message": "body is too long",
                }
            ),
            "GitHub refused the issue: Validation Failed: body is too long",
        ),
    ],
)
async def test_each_refusal_is_told_in_githubs_words(
    fake: FakeGitHub,
    api_url: str,
    checkout: Path,
    refusal: Refusal,
    says: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.refuse_next(refusal)
    with pytest.raises(UpstreamError) as caught:
        await issues(api_url, checkout).file(REQUEST, SUGGESTION, job_id=JOB, index=0)
    assert caught.value.message.startswith(says)
    assert len(fake.created) == 1  # a refusal is not retried
    assert TOKEN not in caught.value.message and TOKEN not in caplog.text


async def test_a_secondary_limit_says_when_to_try_again(
    fake: FakeGitHub, api_url: str, checkout: Path
) -> None:
    fake.refuse_next(secondary_rate_limit(60))
    with pytest.raises(UpstreamError, match=r"try again in 60 s$"):
        await issues(api_url, checkout).file(REQUEST, SUGGESTION, job_id=JOB, index=0)


@pytest.mark.parametrize("status", [403, 429])
async def test_a_used_up_rate_limit_says_when_it_resets(
    fake: FakeGitHub, api_url: str, checkout: Path, status: int
) -> None:
    reset = int(time.time()) + 1800
    fake.refuse_next(rate_limited(reset, status))
    with pytest.raises(UpstreamError) as caught:
        await issues(api_url, checkout).file(REQUEST, SUGGESTION, job_id=JOB, index=0)
    at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(reset))
    assert caught.value.message.startswith(
        "GitHub's rate limit is used up (API rate limit exceeded for user ID 1.); "
        f"it resets at {at} UTC (in "
    )


async def test_a_wrong_token_or_repository(fake: FakeGitHub, api_url: str, checkout: Path) -> None:
    wrong = GitHubIssues(
        token="ghp_wrongwrongwrongwrongwrongwrongwrong",
        repository=OWNER_REPO,
        api_url=api_url,
        checkout=checkout,
    )
    with pytest.raises(UpstreamError, match=r"^GitHub refused the token \(Bad credentials\)"):
        await wrong.file(REQUEST, SUGGESTION, job_id=JOB, index=0)
    elsewhere = GitHubIssues(
        token=TOKEN, repository="acme/nope", api_url=api_url, checkout=checkout
    )
    with pytest.raises(UpstreamError) as caught:
        await elsewhere.file(REQUEST, SUGGESTION, job_id=JOB, index=0)
    assert caught.value.message == (
        "GitHub has no repository acme/nope this token can see (Not Found): check "
        "FEATURE_PLANNER_GITHUB_REPOSITORY and the token's access"
    )
    assert fake.issues == []


async def test_an_unreachable_or_slow_github_is_an_upstream_error(
    fake: FakeGitHub, api_url: str, checkout: Path
) -> None:
    closed = f"http://127.0.0.1:{free_port('127.0.0.1')}/api/v3"
    with pytest.raises(UpstreamError, match=r"could not be reached \(ConnectError\); try again"):
        await issues(closed, checkout).file(REQUEST, SUGGESTION, job_id=JOB, index=0)
    fake.create_delay_s = 1.0
    started = time.monotonic()
    with pytest.raises(UpstreamError, match=r"did not answer within 0.2 s; try again shortly"):
        await issues(api_url, checkout, timeout_s=0.2).file(
            REQUEST, SUGGESTION, job_id=JOB, index=0
        )
    assert time.monotonic() - started < 0.9


async def test_not_configured_says_which_settings(checkout: Path, api_url: str) -> None:
    unset = issues(api_url, checkout, token=None)
    assert not unset.configured
    with pytest.raises(NotConfiguredError) as caught:
        await unset.file(REQUEST, SUGGESTION, job_id=JOB, index=0)
    assert "FEATURE_PLANNER_GITHUB_TOKEN" in caught.value.message
    assert "FEATURE_PLANNER_GITHUB_REPOSITORY" in caught.value.message


async def test_the_token_is_in_no_log_line(
    fake: FakeGitHub, api_url: str, checkout: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await issues(api_url, checkout).file(REQUEST, SUGGESTION, job_id=JOB, index=0)
    fake.refuse_next(bad_credentials())
    with pytest.raises(UpstreamError):
        await issues(api_url, checkout).file(REQUEST, SUGGESTION, job_id=JOB, index=0)
    assert caplog.records  # httpx and httpcore logged the calls at debug, and we the outcome
    assert TOKEN not in caplog.text
