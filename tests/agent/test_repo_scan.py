"""The offline scan at scale and in real layouts: every file listed (git ls-files in a checkout,
the sandbox's walk elsewhere), ignored build output never listed, the page's own route file
first when files score alike, and the project's name never a README section heading."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from bench.scale import generate

from feature_planner.agent.providers.offline import OfflineProvider
from feature_planner.agent.providers.repo_scan import (
    ScanResult,
    find_matching_files,
    read_project_docs,
    search_terms,
)
from tests.agent.conftest import write
from tests.agent.sinks import RecordingSink
from tests.agent.test_offline import _request

ENGINES = ["git", "walk"]
PAGE = "src/app/search/page.tsx"
IMPORTED = (  # in the order the page imports them
    "src/components/search/SearchResults.tsx",
    "src/components/search/SearchFilters.tsx",
    "src/hooks/useSearch.ts",
)


def _component(name: str) -> str:
    """The same shape for every file: five mentions of "search" and a Search* definition, so
    that each scores alike and only the tie-breaks tell them apart."""
    return f"export function {name}() {{\n  return 'search search search search search'\n}}\n"


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def _scan(root: Path, engine: str, target: str = "Search page", **limits: float) -> ScanResult:
    return find_matching_files(
        root, search_terms(target), limit=20, use_git=engine == "git", **limits
    )


@pytest.fixture
def next_app(tmp_path: Path) -> Path:
    """A Next.js app whose Search page sits among 15 files named for search that all score
    alike (the scan before this one let the alphabet put it fourth, behind an API handler, a
    saved-searches page and the layout), beside ignored build output."""
    root = tmp_path / "next-app"
    write(root / "package.json", '{"name": "acme-storefront", "private": true}\n')
    write(root / ".gitignore", "/out/\n/storybook-static/\n.next/\n")
    write(
        root / PAGE,
        "import { SearchResults } from '@/components/search/SearchResults'\n"
        "import { SearchFilters } from '../../components/search/SearchFilters'\n"
        "import { useSearch } from '@/hooks/useSearch'\n\n"
        "export default function SearchPage({ searchParams }) {\n"
        "  const search = useSearch(searchParams.q)\n"
        "  return <SearchFilters search={search} />\n}\n",
    )
    similar = {
        "src/app/search/layout.tsx": "SearchLayout",
        "src/app/search/loading.tsx": "SearchLoading",
        "src/app/saved-searches/page.tsx": "SavedSearchesPage",
        "src/app/api/search/route.ts": "searchHandler",
        "src/components/search/SearchBar.tsx": "SearchBar",
        "src/components/search/SearchResults.tsx": "SearchResults",
        "src/components/search/SearchFilters.tsx": "SearchFilters",
        "src/components/search/SearchPagination.tsx": "SearchPagination",
        "src/components/search/SearchBar.test.tsx": "testSearchBar",
        "src/components/search/SearchResults.stories.tsx": "SearchResultsStory",
        "src/hooks/useSearch.ts": "useSearch",
        "src/lib/search.ts": "searchProducts",
        "src/types/search.ts": "SearchQuery",
        "src/__tests__/search.test.tsx": "testSearch",
    }
    for rel, name in similar.items():
        write(root / rel, _component(name))
    write(root / "src/app/page.tsx", "export default function Home() { return null }\n")
    # build output: a copy of the page in each (ignored, skipped or hidden)
    for rel in (
        "out/search/page.tsx",
        "storybook-static/search/page.tsx",
        ".next/server/app/search/page.tsx",
        "dist/app/search/page.tsx",
        "build/app/search/page.tsx",
    ):
        write(root / rel, (root / PAGE).read_text() + "// search search search search\n")
    return root


@pytest.mark.parametrize("engine", ENGINES)
def test_the_real_search_page_ranks_first_among_15_similar_files(
    next_app: Path, engine: str
) -> None:
    if engine == "git":
        _git(next_app, "init", "-q")
        _git(next_app, "add", "-A")

    scan = _scan(next_app, engine)

    assert scan.listed_by == engine
    paths = [match.path for match in scan.matches]
    assert paths == [
        PAGE,  # the page's own route file
        *IMPORTED,  # what it imports (+3), in its order of import
        "src/app/search/layout.tsx",  # then at equal score: the route's companions,
        "src/app/search/loading.tsx",
        "src/lib/search.ts",  # other code, shallow first,
        "src/types/search.ts",
        "src/app/saved-searches/page.tsx",
        "src/components/search/SearchBar.tsx",
        "src/components/search/SearchPagination.tsx",
        "src/app/api/search/route.ts",
        "src/__tests__/search.test.tsx",  # then tests and stories
        "src/components/search/SearchBar.test.tsx",
        "src/components/search/SearchResults.stories.tsx",
    ]
    roles = [match.role for match in scan.matches]
    assert roles == ["page", *["imported"] * 3, "route", "route", *["code"] * 6, *["test"] * 3]
    assert not any(path.startswith(("out/", "storybook-static/", "dist/")) for path in paths)


@pytest.mark.parametrize(
    ("files", "page"),
    [
        (("pages/search.tsx", "pages/index.tsx", "components/SearchBox.tsx"), "pages/search.tsx"),
        (("pages/search/index.vue", "components/SearchBox.vue"), "pages/search/index.vue"),
        (
            ("src/routes/search/+page.svelte", "src/routes/search/+page.ts", "src/lib/Search.ts"),
            "src/routes/search/+page.svelte",
        ),
        (
            ("src/views/SearchView.vue", "src/components/SearchInput.vue"),
            "src/views/SearchView.vue",
        ),
        (("app/routes/search.tsx", "app/components/search-form.tsx"), "app/routes/search.tsx"),
        (("app/routers/search.py", "app/services/search.py"), "app/routers/search.py"),
        (("shop/search/views.py", "shop/search/models.py"), "shop/search/views.py"),
        (
            ("src/app/(shop)/search/page.tsx", "src/app/(shop)/search/[id]/page.tsx"),
            "src/app/(shop)/search/page.tsx",
        ),
    ],
)
def test_each_framework_s_route_file_comes_first(
    tmp_path: Path, files: tuple[str, ...], page: str
) -> None:
    for rel in files:
        write(tmp_path / rel, _component("SearchThing"))
    scan = _scan(tmp_path, "walk")
    assert scan.matches[0].path == page
    assert scan.matches[0].role == "page"


def test_a_python_route_s_imports_come_next(tmp_path: Path) -> None:
    write(
        tmp_path / "app/routers/search.py",
        "from app.services.ranking import rank\nfrom .deps import session\n\n"
        "def search_route(q):\n    return rank(session(), q)  # search\n",
    )
    write(tmp_path / "app/routers/deps.py", "def session():\n    return 'search'\n")
    write(tmp_path / "app/services/ranking.py", "def rank(db, q):\n    return q  # search\n")
    write(tmp_path / "app/services/search_index.py", _component("search_index"))

    scan = _scan(tmp_path, "walk")

    assert [(m.path, m.role) for m in scan.matches] == [
        ("app/routers/search.py", "page"),
        ("app/services/ranking.py", "imported"),  # one mention, but the page imports it
        ("app/routers/deps.py", "imported"),
        ("app/services/search_index.py", "code"),  # named for the term (19), not the page's
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_scan_cut_short_by_time_says_so(next_app: Path, engine: str) -> None:
    if engine == "git":
        _git(next_app, "init", "-q")
    unread = _scan(next_app, engine, read_seconds=0)
    assert unread.truncated and unread.stopped == "read time"
    assert unread.files_scanned == 17 and unread.files_read == 0 and not unread.matches
    unlisted = _scan(next_app, engine, list_seconds=0)
    assert unlisted.truncated and unlisted.stopped == "listing time"


@pytest.fixture
def checkout(next_app: Path) -> Path:
    """The Next.js app as a git checkout, with ignored copies of the page that only git
    knows are ignored (.git/info/exclude) and one that is tracked although ignored."""
    _git(next_app, "init", "-q")
    (next_app / ".git/info/exclude").write_text("generated/\n")
    write(next_app / "generated/search/page.tsx", _component("SearchPageCopy") * 3)
    write(next_app / "out/forced/search.tsx", _component("SearchPageCopy") * 3)
    _git(next_app, "add", "-A")
    _git(next_app, "add", "-f", "out/forced/search.tsx")
    return next_app


def test_git_ignored_output_is_never_listed(checkout: Path) -> None:
    scan = _scan(checkout, "git")

    assert scan.listed_by == "git"
    assert scan.matches[0].path == PAGE
    # neither generated/ (.git/info/exclude) nor out/ (ignored, even the tracked file)
    assert all(match.path.startswith("src/") for match in scan.matches)
    assert len(scan.matches) == 15  # the page and the 14 files like it


async def test_the_offline_engine_reads_a_checkout_through_git(checkout: Path) -> None:
    sink = RecordingSink()
    provider = OfflineProvider(chunk_chars=4_000, interval_s=0)
    result = await provider.run(_request(checkout, target="Search page"), sink)

    assert f"Start in {PAGE}" in " ".join(result.suggestions[0].implementation_considerations)
    assert "Project: acme-storefront." in sink.narrative  # package.json's name
    assert ("Read", "package.json") in sink.activities
    everything = sink.narrative + json.dumps([s.to_wire() for s in result.suggestions])
    assert "generated/" not in everything and "out/" not in everything


# ---------------------------------------------------------------------------- 100,000 files

FILES = 100_000


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100,000 generated files (half of them mention "search" once), the page among them, and
    copies of it in ignored, skipped and hidden build folders; git init, nothing added (git
    lists untracked files that are not ignored just the same)."""
    root = tmp_path_factory.mktemp("scan-scale") / "repo"
    generate(root, FILES, git=False)
    page = "export default function SearchPage() {\n  return <Results query={search} />\n}\n"
    write(root / PAGE, page)
    with (root / ".gitignore").open("a") as ignore:
        ignore.write("/out/\n")
    for copy in ("out/app/search/page.tsx", "dist/app/search/page.tsx", ".next/search/page.tsx"):
        write(root / copy, page + "// search search search\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


@pytest.mark.timeout(300)
@pytest.mark.parametrize("engine", ENGINES)
def test_the_page_is_found_among_100000_files(huge: Path, engine: str) -> None:
    started = time.perf_counter()
    scan = _scan(huge, engine)
    elapsed = time.perf_counter() - started

    assert scan.listed_by == engine
    assert scan.files_scanned == FILES + 1  # every file listed, none cut off by the alphabet
    assert scan.matches[0].path == PAGE
    assert [m.path for m in scan.matches if "search/page.tsx" in m.path] == [PAGE]
    assert scan.truncated and scan.stopped == "reads"  # it says it did not read them all
    assert scan.files_read == 400
    assert elapsed < 15  # about 1 s on a quiet machine (bench figures in the report)


@pytest.mark.timeout(300)
async def test_the_offline_engine_says_how_much_of_100000_files_it_read(huge: Path) -> None:
    sink = RecordingSink()
    provider = OfflineProvider(chunk_chars=4_000, interval_s=0)
    result = await provider.run(_request(huge, target="Search page"), sink)

    assert f"Found 1 file matching “Search page”: {PAGE}." in sink.narrative
    assert "the text of 400 of the 100,001 files was read, those whose paths fit best" in (
        result.context
    )


# ---------------------------------------------------------------------------- project name


@pytest.mark.parametrize(
    ("files", "name"),
    [
        ({"README.md": "# Installation\n\nRun make.\n"}, None),
        ({"README.md": "## Getting started\n\n# Usage\n\n# Acme Shop\n"}, "Acme Shop"),
        ({"README.md": "# 📦 Table of Contents\n\n# 2. Usage:\n"}, None),
        ({"README.md": "Contents\n========\n\nAcme Docs\n=========\n"}, "Acme Docs"),
        ({"README.md": "## Acme Shop\n\nA section heading is not a title.\n"}, None),
        (
            {"README.md": "# Acme Shop\n", "package.json": '{"name": "@acme/storefront"}'},
            "@acme/storefront",
        ),
        (
            {"README.md": "# Installation\n", "pyproject.toml": '[project]\nname = "acme-api"\n'},
            "acme-api",
        ),
        (
            {"pyproject.toml": '[tool.poetry]\nname = "acme-worker"\n'},
            "acme-worker",
        ),
        ({"README.md": "# Acme Shop\n", "package.json": "{not json"}, "Acme Shop"),
        ({"README.md": "# Acme Shop\n", "package.json": '{"private": true}'}, "Acme Shop"),
    ],
)
def test_the_project_name_is_never_a_section_heading(
    tmp_path: Path, files: dict[str, str], name: str | None
) -> None:
    for rel, text in files.items():
        write(tmp_path / rel, text)
    docs = read_project_docs(tmp_path)
    assert docs.name == name
    assert set(docs.files) == set(files)


async def test_without_a_name_the_offline_engine_says_the_folder_s(tmp_path: Path) -> None:
    root = tmp_path / "acme-shop"
    write(
        root / "README.md",
        "# Installation\n\nThis storefront is built with Next.js and TypeScript.\n",
    )
    write(root / "src/app/search/page.tsx", _component("SearchPage"))
    sink = RecordingSink()
    result = await OfflineProvider(chunk_chars=4_000, interval_s=0).run(
        _request(root, target="Billing page"), sink
    )

    assert "Project: acme-shop (Next.js, TypeScript)." in sink.narrative
    everything = sink.narrative + json.dumps([s.to_wire() for s in result.suggestions])
    assert "Installation" not in everything
    assert "following acme-shop's Next.js and TypeScript conventions" in everything


# -- the page's own files, as a real app (2,500 files, a monorepo) lays them out --------------

SETTINGS = "apps/dashboard/src/app/[locale]/(app)/(sidebar)/settings/page.tsx"


def _settings_app(root: Path) -> None:
    """A team Settings page that renders form components whose files never say "settings",
    beside an Inbox settings page and components named for settings that it does not render
    (the real page's files ranked below all of these, and its forms were never read)."""
    write(
        root / SETTINGS,
        "import { CompanyName } from '@/components/company-name'\n"
        "import { CompanyEmail } from '@/components/company-email'\n\n"
        "export default function Account() {\n"
        "  return <div><CompanyName /><CompanyEmail /></div>\n}\n",
    )
    write(
        root / "apps/dashboard/src/app/[locale]/(app)/(sidebar)/settings/layout.tsx",
        "export default function Layout({ children }) { return children } // settings\n",
    )
    inbox = "apps/dashboard/src/app/[locale]/(app)/(sidebar)/inbox/settings/page.tsx"
    write(
        root / inbox,
        "import { InboxSettings } from '@/components/inbox-settings'\n"
        "export default function Page() { return <InboxSettings /> } // settings settings\n",
    )
    for name in ("company-name", "company-email"):
        write(root / f"apps/dashboard/src/components/{name}.tsx", _component("CompanyField"))
    for name in ("inbox-settings", "app-settings", "notification-settings"):
        write(root / f"apps/dashboard/src/components/{name}.tsx", _component("SettingsThing"))


@pytest.mark.parametrize("engine", ENGINES)
def test_the_page_s_components_come_before_files_named_for_it(tmp_path: Path, engine: str) -> None:
    _settings_app(tmp_path)
    if engine == "git":
        _git(tmp_path, "init", "-q")
        _git(tmp_path, "add", "-A")

    scan = _scan(tmp_path, engine, "Settings page")

    assert [(m.path.rsplit("/", 2)[-2:], m.role) for m in scan.matches][:4] == [
        (["settings", "page.tsx"], "page"),
        (["settings", "layout.tsx"], "route"),  # the route's companion (named: scores more)
        (["components", "company-name.tsx"], "imported"),  # never says "settings": rendered
        (["components", "company-email.tsx"], "imported"),
    ]
    inbox = next(m for m in scan.matches if "/inbox/settings/" in m.path)
    assert inbox.role == "page" and scan.matches.index(inbox) > 3  # /inbox/settings: near it
    rendered_by_inbox = next(m for m in scan.matches if m.path.endswith("inbox-settings.tsx"))
    assert rendered_by_inbox.role == "code"  # the Inbox settings page's imports are not its


def test_of_two_pages_named_alike_the_one_with_more_code_comes_first_with_its_files(
    tmp_path: Path,
) -> None:
    """A monorepo's marketing site and its app both have a Customers route: the app's page,
    which renders the table, and the components it imports come before the site's."""
    site = "apps/website/src/app/customers/page.tsx"
    app = "apps/dashboard/src/app/[locale]/(sidebar)/customers/page.tsx"
    write(
        tmp_path / site,
        "import { Customers } from '@/components/customers'\n"
        "export default function Page() { return <Customers /> }\n",
    )
    write(tmp_path / "apps/website/src/components/customers.tsx", _component("Customers") * 2)
    write(
        tmp_path / app,
        "import { DataTable } from '@/components/tables/customers/data-table'\n"
        "import { Header } from '@/components/header'\n"
        "import { Summary } from '@/components/summary'\n"
        "export default function Page() { return <><Header /><Summary /><DataTable /></> }\n",
    )
    write(
        tmp_path / "apps/dashboard/src/components/tables/customers/data-table.tsx",
        _component("DataTable"),
    )
    write(tmp_path / "apps/dashboard/src/components/header.tsx", _component("Header"))
    write(tmp_path / "apps/dashboard/src/components/summary.tsx", _component("Summary"))
    write(tmp_path / "apps/api/src/schemas/customers.ts", _component("CustomerSchema") * 3)

    scan = _scan(tmp_path, "walk", "Customers page")

    assert [m.path.removeprefix("apps/") for m in scan.matches] == [
        "dashboard/src/app/[locale]/(sidebar)/customers/page.tsx",
        "dashboard/src/components/tables/customers/data-table.tsx",  # its files: named first,
        "dashboard/src/components/header.tsx",  # then in its order of import
        "dashboard/src/components/summary.tsx",
        "website/src/app/customers/page.tsx",
        "website/src/components/customers.tsx",
        "api/src/schemas/customers.ts",  # named for the term, rendered by neither page
    ]
