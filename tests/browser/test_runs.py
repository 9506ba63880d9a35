"""The page keeps runs: a run has an address (``/?job=<id>``) that reload, Back, a second tab
and a read-only share link (``/?job=<id>&share=<token>``) all open; the page lists the
user's recent runs.

Written against the contract's "Part two" ("Runs are kept", "Watch-only sharing") and the
server answers of issue 17: the job's JSON status (``Accept: application/json``), the list
``GET /api/feature-planner/jobs`` and ``POST …/{jobId}/share``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import BrowserContext, Page, Request, expect

from tests.conftest import API, VALID_BODY, LiveServer, ServerFactory

from .conftest import OpenPage, PageProblems
from .helpers import expected_text, fill_form, is_create, live_text, states, wait_for_text

JOBS = "/api/feature-planner/jobs"
PROGRESS_KEY = "feature-planner:job:"
# A run that lasts about 5 s: long enough to reload, switch and come back in the middle.
SLOW = {
    "scripted_chunks": 100,
    "scripted_chunk_size": 5,
    "scripted_interval_ms": 50,
    "throttle_ms": 0,
}


# -- helpers -----------------------------------------------------------------------------


def job_status(server: LiveServer, job_id: str) -> dict[str, Any]:
    """The job's JSON status, as its owner reads it."""
    response = server.http.get(
        f"{API}/{job_id}", headers={**server.auth(), "accept": "application/json"}
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def run_to_the_end(server: LiveServer, body: dict[str, Any] | None = None) -> str:
    """A job created and streamed to its end over the API; its id."""
    job_id = server.create_job(body)
    stream = server.stream(job_id)
    assert stream.last.event == "complete", stream.names
    return job_id


def the_whole_text(server: LiveServer, job_id: str) -> str:
    """Every delta of the job, from its event log (kept a while after it completes)."""
    stream = server.stream(job_id, last_event_id=0)
    assert stream.status == 200, stream.raw
    return stream.text


def address_of(job_id: str) -> re.Pattern[str]:
    return re.compile(rf"/\?job={job_id}$")


def create_in_page(page: Page, target: str = "Checkout page") -> str:
    """Fill the form, press Generate; the new job's id."""
    fill_form(page, target)
    with page.expect_response(is_create) as created:
        page.get_by_test_id("generate").click()
    assert created.value.status == 201
    job_id: str = created.value.json()["data"]["jobId"]
    return job_id


def settle(page: Page) -> None:
    """Wait until the page has loaded everything it asks for at start (the list of runs and
    the user's agent), so that leaving it aborts nothing."""
    expect(page.get_by_test_id("runs")).to_be_visible()
    expect(page.get_by_test_id("agent-hint")).not_to_have_text("Loading your custom agent…")


def record_requests(page: Page) -> list[Request]:
    seen: list[Request] = []
    page.on("request", lambda request: seen.append(request))
    return seen


def streams_of(requests: list[Request]) -> list[str]:
    return [r.url for r in requests if r.resource_type == "eventsource"]


def saved_progress(page: Page, job_id: str) -> Any:
    return page.evaluate("key => JSON.parse(sessionStorage.getItem(key))", PROGRESS_KEY + job_id)


def run_items(page: Page) -> list[dict[str, str]]:
    """The list of recent runs as shown: each item's job id, status and state words."""
    items: list[dict[str, str]] = page.evaluate(
        """() => [...document.querySelectorAll('#runs-list > li')].map((li) => ({
            jobId: li.dataset.jobId,
            status: li.dataset.status,
            state: li.querySelector('[data-testid=run-state]').textContent,
            spinner: String(Boolean(li.querySelector('.spinner'))),
            target: li.querySelector('[data-testid=run-target]').textContent,
        }))"""
    )
    return items


# -- the tests ---------------------------------------------------------------------------


def test_a_reload_mid_stream_reattaches_and_shows_the_whole_text_once(
    open_page: OpenPage, make_server: ServerFactory
) -> None:
    server = make_server(**SLOW)
    expected = expected_text(server.settings)
    page = open_page(server)
    job_id = create_in_page(page)
    expect(page).to_have_url(address_of(job_id))

    wait_for_text(page, 100)
    # The tab keeps what it has shown (saved a moment after each delta).
    page.wait_for_function("key => sessionStorage.getItem(key) !== null", arg=PROGRESS_KEY + job_id)
    assert job_status(server, job_id)["status"] == "in_progress"

    requests = record_requests(page)
    page.reload()
    app = page.get_by_test_id("app")
    expect(app).to_have_attribute("data-state", "complete", timeout=15_000)
    # It went back to the stream, resuming after the last event it had shown (not from the
    # start: the text it had is kept, and only the rest is added).
    (stream,) = streams_of(requests)
    resumed = re.search(r"[?&]lastEventId=(\d+)", stream)
    assert resumed is not None and int(resumed.group(1)) > 1, stream
    assert states(page) == ["idle", "loading", "connecting", "streaming", "complete"]

    # Exactly the job's text, nothing twice, nothing missing.
    assert live_text(page) == expected
    assert live_text(page) == the_whole_text(server, job_id)
    expect(page.get_by_test_id("suggestion")).to_have_count(3)
    expect(page.get_by_test_id("page-input")).to_have_value("Checkout page")
    expect(page.get_by_test_id("feature-type")).to_have_value("new-capability")
    expect(page.get_by_test_id("priority")).to_have_value("critical")
    expect(page).to_have_url(address_of(job_id))

    # One execution, and the reload did not cancel it.
    status = job_status(server, job_id)
    assert status["status"] == "completed"
    assert len(status["result"]["suggestions"]) == 3
    assert server.service.executions == 1

    # Reloaded once more, the finished run is shown from its status with the text this tab
    # saw, and no stream.
    requests = record_requests(page)
    page.reload()
    expect(app).to_have_attribute("data-state", "complete")
    expect(page.get_by_test_id("suggestion")).to_have_count(3)
    assert live_text(page) == expected
    assert streams_of(requests) == []
    assert saved_progress(page, job_id)["done"] is True


def test_a_second_tab_on_the_same_address_shows_the_same_job(
    open_page: OpenPage, make_server: ServerFactory, page_problems: PageProblems
) -> None:
    server = make_server(**SLOW)
    expected = expected_text(server.settings)
    page = open_page(server)
    job_id = create_in_page(page)
    wait_for_text(page, 50)

    second = page.context.new_page()
    page_problems.watch(second, [server.url])
    requests = record_requests(second)
    second.goto(f"/?job={job_id}")
    # A new tab has shown nothing of the job: it streams it from its first event.
    expect(second.get_by_test_id("app")).to_have_attribute("data-state", "streaming", timeout=5_000)
    (stream,) = streams_of(requests)
    assert "lastEventId" not in stream, stream

    for tab in (page, second):
        expect(tab.get_by_test_id("app")).to_have_attribute("data-state", "complete")
        assert live_text(tab) == expected
        expect(tab.get_by_test_id("suggestion")).to_have_count(3)
        expect(tab.get_by_test_id("page-input")).to_have_value("Checkout page")
    titles = page.locator("[data-testid=suggestion] h3").all_text_contents()
    assert second.locator("[data-testid=suggestion] h3").all_text_contents() == titles
    assert server.service.executions == 1
    assert job_status(server, job_id)["status"] == "completed"


def test_a_finished_job_opened_by_its_address_shows_its_cards_without_a_stream(
    open_page: OpenPage, make_server: ServerFactory
) -> None:
    server = make_server()
    job_id = run_to_the_end(server)
    result = job_status(server, job_id)["result"]
    page = open_page(server)
    settle(page)
    requests = record_requests(page)

    page.goto(f"/?job={job_id}")
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    cards = page.get_by_test_id("suggestion")
    expect(cards).to_have_count(len(result["suggestions"]))
    for card, suggestion in zip(cards.all(), result["suggestions"], strict=True):
        expect(card.locator("h3")).to_contain_text(suggestion["title"])
    expect(page.get_by_test_id("status")).to_have_text("Done.")
    expect(page.get_by_test_id("meta")).to_contain_text("Scripted provider (no AI model)")
    # The form shows the run's input.
    expect(page.get_by_test_id("page-input")).to_have_value(VALID_BODY["pageOrComponent"])
    expect(page.get_by_test_id("feature-type")).to_have_value(VALID_BODY["featureType"])
    expect(page.get_by_test_id("priority")).to_have_value(VALID_BODY["priorityLevel"])
    # This tab never saw its text: no empty text box, no stream, and no way to cancel.
    expect(page.locator("#live")).to_be_hidden()
    assert streams_of(requests) == []
    expect(page.get_by_test_id("cancel")).to_be_hidden()
    expect(page.get_by_test_id("generate")).to_be_enabled()
    expect(page.get_by_test_id("share")).to_be_visible()
    status_reads = [r for r in requests if r.url.endswith(f"{API}/{job_id}")]
    assert [r.headers.get("accept") for r in status_reads] == ["application/json"]
    assert server.service.executions == 1


def test_recent_runs_are_listed_newest_first_with_the_running_one_marked(
    open_page: OpenPage, make_server: ServerFactory
) -> None:
    server = make_server(**SLOW)
    first = run_to_the_end(server, {**VALID_BODY, "pageOrComponent": "Search page"})
    second = run_to_the_end(server, {**VALID_BODY, "pageOrComponent": "Cart drawer"})
    page = open_page(server)
    listed = page.get_by_test_id("run-item")
    expect(listed).to_have_count(2)
    assert [item["jobId"] for item in run_items(page)] == [second, first]
    expect(page.get_by_test_id("runs")).to_contain_text("Recent runs")

    running = create_in_page(page)
    # The list is refreshed when the run starts: the new run first, marked as running.
    expect(listed).to_have_count(3)
    items = run_items(page)
    assert [item["jobId"] for item in items] == [running, second, first]
    assert items[0]["status"] in {"pending", "in_progress"}, items[0]
    assert items[0]["state"] in {"Running", "Starting"}, items[0]
    assert items[0]["spinner"] == "true"
    assert items[0]["target"] == "Checkout page"
    assert [item["state"] for item in items[1:]] == ["Completed", "Completed"]
    assert [item["spinner"] for item in items[1:]] == ["false", "false"]
    current = listed.first.get_by_test_id("run-open")
    expect(current).to_have_attribute("aria-current", "page")
    # A running run cannot be deleted from the list; a finished one can.
    expect(listed.first.get_by_test_id("run-delete")).to_have_count(0)
    expect(listed.nth(1).get_by_test_id("run-delete")).to_have_accessible_name(
        re.compile(r"^Delete the run for Cart drawer")
    )

    # Clicking an item opens it, at its own address.
    listed.nth(1).get_by_test_id("run-open").click()
    expect(page).to_have_url(address_of(second))
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    expect(page.get_by_test_id("page-input")).to_have_value("Cart drawer")
    expect(page.get_by_test_id("suggestion")).to_have_count(3)
    expect(page.get_by_test_id("suggestion").first).to_contain_text("Cart drawer")
    expect(page.get_by_test_id("results-title")).to_be_focused()
    expect(listed.nth(1).get_by_test_id("run-open")).to_have_attribute("aria-current", "page")

    # When the running one finishes (watched again through Back), the list says so.
    page.go_back()
    expect(page).to_have_url(address_of(running))
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete", timeout=15_000)
    assert live_text(page) == expected_text(server.settings)
    page.wait_for_function(
        "() => document.querySelector('#runs-list > li').dataset.status === 'completed'"
    )
    assert server.service.executions == 3


def test_back_returns_to_the_previous_run_and_then_to_the_form(
    open_page: OpenPage, make_server: ServerFactory
) -> None:
    server = make_server()
    expected = expected_text(server.settings)
    page = open_page(server)
    app = page.get_by_test_id("app")
    one = create_in_page(page, "Search page")
    expect(app).to_have_attribute("data-state", "complete")
    two = create_in_page(page, "Cart drawer")
    expect(page).to_have_url(address_of(two))
    expect(app).to_have_attribute("data-state", "complete")
    expect(page.get_by_test_id("suggestion").first).to_contain_text("Cart drawer")

    requests = record_requests(page)
    page.go_back()
    expect(page).to_have_url(address_of(one))
    expect(page.get_by_test_id("page-input")).to_have_value("Search page")
    expect(app).to_have_attribute("data-state", "complete")
    expect(page.get_by_test_id("suggestion").first).to_contain_text("Search page")
    assert live_text(page) == expected  # this tab saw the whole of it
    assert streams_of(requests) == []

    page.go_back()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(app).to_have_attribute("data-state", "idle")
    expect(page.get_by_test_id("run")).to_be_hidden()
    expect(page.get_by_test_id("results")).to_be_hidden()
    expect(page.get_by_test_id("page-input")).to_have_value("")
    expect(page.get_by_test_id("generate")).to_be_enabled()

    page.go_forward()
    expect(page).to_have_url(address_of(one))
    expect(app).to_have_attribute("data-state", "complete")
    expect(page.get_by_test_id("page-input")).to_have_value("Search page")
    assert server.service.executions == 2


def test_a_back_step_away_from_a_running_job_leaves_it_running(
    open_page: OpenPage, make_server: ServerFactory
) -> None:
    server = make_server(**SLOW)
    page = open_page(server)
    job_id = create_in_page(page)
    wait_for_text(page, 60)

    page.go_back()  # to the form the run was started from
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "idle")
    expect(page.get_by_test_id("cancel")).to_be_hidden()
    assert job_status(server, job_id)["status"] == "in_progress"

    page.go_forward()
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete", timeout=15_000)
    assert live_text(page) == expected_text(server.settings)
    assert job_status(server, job_id)["status"] == "completed"
    assert server.service.executions == 1


