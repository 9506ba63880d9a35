"""The offline engine on a small Next.js app with planted facts: every suggestion is one of
them, cites real lines (the verifier confirms each item), is about the page's own files
before anything else, and follows the user's note; it never pads."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from feature_planner.agent.base import PlanRequest, PlanResult
from feature_planner.agent.evidence import verify_suggestion
from feature_planner.agent.facts import find_facts
from feature_planner.agent.providers.offline import OfflineProvider
from feature_planner.agent.sandbox import Sandbox
from feature_planner.jobs.memory import MemoryJobStore
from feature_planner.jobs.relay import Subscriber
from feature_planner.jobs.runner import JobRun
from feature_planner.jobs.store import JobRecord
from feature_planner.models import (
    Effort,
    FeatureType,
    Impact,
    JobState,
    PriorityLevel,
    SuggestionRequest,
)
from tests.agent.conftest import write
from tests.agent.sinks import RecordingSink
from tests.sse_decoder import ServerSentEvent, SSEDecoder

PAGE = "app/search/page.tsx"
RESULTS = "components/SearchResults.tsx"
BOX = "components/SearchBox.tsx"
OWN = {PAGE, RESULTS, BOX, "CLAUDE.md"}
DECOYS = ("app/about", "AboutCard", "app/cart")

FILES = {
    "CLAUDE.md": "# Shop\n\n## Rules\n\n- Use server components.\n"
    "- Every component must have a test file beside it.\n",
    "README.md": "# Shop\n\nA storefront built with Next.js.\n",
    "package.json": '{"name": "shop", "dependencies": {"next": "14"}}\n',
    "tsconfig.json": '{"compilerOptions": {"paths": {"@/*": ["./*"]}}}\n',
    PAGE: """\
import { SearchBox } from '@/components/SearchBox'
import { SearchResults } from '@/components/SearchResults'

// TODO: remember the last query between visits
export default async function SearchPage() {
  const res = await fetch('/api/products')
  const products = await res.json()
  return (
    <main>
      <SearchBox />
      <SearchResults products={products} />
      <ul>{products.map((p) => <li key={p.id}>{p.name}</li>)}</ul>
    </main>
  )
}
""",
    RESULTS: """\
export function SearchResults({ products }) {
  return (
    <section className="grid grid-cols-4 gap-4">
      {products.map((p) => <article key={p.id}>{p.name}</article>)}
    </section>
  )
}
""",
    BOX: """\
export function SearchBox() {
  return (
    <form role="search">
      <input name="q" placeholder="Search products" />
    </form>
  )
}
""",
    "components/SearchBox.test.tsx": "test('renders', () => {})\n",
    # decoys: other pages with facts of their own
    "app/about/page.tsx": """\
// TODO: decoy about todo
export default async function AboutPage() {
  const res = await fetch('/api/team')
  return <div className="grid grid-cols-3"><input name="decoy" /></div>
}
""",
    "components/AboutCard.tsx": """\
