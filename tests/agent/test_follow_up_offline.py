"""The offline engine's follow-ups: answered from the facts of the files the earlier run read,
steered by the message ("more like this", "not this", "smaller steps", "for mobile"),
honestly labelled, never padded; each suggestion's evidence verified like any run's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from feature_planner.agent.base import FollowUp
from feature_planner.agent.providers.offline import OfflineProvider
from feature_planner.agent.providers.offline_follow_up import Intent, read_message
from feature_planner.models import FeatureType, PriorityLevel, Suggestion
from tests.agent.conftest import plan_request, write
from tests.agent.sinks import job_events
from tests.sse_decoder import ServerSentEvent

pytestmark = pytest.mark.timeout(60)

PAGE = "src/app/collections/page.tsx"
FILTERS = "src/components/CollectionFilters.tsx"
PRODUCTS = "src/components/ProductGrid.tsx"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A collections page and two components it renders, with four TODOs (the first run
    suggests three of them), two fixed grids, two unchecked fetches and an unlabelled input."""
    root = tmp_path / "shop"
    write(root / "README.md", "# Acme Shop\n\nA storefront built with Next.js.\n")
    write(
        root / PAGE,
        "import { CollectionFilters } from '@/components/CollectionFilters'\n"
        "import { ProductGrid } from '@/components/ProductGrid'\n\n"
        "export default async function CollectionsPage() {\n"
        "  // TODO: show the number of products in each collection\n"
        "  const response = await fetch('/api/collections')\n"
        "  const collections = await response.json()\n"
        "  return (\n"
        "    <main>\n"
        "      <CollectionFilters />\n"
        '      <div className="grid grid-cols-4 gap-4">\n'
        "        {collections.map((c) => <a key={c.id} href={c.url}>{c.name}</a>)}\n"
        "      </div>\n"
        "      <ProductGrid />\n"
        "    </main>\n"
        "  )\n"
        "}\n",
    )
    write(
        root / FILTERS,
        "export function CollectionFilters() {\n"
        "  // TODO: remember the chosen filters in the URL\n"
        "  return (\n"
        "    <form>\n"
        "      {/* TODO: add a price range filter */}\n"
        '      <input type="search" placeholder="Search collections" />\n'
        "    </form>\n"
        "  )\n"
        "}\n",
    )
    write(
        root / PRODUCTS,
        "export async function ProductGrid() {\n"
        "  // TODO: sort the products by popularity\n"
        "  const products = await fetch('/api/products').then((r) => r.json())\n"
        "  return (\n"
        '    <ul className="grid grid-cols-3 gap-2">\n'
        "      {products.map((p) => <li key={p.id}>{p.name}</li>)}\n"
        "    </ul>\n"
        "  )\n"
        "}\n",
    )
    return root


def _engine() -> OfflineProvider:
    return OfflineProvider(chunk_chars=200, interval_s=0)


async def _parent(shop: Path) -> tuple[list[Suggestion], tuple[str, ...]]:
    """The first run: its suggestions and the files it read (its Read activity)."""
    request = plan_request(shop, priority_level=PriorityLevel.HIGH)
    events = await job_events(_engine(), request)
    complete = events[-1].json()
    reads = [
        event.json()["detail"]
        for event in events
        if event.event == "activity" and event.json()["tool"] == "Read"
    ]
    suggestions = [Suggestion.model_validate(item) for item in complete["suggestions"]]
    return suggestions, tuple(dict.fromkeys(reads))


async def _follow(
    shop: Path, message: str, index: int | None = None, **request: Any
) -> tuple[list[ServerSentEvent], list[Suggestion], list[Suggestion], dict[str, Any]]:
    parents, files = await _parent(shop)
    follow_up = FollowUp(message, index, tuple(parents), files)
    events = await job_events(_engine(), plan_request(shop, follow_up=follow_up, **request))
    assert events[-1].event == "complete", events[-1].data
    complete: dict[str, Any] = events[-1].json()
    made = [Suggestion.model_validate(item) for item in complete["suggestions"]]
    return events, parents, made, complete