def test_the_share_link_opens_the_run_read_only_without_a_login(
    open_page: OpenPage,
    make_server: ServerFactory,
    fresh_context: Callable[..., BrowserContext],
) -> None:
    server = make_server()
    page = open_page(server, permissions=["clipboard-read", "clipboard-write"])
    job_id = create_in_page(page)
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    titles = page.locator("[data-testid=suggestion] h3").all_text_contents()

    share = page.get_by_test_id("share")
    expect(share).to_be_visible()
    with page.expect_response(lambda r: r.request.method == "POST" and "/share" in r.url) as made:
        share.click()
    assert made.value.status == 201
    assert made.value.url.endswith(f"{API}/{job_id}/share")
    link = page.get_by_test_id("share-url")
    expect(link).to_be_visible()
    expect(link).to_have_value(re.compile(rf"^{re.escape(server.url)}/\?job={job_id}&share=."))
    url = link.input_value()
    assert url == server.url + made.value.json()["data"]["url"]
    expect(page.get_by_test_id("copy-status")).to_have_text("Share link copied.")
    assert page.evaluate("navigator.clipboard.readText()") == url

    # Somebody else's browser: no cookie.
    viewer = fresh_context(server).new_page()
    requests = record_requests(viewer)
    viewer.goto(url)
    expect(viewer.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    expect(viewer.get_by_test_id("suggestion")).to_have_count(len(titles))
    assert viewer.locator("[data-testid=suggestion] h3").all_text_contents() == titles
    expect(viewer.get_by_test_id("share-notice")).to_be_visible()
    expect(viewer.get_by_test_id("page-input")).to_have_value("Checkout page")
    expect(viewer.get_by_test_id("page-input")).to_be_disabled()
    # Read-only: nothing that starts, stops or changes a run, no list of runs, no agent.
    for hidden in ("generate", "cancel", "try-again", "share", "runs", "agent-panel"):
        expect(viewer.get_by_test_id(hidden)).to_be_hidden()
    expect(viewer.get_by_test_id("notice")).to_be_hidden()  # not "you are not logged in"
    # It asked for the run with the token, and for nothing a token may not read.
    token = parse_qs(urlsplit(url).query)["share"]
    api = [urlsplit(r.url) for r in requests if urlsplit(r.url).path.startswith("/api/")]
    assert [(part.path, parse_qs(part.query)) for part in api] == [
        (f"{API}/{job_id}", {"token": token})
    ], [r.url for r in requests]
    assert streams_of(requests) == []


def test_a_finished_run_deleted_from_the_list_is_gone(
    open_page: OpenPage, make_server: ServerFactory
) -> None:
    server = make_server()
    first = run_to_the_end(server, {**VALID_BODY, "pageOrComponent": "Search page"})
    second = run_to_the_end(server, {**VALID_BODY, "pageOrComponent": "Cart drawer"})
    page = open_page(server)
    settle(page)
    page.goto(f"/?job={second}")
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    listed = page.get_by_test_id("run-item")
    expect(listed).to_have_count(2)

    # The run on show is deleted: its item goes, the page goes back to the empty form, and
    # focus moves to the next run in the list.
    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        listed.first.get_by_test_id("run-delete").click()
    assert deleted.value.status == 204
    assert deleted.value.url.endswith(f"{JOBS}/{second}")
    expect(listed).to_have_count(1)
    assert [item["jobId"] for item in run_items(page)] == [first]
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "idle")
    expect(page.get_by_test_id("page-input")).to_have_value("")
    expect(listed.first.get_by_test_id("run-open")).to_be_focused()
    expect(page.get_by_test_id("announcer")).to_have_text("Run deleted.")

    kept = server.http.get(JOBS, headers=server.auth()).json()["data"]["jobs"]
    assert [job["jobId"] for job in kept] == [first]
