"""Acting on a run, on the page: follow-ups (the reply box and each card's three), the
download in both formats, GitHub issues, tokens on the result, budget refusals, and the
read-only share view, which only downloads.

Written against the contract's "Act on a run" (``../shared/DESIGN.md``): ``POST
…/{jobId}/follow-up``, ``GET …/export?format=``, ``POST …/suggestions/{index}/issue``, the
``BUDGET_EXCEEDED`` error and the ``429 DAILY_BUDGET_EXCEEDED`` of Phase 1. GitHub is the local
fake of its REST API (``tests/github_server.py``), the one network these tests cannot reach.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from feature_planner.agent.providers.openai import OpenAIProvider
from feature_planner.agent.providers.options import AIOptions
from tests.agent.openai_server import API_KEY as OPENAI_KEY
from tests.agent.openai_server import MODEL as OPENAI_MODEL
from tests.agent.openai_server import FakeOpenAI, Reply
from tests.agent.openai_server import serve as serve_openai
from tests.conftest import API, LiveServer, ServerFactory
from tests.github_server import OWNER_REPO, TOKEN, FakeGitHub, bad_credentials, serve_github

from .conftest import OpenPage, PageProblems
from .helpers import fill_form, is_create


def finish_a_run(page: Page, target: str = "Checkout page") -> str:
    """Fill the form, generate, wait for the result; the job's id."""
    fill_form(page, target)
    with page.expect_response(is_create) as created:
        page.get_by_test_id("generate").click()
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    job_id: str = created.value.json()["data"]["jobId"]
    return job_id


def is_follow_up(job_id: str) -> Any:
    return lambda r: r.request.method == "POST" and r.url.endswith(f"{API}/{job_id}/follow-up")


