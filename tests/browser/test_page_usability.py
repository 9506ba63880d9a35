"""The page for people: keyboard-only use, a phone, the dark scheme, copy and download.

Like ``test_page.py``, each test drives Chromium against a real server with the scripted
provider, and checks what the user sees, hears (the live region) and gets.
"""

from __future__ import annotations

import json
from pathlib import Path

from playwright.sync_api import expect

from tests.conftest import ServerFactory

from .conftest import OpenPage
from .helpers import (
    announced,
    expected_text,
    fill_form,
    focused_id,
    is_create,
    live_text,
    states,
    wait_for_text,
)

# Every form control, button and focusable region has a name a screen reader can say.
UNLABELLED_CONTROLS = """
() => [...document.querySelectorAll('input, select, textarea, button, [tabindex]')]
  .filter((el) => !el.classList.contains('clipboard-proxy'))
  .filter((el) => {
    const name = (el.labels && [...el.labels].map((l) => l.textContent).join(' '))
      || el.getAttribute('aria-label')
      || (el.getAttribute('aria-labelledby') || '').split(' ')
           .map((id) => (document.getElementById(id) || {}).textContent || '').join(' ')
      || el.textContent;
    return !name || !name.trim();
  })
  .map((el) => el.outerHTML.slice(0, 80))
"""

# The relative luminance (WCAG) of an element's text and of the background it is drawn on
# (its own, or the nearest opaque one behind it).
LUMINANCE = """
(selector) => {
  const channel = (c) => {
    c /= 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const parts = (value) => value.match(/[\\d.]+/g).map(Number);
  const lum = (value) => {
    const [r, g, b] = parts(value).slice(0, 3).map(channel);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const opaque = (value) => { const p = parts(value); return p.length < 4 || p[3] > 0.5; };
  let node = document.querySelector(selector);
  const text = getComputedStyle(node).color;
  while (node && !opaque(getComputedStyle(node).backgroundColor)) node = node.parentElement;
  const background = node ? getComputedStyle(node).backgroundColor : 'rgb(255, 255, 255)';
  return { background: lum(background), text: lum(text) };
}
"""


def contrast(colours: dict[str, float]) -> float:
    high, low = max(colours.values()), min(colours.values())
    return (high + 0.05) / (low + 0.05)


def test_keyboard_only(open_page: OpenPage, make_server: ServerFactory) -> None:
    server = make_server(scripted_chunks=80, scripted_chunk_size=8, scripted_interval_ms=15)
    page = open_page(server)
    keyboard = page.keyboard
    assert page.evaluate(UNLABELLED_CONTROLS) == []

    # Tab through the form in reading order, filling it in with keys only.
    keyboard.press("Tab")
    assert focused_id(page) == "pageOrComponent"
    keyboard.type("Search page")
    keyboard.press("Tab")
    assert focused_id(page) == "featureType"
    keyboard.press("ArrowDown")  # enhancement → new capability
    keyboard.press("Tab")
    assert focused_id(page) == "priorityLevel"
    keyboard.press("ArrowDown")  # medium → high
    keyboard.press("Tab")
    assert focused_id(page) == "additionalContext"
    keyboard.type("Mobile first")
    expect(page.get_by_test_id("context-count")).to_have_text("12 / 1000 characters")
    keyboard.press("Tab")
    assert focused_id(page) == "generate"
    # The focus ring is visible.
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"

    with page.expect_response(is_create) as created:
        keyboard.press("Enter")
    assert created.value.request.post_data_json == {
        "pageOrComponent": "Search page",
        "featureType": "new-capability",
        "priorityLevel": "high",
        "additionalContext": "Mobile first",
    }
    # Generate is disabled while the run is under way: focus moved to Cancel, not lost.
    expect(page.get_by_test_id("cancel")).to_be_focused()
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    # The run has ended: focus is on the results' heading, and Tab leads to the actions.
    expect(page.get_by_test_id("results-title")).to_be_focused()
    expect(page.get_by_test_id("suggestion")).to_have_count(3)
    keyboard.press("Tab")
    expect(page.get_by_test_id("copy")).to_be_focused()
    keyboard.press("Tab")
    expect(page.get_by_test_id("download")).to_be_focused()
    assert page.evaluate(UNLABELLED_CONTROLS) == []

    # The live region announced the states, not the text: a handful of messages at most.
    expect(page.get_by_test_id("announcer")).to_have_text("Done: 3 suggestions.")
    messages = announced(page)
    assert messages[-1] == "Done: 3 suggestions.", messages
    allowed = {"Creating job", "Connecting to AI", "Generating suggestions"}
    assert set(messages[:-1]) <= allowed, messages
    assert page.locator("[aria-live]").count() == 1

    # A second run, cancelled with Escape: back to idle, the form as it was, the job
    # cancelled on the server.
    keyboard.press("Shift+Tab")
    keyboard.press("Shift+Tab")
    for _ in range(4):  # back past the results heading and the collapsed live text
        if focused_id(page) == "generate":
            break
        keyboard.press("Shift+Tab")
    assert focused_id(page) == "generate"
    keyboard.press("Enter")
    wait_for_text(page, 16)
    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        keyboard.press("Escape")
    assert deleted.value.status == 202
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "idle")
    expect(page.get_by_test_id("page-input")).to_be_focused()
    expect(page.get_by_test_id("page-input")).to_have_value("Search page")
    expect(page.get_by_test_id("context")).to_have_value("Mobile first")
    expect(page.get_by_test_id("announcer")).to_have_text("Cancelled.")
    assert states(page)[-2:] == ["streaming", "idle"]