def _places(suggestion: Suggestion) -> set[tuple[str, int]]:
    return {(item.path, item.start_line) for item in suggestion.evidence}


def _text(events: list[ServerSentEvent]) -> str:
    return "".join(event.json()["text"] for event in events if event.event == "delta")


async def test_the_first_run_leaves_what_the_follow_ups_start_from(shop: Path) -> None:
    parents, files = await _parent(shop)
    assert [s.title.split(":")[0] for s in parents] == [
        "Finish the TODO in " + p for p in (PAGE, FILTERS, FILTERS)
    ]
    assert {PAGE, FILTERS, PRODUCTS} <= set(files)


async def test_more_like_this_finds_the_same_kind_of_fact_elsewhere(shop: Path) -> None:
    events, parents, made, complete = await _follow(shop, "More like this one", 0)
    # The one TODO the first run did not suggest, and nothing made up beside it.
    assert len(made) == 1
    (todo,) = made
    assert todo.title.startswith(f"Finish the TODO in {PRODUCTS}")
    assert _places(todo) == {(PRODUCTS, 2)}
    assert all(not (_places(todo) & _places(parent)) for parent in parents)
    assert "Only 1 thing in the files the earlier run read" in complete["notice"]
    assert "no AI model" in complete["notice"]
    assert "It answers your note: “More like this one”" in todo.rationale
    assert complete["evidenceStats"]["verified"] == complete["evidenceStats"]["cited"]
    assert "activity" not in [event.event for event in events]  # the files were not searched


async def test_not_this_gives_other_facts(shop: Path) -> None:
    _, parents, made, complete = await _follow(shop, "Not this one, something else", 1)
    assert len(made) == 3  # high priority: three, all from the earlier run's files
    cited = set().union(*(_places(parent) for parent in parents))
    for suggestion in made:
        assert not suggestion.title.startswith("Finish the TODO")  # that kind was refused
        assert not (_places(suggestion) & cited)
        assert {path for path, _ in _places(suggestion)} <= {PAGE, FILTERS, PRODUCTS}
    assert complete["evidenceStats"]["dropped"] == 0


async def test_for_mobile_puts_the_layout_first(shop: Path) -> None:
    events, _, made, _ = await _follow(
        shop, "Not these; something for mobile", feature_type=FeatureType.INTEGRATION
    )
    assert made[0].title.startswith("Make the grid")
    assert {path for path, _ in _places(made[0])} == {PAGE, PRODUCTS}
    assert "layout for small screens first" in _text(events)


async def test_smaller_steps_split_the_suggestion_it_names_in_the_message(shop: Path) -> None:
    events, parents, made, _ = await _follow(shop, "Can you split #2 into smaller steps?")
    target = parents[1]
    assert [s.title.rsplit("”: ", 1)[0] + "”" for s in made] == [
        f"Step 1 of 2 of “{target.title}”",
        f"Step 2 of 2 of “{target.title}”",
    ]
    assert made[0].title.endswith(f"at {FILTERS}:2 alone")
    for step in made:
        assert _places(step) <= _places(target)
        assert step.effort is not None and step.effort.value == "small"
    assert "Suggestion 2 (“" in _text(events)


async def test_the_message_is_read_for_what_it_asks() -> None:
    def reading(message: str, index: int | None = None) -> tuple[set[Intent], int | None]:
        suggestions = tuple(
            Suggestion(title=f"S{n}", rationale="r", description="d") for n in range(3)
        )
        read = read_message(FollowUp(message, index, suggestions))
        return set(read.intents), read.target

    assert reading("more like #2") == ({Intent.MORE_LIKE}, 1)
    assert reading("not this one, something for mobile", 0) == (
        {Intent.NOT_THIS, Intent.MOBILE},
        0,
    )
    assert reading("split suggestion 3 into smaller steps") == ({Intent.SMALLER_STEPS}, 2)
    assert reading("smaller steps please") == ({Intent.SMALLER_STEPS}, 0)  # the first, said
    assert reading("why #7?") == (set(), None)  # no such suggestion: about the whole run