def job_status(server: LiveServer, job_id: str) -> dict[str, Any]:
    response = server.http.get(
        f"{API}/{job_id}", headers={**server.auth(), "accept": "application/json"}
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


# -- follow-ups --------------------------------------------------------------------------


def test_a_follow_up_from_the_reply_box_streams_a_new_run_that_links_its_parent(
    page: Page, server: LiveServer
) -> None:
    parent = finish_a_run(page)
    expect(page.get_by_test_id("parent")).to_be_hidden()
    box = page.get_by_role("textbox", name="Ask a follow-up")
    expect(box).to_have_attribute("placeholder", "Ask a follow-up…")

    # Empty: said on the page, nothing sent.
    page.get_by_test_id("follow-up-send").click()
    expect(page.get_by_test_id("follow-up-error")).to_contain_text("Write what you would like")
    expect(box).to_be_focused()

    box.fill("Why #2?")
    with page.expect_response(is_follow_up(parent)) as made:
        page.get_by_test_id("follow-up-send").click()
    assert made.value.status == 201
    assert made.value.request.post_data_json == {"message": "Why #2?"}
    child = made.value.json()["data"]["jobId"]

    # The new run streams like any run, at its own address, and names its parent.
    expect(page).to_have_url(re.compile(rf"/\?job={child}$"))
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    expect(page.get_by_test_id("suggestion")).to_have_count(3)
    link = page.get_by_test_id("parent-link")
    expect(link).to_have_attribute("href", f"/?job={parent}")
    expect(page.get_by_test_id("parent")).to_have_text("A follow-up to an earlier run: “Why #2?”")
    assert job_status(server, child)["parentJobId"] == parent

    # Reloaded, the link comes from the job's status; it opens the parent run.
    page.reload()
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    expect(link).to_have_attribute("href", f"/?job={parent}")
    link.click()
    expect(page).to_have_url(re.compile(rf"/\?job={parent}$"))
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    expect(page.get_by_test_id("parent")).to_be_hidden()


@pytest.mark.parametrize(
    ("button", "index", "message"),
    [
        ("more-like-this", 0, "More suggestions like #1, please."),
        ("not-this", 1, "Not #2: suggest something else instead."),
        ("smaller-steps", 2, "Split #3 into smaller steps."),
    ],
)
def test_each_card_offers_three_follow_ups_about_itself(
    page: Page, button: str, index: int, message: str
) -> None:
    parent = finish_a_run(page)
    cards = page.get_by_test_id("suggestion")
    for n in range(3):
        actions = cards.nth(n).get_by_role("group", name=f"Act on suggestion {n + 1}")
        expect(actions.get_by_role("button")).to_have_text(
            ["More like this", "Not this", "Smaller steps"]
        )
    with page.expect_response(is_follow_up(parent)) as made:
        cards.nth(index).get_by_test_id(button).click()
    assert made.value.status == 201
    assert made.value.request.post_data_json == {"message": message, "suggestionIndex": index}
    child = made.value.json()["data"]["jobId"]
    expect(page).to_have_url(re.compile(rf"/\?job={child}$"))
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    expect(page.get_by_test_id("parent-link")).to_have_attribute("href", f"/?job={parent}")


def test_a_refused_follow_up_is_said_under_the_cards_which_stay(
    open_page: OpenPage, make_server: ServerFactory, page_problems: PageProblems
) -> None:
    server = make_server(create_limit=1, create_window_s=600)
    page = open_page(server)
    parent = finish_a_run(page)
    page_problems.expect_refusal(429, f"{API}/{parent}/follow-up", method="POST")

    page.get_by_role("textbox", name="Ask a follow-up").fill("Something for mobile")
    with page.expect_response(is_follow_up(parent)) as made:
        page.get_by_test_id("follow-up-send").click()
    assert made.value.status == 429
    error = page.get_by_test_id("follow-up-error")
    expect(error).to_contain_text("Could not ask the follow-up:")
    expect(error).to_contain_text(re.compile(r"Try again in \d+ seconds?\."))
    expect(page.get_by_role("textbox", name="Ask a follow-up")).to_have_attribute(
        "aria-invalid", "true"
    )
    # The run is still shown, and still this one.
    expect(page.get_by_test_id("suggestion")).to_have_count(3)
    expect(page).to_have_url(re.compile(rf"/\?job={parent}$"))


# -- download ----------------------------------------------------------------------------


def test_download_offers_markdown_and_json_as_the_server_exports_them(
    page: Page, server: LiveServer, tmp_path: Path
) -> None:
    job_id = finish_a_run(page)
    page.get_by_test_id("download").click()
    for format_, button in (("markdown", "download-markdown"), ("json", "download-json")):
        exported = server.http.get(
            f"{API}/{job_id}/export", params={"format": format_}, headers=server.auth()
        )
        assert exported.status_code == 200, exported.text
        with page.expect_download() as download_info:
            page.get_by_test_id(button).click()
        download = download_info.value
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        # Byte for byte what the server exports, under the name it gives.
        assert saved.read_bytes() == exported.content
        disposition = exported.headers["content-disposition"]
        assert download.suggested_filename in disposition, disposition
        expect(page.get_by_test_id("copy-status")).to_contain_text("Download started")
    assert saved.suffix == ".json"
    assert json.loads(saved.read_text())["jobId"] == job_id


# -- GitHub issues -----------------------------------------------------------------------


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    with serve_github(fake) as api_url:
        yield fake, api_url


def test_create_issue_files_the_card_once_and_links_the_issue(
    open_page: OpenPage, make_server: ServerFactory, github: tuple[FakeGitHub, str]
) -> None:
    fake, api_url = github
    server = make_server(github_token=TOKEN, github_repository=OWNER_REPO, github_api_url=api_url)
    page = open_page(server)
    job_id = finish_a_run(page)
    cards = page.get_by_test_id("suggestion")
    expect(cards.get_by_test_id("issue-create")).to_have_count(3)
    title = cards.nth(1).locator(".suggestion-name").inner_text()

    with page.expect_response(lambda r: r.url.endswith(f"{job_id}/suggestions/1/issue")) as made:
        cards.nth(1).get_by_test_id("issue-create").click()
    assert made.value.status == 201
    issue = made.value.json()["data"]
    link = cards.nth(1).get_by_test_id("issue-link")
    expect(link).to_have_text(f"Issue #{issue['number']} (opens in a new tab)")
    expect(link).to_have_attribute("href", issue["url"])
    expect(link).to_be_focused()
    expect(cards.nth(1).get_by_test_id("issue-create")).to_have_count(0)
    assert [seen.body["title"] for seen in fake.created] == [title]
    # Nothing on the page shows the token.
    assert TOKEN not in page.content()

    # Filed again (after a reload, the button is back): the same issue, no second one.
    page.reload()
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    with page.expect_response(lambda r: r.url.endswith(f"{job_id}/suggestions/1/issue")) as again:
        cards.nth(1).get_by_test_id("issue-create").click()
    assert again.value.status == 200
    expect(cards.nth(1).get_by_test_id("issue-link")).to_have_attribute("href", issue["url"])
    assert len(fake.created) == 1


def test_a_github_refusal_is_said_on_the_card(
    open_page: OpenPage,
    make_server: ServerFactory,
    github: tuple[FakeGitHub, str],
    page_problems: PageProblems,
) -> None:
    fake, api_url = github
    server = make_server(github_token=TOKEN, github_repository=OWNER_REPO, github_api_url=api_url)
    page = open_page(server)
    job_id = finish_a_run(page)
    page_problems.expect_refusal(502, f"{API}/{job_id}/suggestions/0/issue", method="POST")
    fake.refuse_next(bad_credentials())
    card = page.get_by_test_id("suggestion").first
    card.get_by_test_id("issue-create").click()
    status = card.get_by_test_id("issue-status")
    expect(status).to_contain_text("Could not create the issue: GitHub refused it:")
    expect(status).to_contain_text("Bad credentials")
    expect(status).to_have_attribute("data-kind", "error")
    expect(card.get_by_test_id("issue-create")).to_be_visible()
    assert TOKEN not in page.content()


def test_without_github_configured_no_card_offers_an_issue(page: Page) -> None:
    finish_a_run(page)
    expect(page.get_by_test_id("card-actions")).to_have_count(3)
    expect(page.get_by_test_id("issue-create")).to_have_count(0)


# -- tokens and budgets ------------------------------------------------------------------


def test_the_result_shows_its_tokens(page: Page, server: LiveServer) -> None:
    job_id = finish_a_run(page)
    usage = job_status(server, job_id)["result"]["tokenUsage"]
    total = usage["inputTokens"] + usage["outputTokens"]
    expect(page.get_by_test_id("meta-tokens")).to_have_text(
        f"Tokens{total:,} ({usage['inputTokens']:,} in / {usage['outputTokens']:,} out)"
    )
    # The scripted provider reports no cost, and the page invents none.
    expect(page.get_by_test_id("meta-cost")).to_have_count(0)


def test_a_run_stopped_by_its_token_budget_says_so(
    open_page: OpenPage, make_server: ServerFactory
) -> None:
    fake = FakeOpenAI([Reply(text=["Reading the collections page"], usage=(100, 20))])
    with serve_openai(fake) as base_url:
        # The ``openai`` provider (its real SDK) on the local fake model server: its first
        # usage report passes a ceiling of 1.
        options = AIOptions(
            api_key=OPENAI_KEY,
            base_url=base_url,
            model=OPENAI_MODEL,
            allowed_models=(OPENAI_MODEL,),
            provider_retries=0,
            max_run_tokens=1,
        )
        server = make_server(engine=OpenAIProvider(options), max_run_tokens=1)
        page = open_page(server)
        fill_form(page)
        page.get_by_test_id("generate").click()
        card = page.get_by_test_id("error-card")
        expect(card).to_have_attribute("data-code", "BUDGET_EXCEEDED", timeout=30_000)
    expect(page.get_by_test_id("error-title")).to_have_text("The run reached its token budget")
    expect(page.get_by_test_id("error-hint")).to_contain_text("FEATURE_PLANNER_MAX_RUN_TOKENS")
    expect(card).to_be_focused()
    assert fake.problems == []


def test_the_daily_budget_refusal_is_said_plainly(
    open_page: OpenPage, make_server: ServerFactory, page_problems: PageProblems
) -> None:
    server = make_server(daily_user_tokens=1)
    page = open_page(server)
    finish_a_run(page)  # its tokens pass the budget of 1
    page_problems.expect_refusal(429, API, method="POST")
    with page.expect_response(is_create) as created:
        page.get_by_test_id("generate").click()
    assert created.value.status == 429
    assert created.value.json()["error"]["code"] == "DAILY_BUDGET_EXCEEDED"
    card = page.get_by_test_id("error-card")
    expect(card).to_have_attribute("data-code", "DAILY_BUDGET_EXCEEDED")
    expect(page.get_by_test_id("error-title")).to_have_text("Your daily token budget is used up")
    expect(page.get_by_test_id("error-hint")).to_contain_text("last 24 hours")
    expect(page.get_by_test_id("error-hint")).to_contain_text(re.compile(r"Try again in \d+"))


# -- the share view ----------------------------------------------------------------------


def test_the_share_view_downloads_but_offers_no_action(
    page: Page,
    server: LiveServer,
    fresh_context: Callable[..., BrowserContext],
    tmp_path: Path,
) -> None:
    job_id = finish_a_run(page)
    expect(page.get_by_test_id("follow-up")).to_be_visible()
    shared = server.http.post(f"{API}/{job_id}/share", headers=server.auth())
    assert shared.status_code == 201, shared.text

    viewer = fresh_context(server).new_page()  # somebody else's browser: no cookie
    viewer.goto(shared.json()["data"]["url"])
    expect(viewer.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    expect(viewer.get_by_test_id("suggestion")).to_have_count(3)
    for hidden in ("follow-up", "share", "parent"):
        expect(viewer.get_by_test_id(hidden)).to_be_hidden()
    for absent in ("card-actions", "issue-create", "more-like-this"):
        expect(viewer.get_by_test_id(absent)).to_have_count(0)

    viewer.get_by_test_id("download").click()
    with viewer.expect_download() as download_info:
        viewer.get_by_test_id("download-markdown").click()
    saved = tmp_path / "shared.md"
    download_info.value.save_as(saved)
    exported = server.http.get(
        f"{API}/{job_id}/export", params={"format": "markdown"}, headers=server.auth()
    )
    assert saved.read_bytes() == exported.content
