"""Suggestions on the page as they arrive: each card at its ``suggestion`` event, before
``complete`` and never twice; the progress bar following the ``progress`` events; evidence
as ``path:start-end`` (an en dash on the page) with its quote, linked to the repository's
web host when one is set."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from feature_planner.agent.providers import ScriptedProvider, scripted_text
from feature_planner.config import load_settings
from feature_planner.models import Effort, Evidence, Impact, Suggestion
from feature_planner.serving import BackgroundServer
from feature_planner.web.app import create_app
from tests.conftest import ALICE, BOB, LiveServer, ServerFactory

from .conftest import OpenPage
from .helpers import fill_form, states

DASH = "\u2013"  # between a range's lines, as the page writes it

PROGRESS_KEY = "feature-planner:job:"

# Installed in the page before a run: what the cards, the bar and the phase line went
# through, each change as it happened (mutation observers see changes that last no time).
RECORDER = """
() => {
  const app = document.getElementById('app');
  const cards = document.getElementById('cards');
  const bar = document.getElementById('progress');
  const phase = document.getElementById('phase');
  const seen = { cards: [], values: [], phases: [] };
  window.__fpSeen = seen;
  new MutationObserver(() => {
    const count = cards.querySelectorAll('[data-testid=suggestion]').length;
    const last = seen.cards[seen.cards.length - 1];
    if (count && (!last || last.count !== count)) {
      seen.cards.push({ count, state: app.dataset.state, at: performance.now() });
    }
  }).observe(cards, { childList: true });
  new MutationObserver(() => {
    seen.values.push(Number(bar.getAttribute('aria-valuenow')));
  }).observe(bar, { attributes: true, attributeFilter: ['aria-valuenow'] });
  new MutationObserver(() => {
    if (!phase.hidden) seen.phases.push(phase.textContent);
  }).observe(phase, { childList: true, subtree: true, characterData: true, attributes: true });
}
"""


def seen(page: Page) -> dict[str, Any]:
    recorded: dict[str, Any] = page.evaluate("window.__fpSeen")
    return recorded


def card_titles(page: Page) -> list[str]:
    return page.locator("[data-testid=suggestion] .suggestion-title").all_text_contents()


# -- a scripted run whose suggestions cite the repository -----------------------------------

PAGE_FILE = "src/app/(shop)/[slug]/page.tsx"
PAGE_SOURCE = (
    "export default async function ProductPage() {\n"
    "  const res = await fetch('/api/products')\n"
    "  const products = await res.json()\n"
    "  return <ProductList products={products} />\n"
    "}\n"
)
CITING = [
    Suggestion(
        title="Check the products response",
        rationale="A failed request shows an empty list",
        description="Show an error state when the API answers an error.",
        implementation_considerations=["Reuse the error banner"],
        evidence=[
            Evidence(
                path=PAGE_FILE,
                start_line=2,
                end_line=3,
                quote="const res = await fetch('/api/products')\nconst products = await res.json()",
            ),
            Evidence(path="README.md", start_line=1, end_line=1, quote="# Demo shop"),
        ],
        effort=Effort.SMALL,
        impact=Impact.HIGH,
    ),
    Suggestion(
        title="Page the product list",
        rationale="Every product loads at once",
        description="Load them 50 at a time.",
        evidence=[
            Evidence(path=PAGE_FILE, start_line=4, end_line=4, quote="<ProductList products")
        ],
        effort=Effort.MEDIUM,
        impact=Impact.MEDIUM,
    ),
]
REPOSITORY_URL = "https://git.example.com/acme/shop/blob/main/"  # the slash is dropped


@pytest.fixture
def citing_server(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., LiveServer]]:
    """``citing_server(**settings)``: a real server whose scripted provider submits
    ``CITING``, one suggestion at a time, citing files of the test's repository."""
    source = repo / PAGE_FILE
    source.parent.mkdir(parents=True)
    source.write_text(PAGE_SOURCE)
    started: list[tuple[BackgroundServer, LiveServer]] = []

    def start(**overrides: Any) -> LiveServer:
        settings = load_settings(
            database_url=f"sqlite:///{tmp_path_factory.mktemp('agents')}/agents.db",
            provider="scripted",
            users=f"alice={ALICE},bob={BOB}",
            repository=str(repo),
            throttle_ms=0,
            log_level="warning",
            **overrides,
        )
        provider = ScriptedProvider(
            scripted_text(6, 8), interval_s=0.005, suggestion_interval_s=0.2, suggestions=CITING
        )
        app = create_app(settings, provider=provider)
        background = BackgroundServer(app, log_level="info").start()
        live = LiveServer(background, settings, app.state.planner)
        started.append((background, live))
        return live

    yield start
    for background, live in started:
        live.close()
        background.stop()