def test_phone_sized_viewport(open_page: OpenPage, make_server: ServerFactory) -> None:
    server = make_server(scripted_chunks=40, scripted_chunk_size=12, scripted_interval_ms=20)
    page = open_page(server, viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)

    def fits() -> None:
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= 375, f"the page is {width} px wide at {states(page)[-1]}"

    fits()
    generate = page.get_by_test_id("generate")
    assert (generate.bounding_box() or {"x": 999})["x"] + 10 < 375
    # A long name without a space must wrap, not widen the page.
    target = "CheckoutPage" * 12
    fill_form(page, target)
    generate.tap()
    wait_for_text(page, 24)
    fits()
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    assert live_text(page) == expected_text(server.settings)
    expect(page.get_by_test_id("suggestion")).to_have_count(3)
    expect(page.get_by_test_id("suggestion").first).to_contain_text(target)
    fits()
    for box in page.locator("[data-testid=suggestion], #meta, .results-actions").all():
        place = box.bounding_box() or {"x": 0, "width": 0}
        assert place["x"] >= 0 and place["x"] + place["width"] <= 375


def test_dark_colour_scheme(open_page: OpenPage, make_server: ServerFactory) -> None:
    server = make_server()
    page = open_page(server, color_scheme="dark")
    body = page.evaluate(LUMINANCE, "body")
    assert body["background"] < 0.03, body  # a dark background
    assert contrast(body) >= 7, body  # with light text
    fill_form(page)
    page.get_by_test_id("generate").click()
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    card = page.evaluate(LUMINANCE, "[data-testid=suggestion]")
    assert card["background"] < 0.03, card
    assert contrast(card) >= 7, card
    # Readable text everywhere (WCAG AA: 4.5:1).
    for selector in (
        "#generate",
        "#status",
        "#meta dt",
        "#meta dd",
        ".rationale",
        "[data-testid=provider]",
        "[data-testid=repository]",
        "[data-testid=meta-notice]",
        ".suggestion-number",
        "#copy",
    ):
        ratio = contrast(page.evaluate(LUMINANCE, selector))
        assert ratio >= 4.5, f"{selector}: {ratio:.1f}:1"
    # The same page in the light scheme is light, and as readable.
    page.emulate_media(color_scheme="light")
    assert page.evaluate(LUMINANCE, "body")["background"] > 0.8
    for selector in ("#generate", "#meta dd", ".rationale", "[data-testid=meta-notice]"):
        ratio = contrast(page.evaluate(LUMINANCE, selector))
        assert ratio >= 4.5, f"{selector} (light): {ratio:.1f}:1"


def test_copy_as_markdown_and_download_as_json(
    open_page: OpenPage, make_server: ServerFactory, tmp_path: Path
) -> None:
    server = make_server()
    page = open_page(server, permissions=["clipboard-read", "clipboard-write"])
    fill_form(page)
    with page.expect_response(is_create) as created:
        page.get_by_test_id("generate").click()
    job_id = created.value.json()["data"]["jobId"]
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    titles = page.locator("[data-testid=suggestion] h3 > span:last-child").all_text_contents()
    assert len(titles) == 3

    # Copy: Markdown with every suggestion, through the Clipboard API.
    page.get_by_test_id("copy").click()
    expect(page.get_by_test_id("copy-status")).to_have_text("Copied as Markdown.")
    markdown = page.evaluate("navigator.clipboard.readText()")
    assert markdown.startswith("# Feature suggestions for Checkout page\n")
    for number, title in enumerate(titles, 1):
        assert f"\n## {number}. {title}\n" in markdown
    assert "Scripted provider (no AI model)" in markdown
    assert "- Consideration 1.1\n" in markdown

    # Without the Clipboard API (a page served over plain http to another host) the
    # fallback copies the same text.
    page.evaluate("""async () => {
        window.__clipboard = navigator.clipboard;
        await window.__clipboard.writeText('');
        Object.defineProperty(Navigator.prototype, 'clipboard', { get: () => undefined });
    }""")
    page.get_by_test_id("copy").click()
    expect(page.get_by_test_id("copy-status")).to_have_text("Copied as Markdown.")
    assert page.evaluate("window.__clipboard.readText()") == markdown
    expect(page.get_by_test_id("copy")).to_be_focused()

    # Download: the run as the server exports it (JSON here), saved from a Blob URL, which
    # the page's CSP allows.
    page.get_by_test_id("download").click()
    with page.expect_download() as download_info:
        page.get_by_test_id("download-json").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".json")
    saved = tmp_path / "result.json"
    download.save_as(saved)
    result = json.loads(saved.read_text())
    assert [s["title"] for s in result["result"]["suggestions"]] == titles
    assert result["jobId"] == job_id
    assert result["input"]["pageOrComponent"] == "Checkout page"
    assert result["result"]["provider"] == "scripted"
    assert {"tokenUsage", "executionTimeMs", "model", "notice"} <= result["result"].keys()
    expect(page.get_by_test_id("download-json")).to_be_focused()
