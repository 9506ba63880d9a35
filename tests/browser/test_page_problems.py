"""The browser fixtures' own check: what goes wrong on a page fails the test unless the test
declared it, narrowly (``PageProblems``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.conftest import API, ServerFactory

from .conftest import OpenPage, PageProblem, PageProblems


def wait_until(page: Page, condition: Callable[[], bool], timeout_s: float = 5) -> None:
    """Wait until ``condition`` holds; each round trip to the page takes in its events."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(20)


def kinds(problems: list[PageProblem]) -> list[str]:
    return sorted(problem.kind for problem in problems)


def test_a_clean_page_load_reports_nothing(page: Page, page_problems: PageProblems) -> None:
    expect(page.get_by_test_id("agent-hint")).to_contain_text("Using the default agent")
    assert page_problems.seen == []


def test_undeclared_problems_are_reported_and_declared_ones_excused_narrowly(
    page: Page, page_problems: PageProblems
) -> None:
    page.evaluate("console.error('something broke')")
    page.evaluate("fetch('/api/nothing-here')")
    page.evaluate("fetch('/api/nothing-there')")
    wait_until(page, lambda: len(page_problems.seen) == 5)
    # The console line and the answer of each refusal, and the script's own error.
    everything = ["console", "console", "console", "response", "response"]
    assert kinds(page_problems.unexpected()) == everything

    page_problems.expect_console_error("^something broke$")
    page_problems.expect_refusal(404, "/api/nothing-here")
    # What a declaration covers is that one refusal: the other one still counts.
    left = page_problems.unexpected()
    assert kinds(left) == ["console", "response"]
    assert {problem.path for problem in left} == {"/api/nothing-there"}

    page_problems.expect_refusal(404, "/api/nothing-there")
    assert page_problems.unexpected() == []


def test_the_pages_own_close_of_a_stream_is_not_a_problem(
    open_page: OpenPage, make_server: ServerFactory, page_problems: PageProblems
) -> None:
    server = make_server(scripted_chunks=40, scripted_interval_ms=30)
    page = open_page(server)
    stream_url = f"{API}/{server.create_job()}"
    # The page lets go of a stream in the middle of its body (as it does on `complete`, when
    # the server may still be ending it): Chromium counts the request as aborted.
    page.evaluate(
        """url => new Promise((resolve) => {
            const source = new EventSource(url);
            let deltas = 0;
            source.addEventListener('delta', () => {
              if (++deltas === 3) { source.close(); resolve(); }
            });
        })""",
        stream_url,
    )
    wait_until(page, lambda: len(page_problems.seen) == 1)
    (aborted,) = page_problems.seen
    assert (aborted.kind, aborted.text, aborted.path) == (
        "requestfailed",
        "net::ERR_ABORTED GET (eventsource)",
        stream_url,
    )
    assert page_problems.unexpected() == []