export function AboutCard() {
  // FIXME decoy card
  return <div className="grid grid-cols-2"><textarea /></div>
}
""",
    "app/cart/page.tsx": "export default function CartPage() {\n  return <main>cart</main>\n}\n",
}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    for rel, text in FILES.items():
        write(root / rel, text)
    return root


async def _run(
    root: Path,
    target: str = "Search page",
    feature_type: FeatureType = FeatureType.ENHANCEMENT,
    priority: PriorityLevel = PriorityLevel.LOW,
    note: str | None = None,
) -> tuple[PlanResult, RecordingSink]:
    request = PlanRequest(
        page_or_component=target,
        feature_type=feature_type,
        priority_level=priority,
        repository=root,
        additional_context=note,
    )
    sink = RecordingSink()
    return await OfflineProvider(interval_s=0).run(request, sink), sink


async def test_every_suggestion_cites_real_lines_of_the_pages_files(shop: Path) -> None:
    result, sink = await _run(shop)

    assert len(result.suggestions) == 5
    assert sink.suggestions == list(result.suggestions)  # submitted one at a time, in order
    sandbox = Sandbox(shop)
    for suggestion in result.suggestions:
        check = verify_suggestion(sandbox, suggestion)
        assert check.complete, [v.reason for v in check.verdicts]
        assert 1 <= len(suggestion.evidence) <= 5
        assert suggestion.effort in Effort and suggestion.impact in Impact
        for item in suggestion.evidence:
            assert item.path in OWN, item
            assert all(decoy not in item.path for decoy in DECOYS)
        parts = (suggestion.title, suggestion.rationale, suggestion.description)
        text = " ".join([*parts, *suggestion.implementation_considerations])
        assert suggestion.evidence[0].path in text  # it names the file it is about


async def test_each_planted_fact_becomes_a_suggestion(shop: Path) -> None:
    result, _ = await _run(shop, priority=PriorityLevel.LOW)
    titles = [s.title for s in result.suggestions]

    cited = {(i.path, i.start_line) for s in result.suggestions for i in s.evidence}
    assert (PAGE, 4) in cited  # the TODO
    assert (PAGE, 6) in cited  # the unchecked fetch (enhancement favours it)
    assert (PAGE, 5) in cited  # the route's export: no loading.tsx / error.tsx
    assert ("CLAUDE.md", 6) in cited and (RESULTS, 1) in cited  # the rule and the component
    assert (
        titles[0]
        == "Finish the TODO in app/search/page.tsx: remember the last query between visits"
    )
    assert all("Search" in s.rationale + s.description for s in result.suggestions)


@pytest.mark.parametrize(
    ("feature_type", "note", "first"),
    [
        (FeatureType.UI_IMPROVEMENT, None, "Label the form controls in components/SearchBox.tsx"),
        (FeatureType.UI_IMPROVEMENT, "the cards are cramped on phones", "Make the grid in"),
        (FeatureType.UI_IMPROVEMENT, "screen reader users cannot fill the form", "Label the"),
        (FeatureType.OPTIMIZATION, None, "Page the list in app/search/page.tsx"),
        (FeatureType.ENHANCEMENT, "it breaks on phones", "Make the grid"),
        (FeatureType.ENHANCEMENT, "we have thousands of products", "Page the list"),
        (FeatureType.INTEGRATION, None, "Handle failed requests in `SearchPage`"),
    ],
)
async def test_type_and_note_choose_the_first_suggestion(
    shop: Path, feature_type: FeatureType, note: str | None, first: str
) -> None:
    result, _ = await _run(shop, feature_type=feature_type, note=note)

    assert result.suggestions[0].title.startswith(first)
    if note:
        assert f"It answers your note: “{note}”" in result.suggestions[0].rationale
        assert all(note not in s.rationale for s in result.suggestions[1:])


async def test_priority_sets_how_many_and_critical_puts_small_efforts_first(shop: Path) -> None:
    critical, _ = await _run(shop, priority=PriorityLevel.CRITICAL)
    low, _ = await _run(shop, priority=PriorityLevel.LOW)

    assert len(critical.suggestions) == 3 and len(low.suggestions) == 5
    assert low.suggestions[0].title.startswith("Finish the TODO")  # medium effort
    assert [s.effort for s in critical.suggestions[:2]] == [Effort.SMALL, Effort.SMALL]


async def test_fewer_than_three_facts_says_so_rather_than_padding(tmp_path: Path) -> None:
    write(
        tmp_path / "app/cart/page.tsx",
        "// FIXME the total is rounded twice\nexport default function CartPage() {\n"
        "  return <main>cart</main>\n}\n",
    )
    write(tmp_path / "app/cart/loading.tsx", "export default function L() { return null }\n")
    result, sink = await _run(tmp_path, target="Cart page")

    assert len(result.suggestions) == 2
    message = "Found only 2 things in the code worth suggesting for this page"
    assert result.notice is not None and message in result.notice
    assert "no AI model was used" in result.notice
    assert message in result.context and message in sink.narrative


async def test_a_page_with_nothing_to_say_gets_no_suggestion(shop: Path) -> None:
    write(shop / "app/cart/loading.tsx", "export default function L() { return null }\n")
    write(shop / "app/cart/error.tsx", "export default function E() { return null }\n")
    result, _ = await _run(shop, target="Cart page")

    assert result.suggestions == []
    assert result.notice is not None and "Found nothing in the code" in result.notice


def test_the_scan_is_quick(shop: Path) -> None:
    started = time.perf_counter()
    report = find_facts(shop, [PAGE, BOX, RESULTS])
    elapsed = time.perf_counter() - started

    assert elapsed < 0.5
    assert set(report.files_read) == {PAGE, BOX, RESULTS}


def test_nearby_files_come_after_the_pages_own_and_other_routes_never(shop: Path) -> None:
    write(
        shop / "app/search/_parts/Filters.tsx", "// TODO: nearby filters todo\nexport const F = 1\n"
    )
    write(shop / "app/search/[id]/page.tsx", "// TODO: decoy sub-route\nexport default 1\n")
    report = find_facts(shop, [PAGE, BOX, RESULTS])

    where = [(fact.path, fact.own) for fact in report.facts]
    assert ("app/search/_parts/Filters.tsx", False) in where
    assert all(not path.startswith("app/search/[id]") for path, _ in where)
    assert all(own for _, own in where[: where.index(("app/search/_parts/Filters.tsx", False))])


async def test_through_the_runner_every_cited_item_is_verified(shop: Path) -> None:
    request = SuggestionRequest(
        page_or_component="Search page",
        feature_type=FeatureType.UI_IMPROVEMENT,
        priority_level=PriorityLevel.LOW,
        additional_context="it breaks on phones",
    )
    store = MemoryJobStore()
    await store.create(JobRecord("job", "u", request, JobState.PENDING, 0, 0))
    assert await store.claim("job", "runner", on_cancel=lambda message: None)
    log = await store.subscribe_log("job")
    assert log is not None
    subscriber = Subscriber(log, 0)
    job = JobRun(store, "job", throttle_s=0, time_limit_s=10)
    job.start(OfflineProvider(interval_s=0), PlanRequest.from_request(request, shop))
    decoder, events = SSEDecoder(), list[ServerSentEvent]()
    while (chunk := await subscriber.next_chunk()) is not None:
        events += decoder.feed(chunk)

    complete = events[-1].json()
    sent = [e.json()["suggestion"] for e in events if e.event == "suggestion"]
    assert events[-1].event == "complete" and len(sent) == 5
    assert complete["suggestions"] == sent
    cited = sum(len(item["evidence"]) for item in sent)
    assert complete["evidenceStats"] == {"cited": cited, "verified": cited, "dropped": 0}
    assert sent[0]["title"].startswith("Make the grid")  # the note: phones
    assert "no AI model was used" in complete["notice"]


async def test_a_note_naming_only_the_page_answers_no_fact_in_particular(shop: Path) -> None:
    result, _ = await _run(shop, note="the search page")

    assert all("It answers your note" not in s.rationale for s in result.suggestions)


VUE_APP = {
    "package.json": '{"name": "shop-vue", "dependencies": {"vue": "3"}}\n',
    "src/views/Products.vue": """\
