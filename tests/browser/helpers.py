"""Small helpers shared by the browser tests."""

from __future__ import annotations

from playwright.sync_api import Page, Response

from feature_planner.agent.providers import scripted_text
from feature_planner.config import Settings
from tests.conftest import API


def expected_text(settings: Settings) -> str:
    return "".join(scripted_text(settings.scripted_chunks, settings.scripted_chunk_size))


def live_text(page: Page) -> str:
    return page.locator("#live-content").text_content() or ""


def states(page: Page) -> list[str]:
    """Every state the page's state machine went through, in order."""
    recorded: list[str] = page.evaluate("window.__fpStates")
    return recorded


def announced(page: Page) -> list[str]:
    """Every text the page's live region was given, in order."""
    recorded: list[str] = page.evaluate("window.__fpAnnounced")
    return recorded


def focused_id(page: Page) -> str:
    """The id of the focused element ('' for none or the body)."""
    focused: str = page.evaluate("document.activeElement ? document.activeElement.id : ''")
    return focused


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


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the document is wider than the viewport (0 when it fits)."""
    overflow: int = page.evaluate(
        "document.scrollingElement.scrollWidth - document.documentElement.clientWidth"
    )
    return overflow