def run_in_page(page: Page) -> None:
    fill_form(page, "Product page")
    page.get_by_test_id("generate").click()
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete", timeout=15_000)


# -- the tests -------------------------------------------------------------------------------


def test_cards_appear_one_by_one_before_complete_as_the_bar_rises(
    open_page: OpenPage, make_server: ServerFactory
) -> None:
    server = make_server(
        scripted_chunks=10,
        scripted_chunk_size=8,
        scripted_interval_ms=5,
        scripted_suggestion_interval_ms=600,
    )
    page = open_page(server)
    page.evaluate(RECORDER)
    fill_form(page)
    page.get_by_test_id("generate").click()

    cards = page.get_by_test_id("suggestion")
    app = page.get_by_test_id("app")
    results = page.get_by_test_id("results")
    # The first card, alone, while the run goes on; the results are there, the export waits.
    expect(cards).to_have_count(1)
    assert app.get_attribute("data-state") == "streaming"
    expect(results).to_be_visible()
    expect(page.get_by_test_id("copy")).to_be_disabled()
    expect(page.get_by_test_id("progress-phase")).to_have_text("Checking the evidence")
    expect(page.get_by_test_id("suggestions-ready")).to_have_text("1 of 3 suggestions ready")
    first = cards.first
    first.evaluate("node => { node.dataset.mark = 'shown while streaming'; }")

    expect(app).to_have_attribute("data-state", "complete", timeout=15_000)
    record = seen(page)
    # One card per event, in order, each before `complete`, a pause between them.
    assert [entry["count"] for entry in record["cards"]] == [1, 2, 3], record["cards"]
    assert {entry["state"] for entry in record["cards"]} == {"streaming"}, record["cards"]
    times = [entry["at"] for entry in record["cards"]]
    assert all(later - earlier > 300 for earlier, later in itertools.pairwise(times)), times
    # `complete` kept the cards it had (the same elements), and added none.
    expect(cards).to_have_count(3)
    expect(cards.first).to_have_attribute("data-mark", "shown while streaming")
    assert card_titles(page) == [
        f"Suggestion {n}: New-Capability {n} for Checkout page" for n in (1, 2, 3)
    ]
    assert states(page) == ["idle", "creating", "connecting", "streaming", "complete"]

    # The bar followed the `progress` events: up only, to 100 at the end.
    values = record["values"]
    assert values == sorted(values), values
    assert len(set(values)) >= 4, values
    assert values[-1] == 100
    bar = page.get_by_role("progressbar", name="Progress")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(page.get_by_test_id("progress-value")).to_have_text("100%")
    assert any("Checking the evidence" in text for text in record["phases"]), record["phases"]
    expect(page.get_by_test_id("phase")).to_be_hidden()  # the run is over: "Done."
    expect(page.get_by_test_id("copy")).to_be_enabled()