<template>
  <main>
    <!-- TODO: filter by category -->
    <input v-model="query" placeholder="Search products" />
    <div class="grid grid-cols-4 gap-4">
      <article v-for="product in products" :key="product.id">{{ product.name }}</article>
    </div>
  </main>
</template>

<script setup lang="ts">
import { onMounted, ref } from 'vue'

const query = ref('')
const products = ref([])
onMounted(async () => {
  const res = await fetch('/api/products')
  if (!res.ok) return
  products.value = await res.json()
})
</script>
""",
}
SVELTE_APP = {
    "package.json": '{"name": "shop-svelte", "devDependencies": {"@sveltejs/kit": "2"}}\n',
    "src/routes/products/+page.svelte": """\
<script>
  import { onMount } from 'svelte'
  let products = []
  let query = ''
  onMount(async () => {
    const res = await fetch('/api/products')
    if (!res.ok) return
    products = await res.json()
  })
</script>

<!-- TODO: filter by category -->
<input bind:value={query} placeholder="Search products" />
<ul class="grid grid-cols-4 gap-4">
  {#each products as product (product.id)}
    <li>{product.name}</li>
  {/each}
</ul>
""",
}


@pytest.mark.parametrize(
    ("files", "page", "template_lines"),
    [
        (VUE_APP, "src/views/Products.vue", {3, 4, 5, 6}),
        (SVELTE_APP, "src/routes/products/+page.svelte", {12, 13, 14, 15}),
    ],
)
async def test_vue_and_svelte_pages_are_read_through_their_templates(
    tmp_path: Path, files: dict[str, str], page: str, template_lines: set[int]
) -> None:
    for rel, text in files.items():
        write(tmp_path / rel, text)
    result, _ = await _run(
        tmp_path, target="Products page", feature_type=FeatureType.UI_IMPROVEMENT
    )

    sandbox = Sandbox(tmp_path)
    for suggestion in result.suggestions:
        check = verify_suggestion(sandbox, suggestion)
        assert check.complete, [v.reason for v in check.verdicts]
    cited = {(i.path, i.start_line) for s in result.suggestions for i in s.evidence}
    assert {(page, line) for line in template_lines} <= cited  # TODO, input, grid, loop
    titles = [s.title for s in result.suggestions]
    assert len(titles) == 4  # and nothing else: the fetch checks res.ok
    assert titles[:2] == [  # what a UI improvement weighs most
        f"Label the form controls in {page}",
        f"Make the grid in {page} responsive",
    ]
    assert any(title.startswith(f"Page the list in {page}") for title in titles)


async def test_a_settings_page_of_form_cards_gets_only_what_its_code_shows(tmp_path: Path) -> None:
    """A page that prefetches its team and renders form cards: a hidden file input behind an
    avatar, a react-hook-form field with no FormLabel, one with a FormLabel, a field
    labelled by <Label htmlFor>. Two facts, each true: the route has no loading state while
    it loads data (not "it loads no data yet"), and one field has no label."""
    ui = "export const Input = (props) => <input {...props} />\n"
    files = {
        "src/app/error.tsx": "export default function E() { return null }\n",
        "src/app/settings/page.tsx": "import { prefetch } from '@/trpc/server'\n"
        "import { Logo } from '@/components/logo'\nimport { Name } from '@/components/name'\n\n"
        "export default async function SettingsPage() {\n"
        "  prefetch(['team'])\n  return <main><Logo /><Name /></main>\n}\n",
        "src/trpc/server.ts": "export function prefetch(key) {\n  return key\n}\n",
        "src/components/ui/input.tsx": ui,
        "src/components/logo.tsx": "export function Logo() {\n  return (\n    <div>\n"
        '      <input type="file" style={{ display: "none" }} onChange={upload} />\n'
        "    </div>\n  )\n}\n",
        "src/components/name.tsx": """\
import { Input } from "@/components/ui/input"
import { Label } from "@/components/ui/label"
import { FormControl, FormField, FormItem, FormLabel } from "@/components/ui/form"

export function Name({ form }) {
  return (
    <form>
      <FormField control={form.control} name="name" render={({ field }) => (
        <FormItem>
          <FormControl>
            <Input {...field} />
          </FormControl>
        </FormItem>
      )} />
      <FormField control={form.control} name="email" render={({ field }) => (
        <FormItem>
          <FormLabel>E-mail</FormLabel>
          <FormControl><Input {...field} /></FormControl>
        </FormItem>
      )} />
      <Label htmlFor="confirm">Type DELETE</Label>
      <Input id="confirm" />
    </form>
  )
}
""",
    }
    for rel, text in files.items():
        write(tmp_path / rel, text)

    result, sink = await _run(tmp_path, target="Settings page", priority=PriorityLevel.MEDIUM)

    by_title = {s.title: s for s in result.suggestions}
    assert set(by_title) == {
        "Add loading state to the Settings page route",
        "Label the form controls in src/components/name.tsx",
    }
    route = by_title["Add loading state to the Settings page route"]
    assert route.impact is Impact.MEDIUM and "loads no data" not in route.rationale
    assert [(e.path, e.start_line) for e in route.evidence] == [
        ("src/app/settings/page.tsx", 5),
        ("src/app/settings/page.tsx", 6),
    ]
    label = by_title["Label the form controls in src/components/name.tsx"]
    assert [(e.path, e.start_line) for e in label.evidence] == [("src/components/name.tsx", 11)]
    assert "<FormLabel> in its <FormItem>" in label.description
    assert "Found only 2 things" in sink.narrative


async def test_a_django_views_template_is_read_as_the_pages(tmp_path: Path) -> None:
    view = (
        "from django.shortcuts import render\n\n\ndef invoice_list(request):\n"
        '    return render(request, "billing/list.html", {})\n'
    )
    template = (
        '{% extends "base.html" %}\n{% block content %}\n<form method="get">\n'
        '  <input type="text" name="q" placeholder="Invoice number">\n  {{ form.status }}\n'
        "</form>\n{% endblock %}\n"
    )
    write(tmp_path / "billing/urls.py", "urlpatterns = [path('', views.invoice_list)]\n")
    write(tmp_path / "billing/views.py", view)
    write(tmp_path / "billing/templates/billing/list.html", template)
    result, _ = await _run(tmp_path, target="billing", feature_type=FeatureType.UI_IMPROVEMENT)

    [labels] = [s for s in result.suggestions if s.title.startswith("Label the form controls")]
    assert [(e.path, e.start_line, e.end_line) for e in labels.evidence] == [
        ("billing/templates/billing/list.html", 4, 4)
    ]
    assert verify_suggestion(Sandbox(tmp_path), labels).complete
