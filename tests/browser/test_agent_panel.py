"""The custom-agent settings panel, in Chromium against a real server.

The panel edits ``/api/feature-planner/agent`` for the logged-in user; what it saved is
checked over HTTP with alice's bearer token, and a job run afterwards must use it.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.conftest import ServerFactory

from .conftest import OpenPage, PageProblems
from .helpers import horizontal_overflow

AGENT = "/api/feature-planner/agent"
DEFAULT_HINT = "Using the default agent"
NO_AGENT = {"success": True, "data": None}

PROFILE: dict[str, Any] = {
    "name": "Accessibility reviewer",
    "role": "Front-end engineer who audits pages for accessibility",
    "focus": "Keyboard use, labels and contrast",
    "systemPrompt": "You review pages for accessibility and propose fixes.",
    "temperature": 0.3,
    "tools": ["Glob", "Read"],
    "isActive": True,
}


def open_panel(page: Page) -> None:
    """Open the collapsed panel with the keyboard, as a keyboard user would."""
    summary = page.get_by_test_id("agent-summary")
    summary.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("agent-panel")).to_have_attribute("open", "")
    expect(page.get_by_test_id("agent-name")).to_be_enabled()


def fill_panel(page: Page, profile: dict[str, Any]) -> None:
    page.get_by_test_id("agent-name").fill(profile["name"])
    page.get_by_test_id("agent-role").fill(profile["role"])
    page.get_by_test_id("agent-focus").fill(profile["focus"])
    page.get_by_test_id("agent-prompt").fill(profile["systemPrompt"])
    page.get_by_test_id("agent-temperature").fill(str(profile["temperature"]))
    for tool in ("Glob", "Grep", "Read"):
        page.get_by_test_id(f"agent-tool-{tool}").set_checked(tool in profile["tools"])
    page.get_by_test_id("agent-active").set_checked(profile["isActive"])


def test_an_agent_saved_in_the_panel_is_stored_and_used_by_runs(
    open_page: OpenPage, make_server: ServerFactory, page_problems: PageProblems
) -> None:
    server = make_server()
    page = open_page(server)
    # No agent yet, the normal case: the server answers `data: null`, not an error, so the
    # page loads without a failed request; the panel offers an empty form with the defaults.
    expect(page.get_by_test_id("agent-hint")).to_contain_text(DEFAULT_HINT)
    assert page_problems.seen == []
    assert server.http.get(AGENT, headers=server.auth()).json() == NO_AGENT
    open_panel(page)
    expect(page.get_by_test_id("agent-name")).to_have_value("")
    expect(page.get_by_test_id("agent-temperature")).to_have_value("0.7")
    for tool in ("Glob", "Grep", "Read"):
        expect(page.get_by_test_id(f"agent-tool-{tool}")).to_be_checked()
    expect(page.get_by_test_id("agent-active")).to_be_checked()
    expect(page.get_by_test_id("agent-remove")).to_be_disabled()
    expect(page.get_by_test_id("agent-temperature-hint")).to_contain_text("Anthropic")

    fill_panel(page, PROFILE)
    with page.expect_response(lambda r: r.request.method == "PUT") as put:
        page.get_by_test_id("agent-save").click()
    assert put.value.status == 200
    expect(page.get_by_test_id("agent-status")).to_have_text("Saved")
    expect(page.get_by_test_id("agent-hint")).to_contain_text(PROFILE["name"])
    expect(page.get_by_test_id("agent-remove")).to_be_enabled()

    stored = server.http.get(AGENT, headers=server.auth())
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"success": True, "data": PROFILE}

    # A job run afterwards is planned by that agent.
    stream = server.stream(server.create_job())
    assert stream.last.event == "complete", stream.names
    assert f"by the agent {PROFILE['name']}" in stream.last.json()["context"]

    # A new visit loads the stored agent into the panel.
    again = open_page(server)
    expect(again.get_by_test_id("agent-name")).to_have_value(PROFILE["name"])
    expect(again.get_by_test_id("agent-prompt")).to_have_value(PROFILE["systemPrompt"])
    expect(again.get_by_test_id("agent-temperature")).to_have_value("0.3")
    expect(again.get_by_test_id("agent-tool-Grep")).not_to_be_checked()
    expect(again.get_by_test_id("agent-tool-Read")).to_be_checked()
    expect(again.get_by_test_id("agent-hint")).not_to_contain_text(DEFAULT_HINT)


def test_the_servers_field_errors_are_shown_next_to_their_fields(
    open_page: OpenPage, make_server: ServerFactory, page_problems: PageProblems
) -> None:
    server = make_server()
    page_problems.expect_refusal(422, AGENT, method="PUT")
    # What the server says about each mistake, asked directly.
    refused = server.http.put(
        AGENT, json={**PROFILE, "name": "", "temperature": 1.5}, headers=server.auth()
    )
    assert refused.status_code == 422, refused.text
    messages = {f["field"]: f["message"] for f in refused.json()["error"]["fields"]}
    assert set(messages) == {"name", "temperature"}

    page = open_page(server)
    open_panel(page)
    fill_panel(page, {**PROFILE, "temperature": 1.5})
    page.get_by_test_id("agent-name").fill("")
    # Enter in a text field submits the panel's form.
    page.get_by_test_id("agent-focus").press("Enter")

    for field in ("name", "temperature"):
        expect(page.get_by_test_id(f"agent-error-{field}")).to_have_text(messages[field])
    expect(page.get_by_test_id("agent-name")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_test_id("agent-temperature")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_test_id("agent-error-role")).to_be_hidden()
    expect(page.get_by_test_id("agent-status")).to_contain_text("Not saved")
    expect(page.get_by_test_id("agent-name")).to_be_focused()
    assert server.http.get(AGENT, headers=server.auth()).json() == NO_AGENT

    # Corrected, the same form saves; the errors go.
    page.get_by_test_id("agent-name").fill("Fixed")
    page.get_by_test_id("agent-temperature").fill("1")
    page.get_by_test_id("agent-save").click()
    expect(page.get_by_test_id("agent-status")).to_have_text("Saved")
    expect(page.get_by_test_id("agent-error-name")).to_be_hidden()
    expect(page.get_by_test_id("agent-error-temperature")).to_be_hidden()
    stored = server.http.get(AGENT, headers=server.auth()).json()["data"]
    assert (stored["name"], stored["temperature"]) == ("Fixed", 1.0)


def test_remove_deletes_the_agent_and_resets_the_panel(
    open_page: OpenPage, make_server: ServerFactory
) -> None:
    server = make_server()
    saved = server.http.put(AGENT, json=PROFILE, headers=server.auth())
    assert saved.status_code == 200, saved.text
    page = open_page(server)
    open_panel(page)
    expect(page.get_by_test_id("agent-name")).to_have_value(PROFILE["name"])

    page.get_by_test_id("agent-remove").focus()
    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        page.keyboard.press("Enter")
    assert deleted.value.status == 204
    expect(page.get_by_test_id("agent-status")).to_have_text("Removed")
    expect(page.get_by_test_id("agent-hint")).to_contain_text(DEFAULT_HINT)
    expect(page.get_by_test_id("agent-name")).to_have_value("")
    expect(page.get_by_test_id("agent-prompt")).to_have_value("")
    expect(page.get_by_test_id("agent-temperature")).to_have_value("0.7")
    expect(page.get_by_test_id("agent-tool-Grep")).to_be_checked()
    expect(page.get_by_test_id("agent-remove")).to_be_disabled()
    # Focus stayed in the panel.
    expect(page.get_by_test_id("agent-name")).to_be_focused()

    gone = server.http.get(AGENT, headers=server.auth())
    assert gone.status_code == 200
    assert gone.json() == NO_AGENT
    stream = server.stream(server.create_job())
    assert "by the agent" not in stream.last.json()["context"]


def test_the_panel_fits_a_phone(
    open_page: OpenPage, make_server: ServerFactory, page_problems: PageProblems
) -> None:
    server = make_server()
    page_problems.expect_refusal(422, AGENT, method="PUT")  # the form is sent with mistakes
    page = open_page(server, viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    open_panel(page)
    fill_panel(page, {**PROFILE, "name": "", "temperature": 2})
    page.get_by_test_id("agent-role").fill("Reviewer" * 40)
    page.get_by_test_id("agent-save").tap()
    expect(page.get_by_test_id("agent-error-temperature")).to_be_visible()
    assert horizontal_overflow(page) == 0
    for testid in (
        "agent-panel",
        "agent-name",
        "agent-prompt",
        "agent-temperature",
        "agent-tool-Read",
        "agent-save",
        "agent-remove",
        "agent-status",
        "agent-error-temperature",
    ):
        box = page.get_by_test_id(testid).bounding_box()
        assert box is not None, testid
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375, (testid, box)
