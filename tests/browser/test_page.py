"""The page at ``/`` in a real browser (Chromium), against a real server.

Each test drives the page as a user would and checks what the user sees, and, where it
matters, what the server recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from feature_planner.agent.providers import scripted_text
from tests.conftest import API, ServerFactory

from .conftest import OpenPage, PageProblems, Relay
from .helpers import expected_text, fill_form, is_create, live_text, states, wait_for_text

Relays = Callable[..., Relay]
JOB_URL = API + "/[0-9a-f-]{36}"  # a job's stream (and cancel) URL


def test_full_flow_streams_text_and_renders_suggestions(
    open_page: OpenPage, make_server: ServerFactory
) -> None:
    server = make_server(
        scripted_chunks=30, scripted_chunk_size=12, scripted_interval_ms=30, throttle_ms=50
    )
    expected = expected_text(server.settings)
    page = open_page(server)
    engine = page.get_by_test_id("provider")
    expect(engine).to_have_text("Engine: Scripted provider (no AI model)")
    expect(engine).to_have_attribute("data-kind", "no-ai")
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "idle")
    expect(page.get_by_test_id("run")).to_be_hidden()

    fill_form(page)
    page.get_by_test_id("generate").click()

    # While it streams: the status says so, Cancel is offered, Generate is not, and the text
    # only ever grows (each sample is a prefix of the whole).
    expect(page.get_by_test_id("status")).to_have_text("Generating suggestions...")
    expect(page.get_by_test_id("cancel")).to_be_visible()
    expect(page.get_by_test_id("generate")).to_be_disabled()
    # As the original design words it: the button says the run is under way.
    expect(page.get_by_test_id("generate")).to_have_text("Generating...")
    samples = []
    deadline = time.monotonic() + 15
    while page.get_by_test_id("app").get_attribute("data-state") != "complete":
        assert time.monotonic() < deadline, f"no completion; states {states(page)}"
        samples.append(live_text(page))
        page.wait_for_timeout(40)
    for sample in samples:
        assert expected.startswith(sample), sample
    assert any(0 < len(sample) < len(expected) for sample in samples), "never saw partial text"

    assert states(page) == ["idle", "creating", "connecting", "streaming", "complete"]
    assert live_text(page) == expected
    expect(page.get_by_test_id("status")).to_have_text("Done.")
    expect(page.get_by_test_id("generate")).to_have_text("Generate Suggestions")
    expect(page.get_by_test_id("progress-value")).to_have_text("100%")
    expect(page.get_by_test_id("cancel")).to_be_hidden()
    expect(page.get_by_test_id("generate")).to_be_enabled()

    cards = page.get_by_test_id("suggestion")
    expect(cards.first).to_be_visible()
    assert cards.count() >= 3
    # The chosen page, type and priority reached the server.
    expect(cards.first).to_contain_text("Checkout page")
    expect(cards.first).to_contain_text("New-Capability")
    expect(cards.first).to_contain_text("critical-priority")

    meta = page.get_by_test_id("meta")
    expect(meta).to_be_visible()
    expect(meta).to_contain_text("Provider")
    expect(meta).to_contain_text("Scripted provider (no AI model)")
    expect(page.get_by_test_id("meta-notice")).to_have_text(
        "Played by the scripted provider; no AI model was used."
    )
    # The run has ended: focus is on the results' heading.
    expect(page.get_by_test_id("results-title")).to_be_focused()
    assert server.service.executions == 1


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_stream_resumes_after_the_connection_is_cut(
    open_page: OpenPage,
    make_server: ServerFactory,
    make_relay: Relays,
    page_problems: PageProblems,
) -> None:
    server = make_server(
        scripted_chunks=120, scripted_chunk_size=5, scripted_interval_ms=70, throttle_ms=0
    )
    # The relay ends the connection in the middle of the stream's chunked body.
    page_problems.expect_request_failed(JOB_URL, "net::ERR_INCOMPLETE_CHUNKED_ENCODING")
    expected = expected_text(server.settings)
    relay = make_relay(server)
    page = open_page(server, base_url=relay.url)
    status = page.get_by_test_id("status")

    fill_form(page)
    page.get_by_test_id("generate").click()

    seen = len(wait_for_text(page, 50))
    for _ in range(2):
        assert relay.cut() >= 1
        expect(status).to_have_text("Reconnecting...", timeout=3_000)
        expect(page.get_by_test_id("app")).to_have_attribute("data-state", "reconnecting")
        # EventSource waits ~3 s (no `retry:` from the server), then resumes with
        # Last-Event-ID; the text goes on growing from where it stopped.
        seen = len(wait_for_text(page, seen + 25, timeout_s=10))
        assert expected.startswith(live_text(page))

    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete", timeout=15_000)
    assert live_text(page) == expected
    assert states(page) == [
        "idle",
        "creating",
        "connecting",
        "streaming",
        "reconnecting",
        "streaming",
        "reconnecting",
        "streaming",
        "complete",
    ]
    assert page.get_by_test_id("suggestion").count() >= 3
    expect(page.get_by_test_id("error-card")).to_be_hidden()
    assert server.service.executions == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        # Control characters pass the page's own `trim()` check; the server strips them.
        ("\u0001\u0007\u0002", "must not be empty"),
        ("x" * 201, "must be at most 200 characters"),
    ],
    ids=["empty-after-sanitizing", "too-long"],
)
def test_server_validation_message_is_shown_next_to_the_field(
    page: Page, page_problems: PageProblems, value: str, message: str
) -> None:
    page_problems.expect_refusal(422, API, method="POST")
    field = page.get_by_test_id("page-input")
    # Get past the browser's own limits, so that the server is the one that refuses.
    field.evaluate("(el, v) => { el.removeAttribute('maxlength'); el.value = v; }", value)
    with page.expect_response(is_create) as created:
        page.get_by_test_id("generate").click()
    response = created.value
    assert response.status == 422
    assert response.json()["error"]["fields"][0]["field"] == "pageOrComponent"

    error = page.get_by_test_id("error-pageOrComponent")
    expect(error).to_be_visible()
    expect(error).to_have_text(message)
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_be_focused()
    expect(page.get_by_test_id("form-error")).to_be_visible()
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "idle")
    expect(page.get_by_test_id("run")).to_be_hidden()

    # Typing clears the field's message.
    field.fill("Collections page")
    expect(error).to_be_hidden()
    expect(field).not_to_have_attribute("aria-invalid", "true")


def test_blank_input_is_refused_by_the_page_itself(page: Page) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.get_by_test_id("page-input").fill("   ")
    page.get_by_test_id("generate").click()
    expect(page.get_by_test_id("error-pageOrComponent")).to_have_text("Enter a page or component.")
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "idle")
    assert [url for url in requests if "suggest" in url] == []


def test_cancel_mid_stream_returns_to_idle_and_cancels_the_job(
    open_page: OpenPage, make_server: ServerFactory
) -> None:
    server = make_server(
        scripted_chunks=100, scripted_chunk_size=5, scripted_interval_ms=50, throttle_ms=0
    )
    expected = expected_text(server.settings)
    page = open_page(server)
    fill_form(page)
    with page.expect_response(is_create) as created:
        page.get_by_test_id("generate").click()
    job_id = created.value.json()["data"]["jobId"]
    wait_for_text(page, 20)

    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        page.get_by_test_id("cancel").click()
    assert deleted.value.status == 202
    assert deleted.value.url.endswith(f"{API}/{job_id}")
    # The form is as it was, and focus is back in it.
    expect(page.get_by_test_id("page-input")).to_have_value("Checkout page")
    expect(page.get_by_test_id("priority")).to_have_value("critical")
    expect(page.get_by_test_id("page-input")).to_be_focused()

    app = page.get_by_test_id("app")
    expect(app).to_have_attribute("data-state", "idle")
    expect(page.get_by_test_id("run")).to_be_hidden()
    expect(page.get_by_test_id("cancel")).to_be_hidden()
    expect(page.get_by_test_id("generate")).to_be_enabled()
    assert live_text(page) == ""

    # The server ended the job as cancelled, part-way through.
    stream = server.stream(job_id, last_event_id=0)
    assert stream.status == 200
    assert stream.last.event == "error"
    assert stream.last.json()["code"] == "CANCELLED"
    assert expected.startswith(stream.text)
    assert len(stream.text) < len(expected)
    assert server.service.executions == 1

    # Nothing from the cancelled run reaches the page afterwards.
    page.wait_for_timeout(500)
    assert app.get_attribute("data-state") == "idle"
    expect(page.get_by_test_id("results")).to_be_hidden()
    expect(page.get_by_test_id("error-card")).to_be_hidden()
    assert states(page) == ["idle", "creating", "connecting", "streaming", "idle"]


def test_provider_error_shows_an_error_card_and_try_again_resubmits(
    open_page: OpenPage, make_server: ServerFactory
) -> None:
    server = make_server(scripted_fail_at=5, scripted_interval_ms=20)
    chunks = scripted_text(server.settings.scripted_chunks, server.settings.scripted_chunk_size)
    page = open_page(server)
    fill_form(page)
    page.get_by_test_id("generate").click()

    card = page.get_by_test_id("error-card")
    message = "The scripted provider failed on purpose (before chunk 5)"
    expect(card).to_be_visible()
    expect(page.get_by_test_id("error-title")).to_have_text("The run failed")
    expect(page.get_by_test_id("error-message")).to_have_text(message)
    expect(card).to_have_attribute("data-code", "PROVIDER_ERROR")
    expect(card).to_be_focused()
    expect(page.get_by_test_id("status")).to_have_text("Stopped.")
    expect(page.get_by_test_id("generate")).to_be_enabled()
    # Text produced before the failure was flushed before the error.
    assert live_text(page) == "".join(chunks[:5])
    assert server.service.executions == 1

    with page.expect_response(is_create) as created:
        page.get_by_test_id("try-again").click()
    assert created.value.status == 201
    assert created.value.request.post_data_json == {
        "pageOrComponent": "Checkout page",
        "featureType": "new-capability",
        "priorityLevel": "critical",
    }
    page.wait_for_function("() => window.__fpStates.filter((s) => s === 'error').length === 2")
    expect(card).to_be_visible()
    expect(page.get_by_test_id("error-message")).to_have_text(message)
    assert live_text(page) == "".join(chunks[:5])
    assert server.service.executions == 2
    run = ["creating", "connecting", "streaming", "error"]
    assert states(page) == ["idle", *run, *run]


def test_not_logged_in_says_so(
    open_page: OpenPage, make_server: ServerFactory, page_problems: PageProblems
) -> None:
    server = make_server()
    # The page asks for its configuration and the user's agent; both need a login.
    page_problems.expect_refusal(401, "/api/feature-planner/config")
    page_problems.expect_refusal(401, "/api/feature-planner/agent")
    page = open_page(server, logged_in=False)
    notice = page.get_by_test_id("notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("not logged in")
    expect(page.get_by_test_id("page-input")).to_be_disabled()
    expect(page.get_by_test_id("generate")).to_be_disabled()

    # Opening the login link logs the browser in and back to the page.
    page.goto(server.auth_backend.login_links(server.url)["alice"])
    expect(page.get_by_test_id("page-input")).to_be_enabled()
    expect(notice).to_be_hidden()


def test_a_refused_stream_is_explained_with_the_servers_message(
    open_page: OpenPage, make_server: ServerFactory, page_problems: PageProblems
) -> None:
    # One stream per user, and alice's one is held open elsewhere: the page's EventSource
    # is refused with 429, which it cannot see; it asks the server and says why.
    server = make_server(max_streams_per_user=1, scripted_chunks=80, scripted_interval_ms=20)
    page = open_page(server)
    held_job = server.create_job()
    headers = {**server.auth(), "accept": "text/event-stream"}
    with server.http.stream("GET", f"{API}/{held_job}", headers=headers) as held:
        assert held.status_code == 200
        # Keep the iterator: dropping it would close the response.
        received = held.iter_raw()
        assert b"event: connected" in next(received)  # the slot is taken

        fill_form(page)
        with page.expect_response(is_create) as created:
            page.get_by_test_id("generate").click()
        job_id = created.value.json()["data"]["jobId"]
        # The EventSource is refused, and so is the page's own request that asks why.
        page_problems.expect_refusal(429, f"{API}/{job_id}")

        card = page.get_by_test_id("error-card")
        expect(card).to_be_visible()
        expect(page.get_by_test_id("error-title")).to_have_text("The server refused the stream")
        expect(page.get_by_test_id("error-message")).to_have_text(
            "You already have 1 streams open; close one before opening another"
        )
        expect(page.get_by_test_id("error-hint")).to_contain_text("Too many streams are open")
        expect(card).to_have_attribute("data-status", "429")
        expect(card).to_have_attribute("data-code", "TOO_MANY_STREAMS")
        expect(card).to_be_focused()
        expect(page.get_by_test_id("generate")).to_be_enabled()
        expect(page.get_by_test_id("try-again")).to_be_visible()
        assert states(page)[-1] == "error"

    # The page cancelled the job it could not stream, so it never runs.
    deadline = time.monotonic() + 5
    while (status := server.delete(job_id).status_code) != 410:
        assert time.monotonic() < deadline, f"the refused job was not cancelled ({status})"
        time.sleep(0.05)
    assert server.service.executions == 1  # the held job only

    # With the slot free again, Try again runs to the end.
    deadline = time.monotonic() + 5
    while server.service.open_streams:
        assert time.monotonic() < deadline, "the held stream's slot was not released"
        time.sleep(0.05)
    page.get_by_test_id("try-again").click()
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    expect(page.get_by_test_id("suggestion")).to_have_count(3)


def test_user_text_is_never_interpreted_as_html(page: Page) -> None:
    # The scripted suggestions echo the page name in their titles and descriptions.
    target = '<b>bold</b><img src=x onerror="window.__xss = 1">'
    fill_form(page, target)
    page.get_by_test_id("generate").click()
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")

    cards = page.get_by_test_id("suggestion")
    expect(cards).to_have_count(3)
    expect(cards.first.locator("h3")).to_contain_text(f"for {target}")
    expect(cards.first.locator(".description")).to_contain_text(target)
    assert page.locator("#app b, #app img").count() == 0
    assert page.evaluate("window.__xss") is None


def test_the_offline_engine_is_labelled_as_no_ai_model(
    open_page: OpenPage, make_server: ServerFactory
) -> None:
    server = make_server(provider="offline", offline_interval_ms=0)
    page = open_page(server)
    engine = page.get_by_test_id("provider")
    expect(engine).to_have_text("Engine: Offline engine (no AI model)")
    expect(engine).to_have_attribute("data-kind", "no-ai")

    page.get_by_test_id("page-input").fill("Collections page")
    page.get_by_test_id("generate").click()
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    # Above the cards, and again under them, it says no AI model wrote them.
    expect(page.get_by_test_id("meta-notice")).to_contain_text("no AI model was used")
    meta = page.get_by_test_id("meta")
    expect(meta).to_contain_text("Offline engine (no AI model)")
    expect(meta).to_contain_text("offline-engine")
    assert page.get_by_test_id("suggestion").count() >= 1


def test_the_page_says_which_repository_it_plans_for_as_plain_text(
    open_page: OpenPage, make_server: ServerFactory, tmp_path: Path
) -> None:
    # A directory name that would run script if the page took it for markup.
    repository = tmp_path / '<img src=x onerror="window.__xss=1"> shop & <script>window.__xss=2<'
    repository.mkdir()
    server = make_server(repository=str(repository))
    page = open_page(server)

    line = page.get_by_test_id("repository")
    expect(line).to_be_visible()
    expect(line).to_have_text(f"Planning for {repository.name}")
    assert page.locator("h1 + [data-testid=repository]").count() == 1  # under the heading
    assert page.locator(".page-header img, .page-header script").count() == 0
    assert page.evaluate("window.__xss") is None
    # The name only: where the repository is on the server is not the page's business.
    assert str(tmp_path) not in page.content()
