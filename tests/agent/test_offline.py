"""The offline provider: suggestions grounded in a real (throwaway) repository, no AI model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from feature_planner.agent.base import PlanRequest, PlanResult
from feature_planner.agent.providers.offline import OfflineProvider
from feature_planner.agent.providers.repo_scan import (
    find_matching_files,
    read_project_docs,
    search_terms,
)
from feature_planner.agent.tools import RepositoryTools
from feature_planner.errors import ProviderError
from feature_planner.models import FeatureType, PriorityLevel
from tests.agent.conftest import write
from tests.agent.sinks import RecordingSink

PAGE = "src/app/collections/page.tsx"
SECRETS = ("SECRETVALUE", "CREDENTIALSECRET", "OUTSIDE_MARKER", "VendoredCollections")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    write(
        root / "CLAUDE.md",
        "# CLAUDE.md\n\nThis file guides Claude Code in this repository.\n\n"
        "- Use server components by default for data fetching.\n",
    )
    write(
        root / "README.md",
        "# Acme Shop\n\nAcme Shop is a storefront built with Next.js and TypeScript. "
        "It sells hats.\n",
    )
    write(
        root / PAGE,
        "import { getCollections } from '@/lib/collections'\n\n"
        "// TODO: let shoppers filter collections by season\n"
        "export default async function CollectionsPage() {\n"
        "  const collections = await getCollections()\n"
        '  return (\n    <ul className="grid grid-cols-4">\n'
        '      <input placeholder="Filter" />\n'
        "      {collections.map((c) => <li key={c.id}>{c.name}</li>)}\n    </ul>\n  )\n}\n\n"
        "function CollectionGrid({ items }) {\n  return <ul>{items.length}</ul>\n}\n",
    )
    write(
        root / "src/lib/collections.ts",
        "export async function getCollections() {\n"
        "  const response = await fetch('/api/collections')\n  return response.json()\n}\n",
    )
    write(root / "src/app/about/page.tsx", "export default function AboutPage() { return null }\n")
    write(root / "src/app/cart/page.tsx", "export default function CartPage() { return null }\n")
    write(root / "assets/collections.bin", b"\x00\x01\x02collections binary blob")
    write(root / ".env", "COLLECTIONS_API_KEY=sk-live-SECRETVALUE\n")
    write(root / "config/credentials.json", '{"collections": "CREDENTIALSECRET"}\n')
    write(
        root / "node_modules/collections-lib/index.js",
        "export function VendoredCollections() {}\n",
    )
    write(root / "big/collections-huge.ts", "// collections\n" + "x" * (300 * 1024))
    outside = tmp_path / "outside"
    write(outside / "collections-outside.ts", "export const OUTSIDE_MARKER = 'collections'\n")
    (root / "src/linked-outside").symlink_to(outside, target_is_directory=True)
    (root / "src/collections-link.ts").symlink_to(outside / "collections-outside.ts")
    return root


def _request(
    repository: Path,
    target: str = "Collections page",
    feature_type: FeatureType = FeatureType.ENHANCEMENT,
    priority: PriorityLevel = PriorityLevel.MEDIUM,
    note: str | None = None,
) -> PlanRequest:
    return PlanRequest(
        page_or_component=target,
        feature_type=feature_type,
        priority_level=priority,
        repository=repository,
        additional_context=note,
    )


async def _run(request: PlanRequest, chunk_chars: int = 24) -> tuple[PlanResult, RecordingSink]:
    sink = RecordingSink()
    result = await OfflineProvider(chunk_chars=chunk_chars, interval_s=0).run(request, sink)
    return result, sink


def _everything(result: PlanResult, sink: RecordingSink) -> str:
    suggestions = json.dumps([s.to_wire() for s in result.suggestions], ensure_ascii=False)
    activity = " ".join(f"{tool} {detail}" for tool, detail in sink.activities)
    return "\n".join((sink.narrative, suggestions, result.context, activity))


async def test_suggestions_are_grounded_in_the_matching_file(repo: Path) -> None:
    result, sink = await _run(_request(repo))

    assert 3 <= len(result.suggestions) <= 5
    assert sink.suggestions == list(result.suggestions)  # submitted one by one
    for suggestion in result.suggestions:
        assert suggestion.title and suggestion.rationale and suggestion.description
        assert 2 <= len(suggestion.implementation_considerations) <= 4
        assert 1 <= len(suggestion.evidence) <= 5
        assert {item.path for item in suggestion.evidence} <= {PAGE, "src/lib/collections.ts"}
    text = json.dumps([s.to_wire() for s in result.suggestions])
    assert PAGE in text
    assert "CollectionsPage" in text  # a real component name found in the file
    assert any("Collections page" in s.title + s.description for s in result.suggestions)
    assert PAGE in result.context
    assert "CLAUDE.md" in result.context and "README.md" in result.context


async def test_secrets_binaries_vendored_and_outside_files_never_appear(repo: Path) -> None:
    result, sink = await _run(_request(repo))

    everything = _everything(result, sink)
    for marker in SECRETS:
        assert marker not in everything
    for path in (".env", "credentials", "collections.bin", "node_modules", "collections-huge"):
        assert path not in everything
    assert "linked-outside" not in everything
    assert "collections-link" not in everything


async def test_narrative_is_readable_text_in_small_chunks(repo: Path) -> None:
    result, sink = await _run(_request(repo), chunk_chars=7)

    assert all(1 <= len(chunk) <= 7 for chunk in sink.chunks)
    narrative = sink.narrative
    assert narrative.startswith("Reading CLAUDE.md…\nReading README.md…\n")
    assert f"matching “Collections page”: {PAGE}" in narrative
    assert "Acme Shop" in narrative and "Next.js" in narrative
    for number, suggestion in enumerate(result.suggestions, start=1):
        assert f"{number}. {suggestion.title} — " in narrative
    with pytest.raises(json.JSONDecodeError):
        json.loads(narrative)


async def test_same_input_gives_the_same_output(repo: Path) -> None:
    first, first_sink = await _run(_request(repo, note="Customers have thousands of items"))
    second, second_sink = await _run(_request(repo, note="Customers have thousands of items"))

    assert first_sink.chunks == second_sink.chunks
    assert first_sink.activities == second_sink.activities
    assert first.suggestions == second.suggestions
    assert first.context == second.context


async def test_feature_types_rank_the_facts_differently(repo: Path) -> None:
    firsts: dict[FeatureType, str] = {}
    for feature_type in FeatureType:
        result, _ = await _run(_request(repo, feature_type=feature_type))
        firsts[feature_type] = result.suggestions[0].title

    # the same facts, in the order each feature type cares about
    assert firsts[FeatureType.ENHANCEMENT].startswith("Finish the TODO")
    assert firsts[FeatureType.NEW_CAPABILITY].startswith("Finish the TODO")
    assert firsts[FeatureType.UI_IMPROVEMENT].startswith("Make the grid")
    assert firsts[FeatureType.OPTIMIZATION].startswith("Page the list")
    assert firsts[FeatureType.INTEGRATION].startswith("Handle failed requests")


@pytest.mark.parametrize(
    ("priority", "count"),
    [
        (PriorityLevel.CRITICAL, 3),
        (PriorityLevel.HIGH, 3),
        (PriorityLevel.MEDIUM, 4),
        (PriorityLevel.LOW, 5),
    ],
)
async def test_priority_sets_the_number_and_the_scope(
    repo: Path, priority: PriorityLevel, count: int
) -> None:
    result, _ = await _run(_request(repo, priority=priority))

    assert len(result.suggestions) == count
    considerations = " ".join(result.suggestions[0].implementation_considerations)
    assert priority.value.capitalize() in considerations


async def test_additional_context_is_taken_into_account(repo: Path) -> None:
    result, sink = await _run(_request(repo, note="Customers have thousands of items"))

    first = result.suggestions[0]
    assert first.title.startswith("Page the list")  # the note speaks of many items
    assert "Customers have thousands of items" in first.rationale
    assert "Taking into account: “Customers have thousands of items”" in sink.narrative


async def test_reports_what_it_reads(repo: Path) -> None:
    _, sink = await _run(_request(repo))

    assert sink.activities[:2] == [("Read", "CLAUDE.md"), ("Read", "README.md")]
    assert ("Glob", "**/*collection*") in sink.activities
    assert ("Grep", "collection") in sink.activities
    assert ("Read", PAGE) in sink.activities


async def test_result_says_no_ai_model_was_used(repo: Path) -> None:
    result, _ = await _run(_request(repo))

    assert result.notice is not None and "no AI model was used" in result.notice
    assert result.model == "offline-engine"
    assert (result.token_usage.input_tokens, result.token_usage.output_tokens) == (0, 0)
    assert result.retry_count == 0


async def test_without_a_matching_file_it_makes_nothing_up(repo: Path) -> None:
    result, sink = await _run(
        _request(repo, target="Billing dashboard", priority=PriorityLevel.LOW)
    )

    assert result.suggestions == []
    assert "No file matching “Billing dashboard” was found" in sink.narrative
    assert "CLAUDE.md, README.md" in result.context  # names what it did read
    assert result.notice is not None and "Found nothing in the code" in result.notice


async def test_an_empty_directory_gets_no_made_up_suggestions(tmp_path: Path) -> None:
    result, sink = await _run(_request(tmp_path, target="UserProfile"))

    assert result.suggestions == []
    assert "no CLAUDE.md or README" in result.context
    assert "Found nothing in the code" in sink.narrative


async def test_cancellation_mid_stream_propagates(repo: Path) -> None:
    sink = RecordingSink()
    provider = OfflineProvider(chunk_chars=4, interval_s=0.01)
    task = asyncio.create_task(provider.run(_request(repo), sink))
    await sink.first_text.wait()
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    _, whole_run = await _run(_request(repo), chunk_chars=4)
    assert len(sink.chunks) < len(whole_run.chunks)  # it stopped part-way


async def test_a_missing_repository_is_a_provider_error(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="not a readable directory"):
        await _run(_request(tmp_path / "nowhere"))


def test_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="chunk_chars"):
        OfflineProvider(chunk_chars=0)
    with pytest.raises(ValueError, match="interval_s"):
        OfflineProvider(interval_s=-1)


async def test_runs_on_this_repository() -> None:
    # Its speed is measured in bench/ (the scale cell); here only that it never hangs.
    this_repo = Path(__file__).resolve().parents[2]
    result, sink = await asyncio.wait_for(
        _run(_request(this_repo, target="OfflineProvider")), timeout=30
    )

    assert "src/feature_planner/agent/providers/offline.py" in sink.narrative
    assert len(result.suggestions) <= 4
    if len(result.suggestions) < 3:  # this repository's Python shows little: it says so
        assert result.notice is not None and "in the code worth suggesting" in result.notice


@pytest.mark.parametrize(
    ("target", "terms"),
    [
        ("Collections page", ("collection",)),
        ("UserProfile", ("user", "profile")),
        ("checkout form", ("checkout", "form")),
        ("order-history_panel", ("order", "history", "panel")),
        ("XMLParser", ("xml", "parser")),
        ("Categories", ("category",)),
        ("the page", ("the", "page")),  # only stop words: keep them
        ("!!!", ()),
    ],
)
def test_search_terms_split_and_stem_words(target: str, terms: tuple[str, ...]) -> None:
    assert search_terms(target) == terms


def test_project_docs_give_name_stack_and_guidance(repo: Path) -> None:
    docs = read_project_docs(repo)

    assert docs.files == ("CLAUDE.md", "README.md")
    assert docs.name == "Acme Shop"
    assert docs.stack == ("Next.js", "TypeScript")
    assert docs.summary == "Acme Shop is a storefront built with Next.js and TypeScript."
    assert docs.guidance == "Use server components by default for data fetching."


def test_a_doc_symlinked_outside_the_repository_is_not_read(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(tmp_path / "elsewhere.md", "# OUTSIDE_MARKER\n")
    root.mkdir()
    (root / "README.md").symlink_to(tmp_path / "elsewhere.md")

    docs = read_project_docs(root)

    assert docs.files == ()
    assert docs.name is None


def test_name_matches_rank_above_mentions(repo: Path) -> None:
    scan = find_matching_files(repo, search_terms("Collections page"))

    paths = [match.path for match in scan.matches]
    assert paths[:2] == [PAGE, "src/lib/collections.ts"]
    assert scan.matches[0].symbols[:2] == ("CollectionsPage", "CollectionGrid")
    assert not scan.truncated


def test_reading_stops_at_its_limit_after_the_best_paths(repo: Path) -> None:
    """The limit is on what is read, never on what is listed: every file is ranked by its
    path and the best are read first, so the cut-off spares the page."""
    scan = find_matching_files(repo, ("collection",), max_reads=1)

    assert scan.truncated and scan.stopped == "reads"
    assert scan.files_read == 1
    assert scan.files_scanned == 8  # every file worth listing, ranked by its path
    assert [match.path for match in scan.matches] == [PAGE]


def test_a_doc_the_sandbox_refuses_is_not_read(tmp_path: Path) -> None:
    write(tmp_path / ".gitignore", "CLAUDE.md\n")
    write(tmp_path / "CLAUDE.md", "# OUTSIDE_MARKER\n\n- A convention nobody should read here.\n")
    write(tmp_path / "README.rst", "Acme Shop\n=========\n")

    docs = read_project_docs(tmp_path)

    assert docs.files == ("README.rst",)
    assert docs.name == "Acme Shop"
    assert docs.guidance is None


async def test_the_scan_passes_over_hidden_files_and_links_the_tools_list(
    tmp_path: Path,
) -> None:
    """Relevance, not safety: what the sandbox allows, the scan may still leave out."""
    for rel in ("src/collections.ts", ".github/collections.yml"):
        write(tmp_path / rel, "collections collections collections\n")
    (tmp_path / "collections-link.ts").symlink_to("src/collections.ts")

    scan = find_matching_files(tmp_path, ("collection",))
    listed = await RepositoryTools(tmp_path).call("Glob", {"pattern": "**/*collections*"})

    assert [match.path for match in scan.matches] == ["src/collections.ts"]
    assert listed.text.splitlines() == [
        ".github/collections.yml",
        "collections-link.ts",
        "src/collections.ts",
    ]


async def test_two_routes_missing_different_states_are_two_suggestions_each_exact(
    tmp_path: Path,
) -> None:
    """A monorepo's site and app both have a Customers route; the app has an error.tsx in a
    parent segment. One suggestion merged both: the site's "loading and error" text, the app's
    page cited as if it had no error state either, and a retry for a route that has one."""
    site = "apps/website/src/app/customers/page.tsx"
    app = "apps/dashboard/src/app/(sidebar)/customers/page.tsx"
    write(tmp_path / site, "export default function Page() {\n  return <main />\n}\n")
    write(
        tmp_path / app,
        "import { Table } from '@/components/customers-table'\n\n"
        "export default async function Page() {\n"
        "  const rows = await load()\n  return <Table rows={rows} />\n}\n",
    )
    write(tmp_path / "apps/dashboard/src/components/customers-table.tsx", "export const A = 1\n")
    write(
        tmp_path / "apps/dashboard/src/app/(sidebar)/error.tsx",
        "'use client'\nexport default function Error() {\n  return null\n}\n",
    )

    result, _ = await _run(_request(tmp_path, target="Customers page"))

    routes = {s.evidence[0].path: s for s in result.suggestions if "route" in s.title}
    assert set(routes) == {app, site}
    in_app = routes[app]
    assert in_app.title == "Add loading state to the Customers page route"
    assert [item.path for item in in_app.evidence] == [app]  # never the other route's lines
    assert "error.tsx" not in in_app.description and "reset()" not in in_app.description
    assert "error boundary" not in " ".join(in_app.implementation_considerations)
    in_site = routes[site]  # the other app's page: about the target, not the page's own
    assert (
        in_site.title == "Add loading and error states to the route apps/website/src/app/customers"
    )
    assert [item.path for item in in_site.evidence] == [site]
    assert "reset()" in in_site.description
    assert any("not among the files" in c for c in in_site.implementation_considerations)
    assert result.suggestions[0] is in_app or result.suggestions.index(in_app) < (
        result.suggestions.index(in_site)
    )


@pytest.mark.parametrize(
    ("grid", "example", "not_said"),
    [
        ("grid-cols-2", "`grid-cols-1 sm:grid-cols-2`", "lg:grid-cols-2"),
        ("grid-cols-4", "`grid-cols-1 sm:grid-cols-2 lg:grid-cols-4`", "sm:grid-cols-4"),
    ],
)
async def test_the_responsive_grid_example_fits_the_columns(
    tmp_path: Path, grid: str, example: str, not_said: str
) -> None:
    write(
        tmp_path / PAGE,
        f'export default function Page() {{\n  return <ul className="grid {grid} gap-4" />\n}}\n',
    )
    write(tmp_path / "src/app/loading.tsx", "export default function L() { return null }\n")
    write(tmp_path / "src/app/error.tsx", "export default function E() { return null }\n")

    result, _ = await _run(_request(tmp_path, feature_type=FeatureType.UI_IMPROVEMENT))

    grid_suggestion = next(s for s in result.suggestions if "grid" in s.title)
    assert example in grid_suggestion.description
    assert not_said not in grid_suggestion.description


@pytest.mark.parametrize(
    ("path", "control", "said", "not_said"),
    [
        ("src/components/Filter.vue", '<template>\n  <input v-model="q" />\n</template>\n',
         "<label for>", "htmlFor"),
        ("src/components/Filter.svelte", "<input bind:value={q} />\n", "<label for>", "htmlFor"),
        ("src/components/Filter.tsx", "export function Filter() {\n  return <input />\n}\n",
         "<label htmlFor>", "<label for>"),
    ],
)  # fmt: skip
async def test_the_label_advice_speaks_the_components_language(
    tmp_path: Path, path: str, control: str, said: str, not_said: str
) -> None:
    write(tmp_path / path, control)

    result, _ = await _run(
        _request(tmp_path, target="Filter", feature_type=FeatureType.UI_IMPROVEMENT)
    )

    label = next(s for s in result.suggestions if s.title.startswith("Label"))
    assert said in label.description and not_said not in label.description


@pytest.mark.parametrize(
    ("path", "code", "said"),
    [
        ("src/components/Board.vue",
         "<template>\n  <ul class=\"board\" />\n</template>\n<style>\n"
         ".board { display: grid; grid-template-columns: repeat(3, 1fr); }\n</style>\n",
         "`grid-template-columns: repeat(3, 1fr)` inside `@media (min-width: 640px) { … }`"),
        ("src/components/Board.tsx",
         "export function Board() {\n"
         "  return <ul style={{ display: 'grid', gridTemplateColumns: 'repeat(3, 1fr)' }} />\n}\n",
         "inline style into a class"),
    ],
)  # fmt: skip
async def test_a_css_grid_gets_a_media_query_not_a_tailwind_class(
    tmp_path: Path, path: str, code: str, said: str
) -> None:
    write(tmp_path / path, code)

    result, _ = await _run(
        _request(tmp_path, target="Board", feature_type=FeatureType.UI_IMPROVEMENT)
    )

    grid = next(s for s in result.suggestions if "grid" in s.title)
    assert said in grid.description
    assert "grid-cols" not in grid.description and "auto-fill" not in grid.description


async def test_the_pages_files_come_from_the_map_two_imports_deep(tmp_path: Path) -> None:
    """The page renders a header that renders a search field: the field's unlabelled input
    is the page's (the scan alone reads only what the page imports). A file merely named
    for the page is read after them, and said not to be one of the page's files."""
    page = "src/app/customers/page.tsx"
    write(
        tmp_path / page,
        "import { Suspense } from 'react'\nimport { Header } from '@/components/header'\n\n"
        "export default async function CustomersPage() {\n"
        "  return <Suspense fallback={<p />}><Header /></Suspense>\n}\n",
    )
    write(tmp_path / "src/app/error.tsx", "export default function E() { return null }\n")
    write(
        tmp_path / "src/components/header.tsx",
        "import { SearchField } from './search-field'\n\n"
        "export function Header() {\n  return <div><SearchField /></div>\n}\n",
    )
    write(
        tmp_path / "src/components/search-field.tsx",
        "import { Input } from '@/components/ui/input'\n\n"
        'export function SearchField() {\n  return <Input placeholder="Search customers" />\n}\n',
    )
    write(
        tmp_path / "src/components/ui/input.tsx", "export const Input = (p) => <input {...p} />\n"
    )
    write(
        tmp_path / "src/components/customer-card.tsx",
        'export function CustomerCard() {\n  return <div className="grid grid-cols-3" />\n}\n',
    )

    result, sink = await _run(_request(tmp_path, target="Customers page"))

    first = result.suggestions[0]
    assert first.title == "Label the form controls in src/components/search-field.tsx"
    assert [(e.path, e.start_line) for e in first.evidence] == [
        ("src/components/search-field.tsx", 4)
    ]
    grid = next(s for s in result.suggestions if "grid" in s.title)
    assert "src/components/customer-card.tsx is not among the files" in " ".join(
        grid.implementation_considerations
    )
    assert not any("route" in s.title for s in result.suggestions)  # Suspense, error.tsx
    assert "following its imports" in sink.narrative
    again, _ = await _run(_request(tmp_path, target="Customers page"))
    assert again.suggestions == result.suggestions  # deterministic
