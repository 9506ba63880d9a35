"""The page at ``/`` in a real browser (Chromium), against a real server.

Each test drives the page as a user would and checks what the user sees, and, where it
matters, what the server recorded.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Response, expect

from feature_planner.agent.providers import scripted_text
from feature_planner.config import Settings
from tests.conftest import API, ServerFactory

from .conftest import OpenPage, Relay

Relays = Callable[..., Relay]


def expected_text(settings: Settings) -> str:
    return "".join(scripted_text(settings.scripted_chunks, settings.scripted_chunk_size))


def live_text(page: Page) -> str:
    return page.locator("#live-content").text_content() or ""


def states(page: Page) -> list[str]:
    """Every state the page's state machine went through, in order."""
    recorded: list[str] = page.evaluate("window.__fpStates")
    return recorded


def fill_form(page: Page, target: str = "Checkout page") -> None:
    page.get_by_test_id("page-input").fill(target)
    page.get_by_test_id("feature-type").select_option("new-capability")
    page.get_by_test_id("priority").select_option("critical")


def wait_for_text(page: Page, length: int, timeout_s: float = 10) -> str:
    """Wait until the live text is at least ``length`` code units long; return it."""
    page.wait_for_function(
        "n => document.getElementById('live-content').textContent.length >= n",
        arg=length,
        timeout=timeout_s * 1000,
    )
    return live_text(page)


def is_create(response: Response) -> bool:
    return response.request.method == "POST" and response.request.url.endswith(API)


def test_full_flow_streams_text_and_renders_suggestions(
    open_page: OpenPage, make_server: ServerFactory
) -> None:
    server = make_server(
        scripted_chunks=30, scripted_chunk_size=12, scripted_interval_ms=30, throttle_ms=50
    )
    expected = expected_text(server.settings)
    page = open_page(server)
    expect(page.get_by_test_id("provider")).to_have_text("Engine: Scripted provider (no AI model)")
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "idle")
    expect(page.get_by_test_id("run")).to_be_hidden()

    fill_form(page)
    page.get_by_test_id("generate").click()

    # While it streams: the status says so, Cancel is offered, Generate is not, and the text
    # only ever grows (each sample is a prefix of the whole).
    expect(page.get_by_test_id("status")).to_have_text("Generating suggestions…")
    expect(page.get_by_test_id("cancel")).to_be_visible()
    expect(page.get_by_test_id("generate")).to_be_disabled()
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
    expect(page.get_by_test_id("meta-notice")).to_contain_text("no AI model")
    assert server.service.executions == 1


def test_stream_resumes_after_the_connection_is_cut(
    open_page: OpenPage, make_server: ServerFactory, make_relay: Relays
) -> None:
    server = make_server(
        scripted_chunks=120, scripted_chunk_size=5, scripted_interval_ms=70, throttle_ms=0
    )
    expected = expected_text(server.settings)
    relay = make_relay(server)
    page = open_page(server, base_url=relay.url)
    status = page.get_by_test_id("status")

    fill_form(page)
    page.get_by_test_id("generate").click()

    seen = len(wait_for_text(page, 50))
    for _ in range(2):
        assert relay.cut() >= 1
        expect(status).to_have_text("Reconnecting…", timeout=3_000)
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
    page: Page, value: str, message: str
) -> None:
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
    creates = []
    page.on("request", lambda request: creates.append(request) if "suggest" in request.url else 0)
    page.get_by_test_id("page-input").fill("   ")
    page.get_by_test_id("generate").click()
    expect(page.get_by_test_id("error-pageOrComponent")).to_have_text("Enter a page or component.")
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "idle")
    assert creates == []


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
    expect(page.get_by_test_id("error-message")).to_have_text(message)
    expect(card).to_have_attribute("data-code", "PROVIDER_ERROR")
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


def test_not_logged_in_says_so(open_page: OpenPage, make_server: ServerFactory) -> None:
    server = make_server()
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