def test_a_reload_mid_run_keeps_each_card_once(
    open_page: OpenPage, make_server: ServerFactory
) -> None:
    server = make_server(
        scripted_chunks=10,
        scripted_chunk_size=8,
        scripted_interval_ms=5,
        scripted_suggestion_interval_ms=700,
    )
    page = open_page(server)
    fill_form(page)
    page.get_by_test_id("generate").click()
    cards = page.get_by_test_id("suggestion")
    expect(cards).to_have_count(1)
    job_id = page.evaluate("new URLSearchParams(location.search).get('job')")
    # The tab keeps the card it has shown, and resumes after its event.
    page.wait_for_function(
        "key => (JSON.parse(sessionStorage.getItem(key) || '{}').cards || []).length === 1",
        arg=PROGRESS_KEY + job_id,
    )
    before = page.get_by_role("progressbar", name="Progress").get_attribute("aria-valuenow")

    page.reload()
    # At once the card it had, and the bar where it was, before any new event.
    expect(cards).to_have_count(1)
    bar = page.get_by_role("progressbar", name="Progress")
    assert int(bar.get_attribute("aria-valuenow") or 0) >= int(before or 0)
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete", timeout=15_000)
    expect(cards).to_have_count(3)
    assert card_titles(page) == [
        f"Suggestion {n}: New-Capability {n} for Checkout page" for n in (1, 2, 3)
    ]


def test_evidence_links_to_the_repository_and_shows_its_quote(
    open_page: OpenPage, citing_server: Callable[..., LiveServer]
) -> None:
    server = citing_server(repository_url=REPOSITORY_URL)
    page = open_page(server)
    run_in_page(page)

    cards = page.get_by_test_id("suggestion")
    expect(cards).to_have_count(2)

    def check(page: Page) -> None:
        first = page.get_by_test_id("suggestion").first
        expect(first.get_by_test_id("suggestion-sizes")).to_have_text(
            "Effort: small · Impact: high"
        )
        expect(page.get_by_test_id("suggestion").nth(1)).to_contain_text(
            "Effort: medium · Impact: medium"
        )
        links = first.get_by_test_id("evidence-link")
        expect(links).to_have_count(2)
        link = links.first
        expect(link.locator("code")).to_have_text(f"{PAGE_FILE}:2{DASH}3")
        expect(link).to_have_attribute(
            "href",
            "https://git.example.com/acme/shop/blob/main/src/app/(shop)/%5Bslug%5D/page.tsx#L2-L3",
        )
        expect(link).to_have_attribute("target", "_blank")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
        expect(links.nth(1).locator("code")).to_have_text("README.md:1")
        expect(links.nth(1)).to_have_attribute(
            "href", "https://git.example.com/acme/shop/blob/main/README.md#L1-L1"
        )
        # The quote is folded away until asked for.
        quote = first.get_by_test_id("evidence-quote").first
        expect(quote.locator("pre")).to_be_hidden()
        quote.locator("summary").click()
        expect(quote.locator("pre")).to_be_visible()
        expect(quote.locator("pre")).to_have_text(
            "const res = await fetch('/api/products')\nconst products = await res.json()"
        )

    check(page)
    expect(page.get_by_test_id("meta")).to_contain_text("Evidence")
    # The finished run read back from its JSON status (a reload): the same cards and evidence.
    page.reload()
    expect(page.get_by_test_id("app")).to_have_attribute("data-state", "complete")
    expect(cards).to_have_count(2)
    check(page)


def test_evidence_without_a_repository_url_is_plain_text(
    open_page: OpenPage, citing_server: Callable[..., LiveServer]
) -> None:
    page = open_page(citing_server())
    run_in_page(page)

    first = page.get_by_test_id("suggestion").first
    expect(first.get_by_test_id("evidence-link")).to_have_count(0)
    refs = first.get_by_test_id("evidence-ref")
    expect(refs).to_have_text([f"{PAGE_FILE}:2{DASH}3", "README.md:1"])
    expect(first.get_by_test_id("evidence-quote")).to_have_count(2)
