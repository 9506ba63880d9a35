"""Read a repository the way a careful person would, without an AI model.

Two questions are answered here, both with blocking file I/O (call them from a worker
thread): what do the project's own notes say (``read_project_docs``), and which files are
about the page or component the user named (``find_matching_files``).

What may be seen and read is the ``Sandbox``'s answer, the same as for the agent's tools
(secrets, ``.git``, ignored and vendored files, binaries, links out of the root: never).
Within that, this scan passes over what is rarely worth reading: hidden files and folders,
symbolic links (their targets are scanned under their own path), images, archives, lock
files and bundles (``NOISE_PATTERNS``) and files over ``MAX_FILE_BYTES``.

Every file is listed, at any size, and the work is bounded by what is read (never by an
alphabetical cut-off). The list comes from ``git ls-files`` when the root is the top of a git
checkout (files ignored by a ``.gitignore``, ``.git/info/exclude`` or the user's global
excludes never appear, and every path read still goes through ``Sandbox.admit``), else from
the sandbox's own walk (which applies the ``.gitignore`` files at and below the root); either
stops only at ``LIST_SECONDS``. Files are then ranked by their path alone, and only the best
``MAX_READS`` are read (at most ``MAX_BYTES_READ`` bytes, within ``READ_SECONDS``), in this
order:

1. the page's own route files: a file that is a page by the conventions of its framework
   (``app/search/page.tsx``, ``pages/search.tsx``, ``pages/search/index.vue``,
   ``src/routes/search/+page.svelte``, ``views/Search.vue``, ``routes/search.py``,
   ``search/views.py``) whose route is named by the search terms, then its sub-routes, page
   components (``SearchPage.tsx``) and pages with longer names (``saved-searches``);
2. the files the exactly named pages import (relative, ``@/``, ``~/``, ``$lib/`` and Python
   imports, resolved against the listing), in their order of import;
3. the other files whose path mentions a term, best name first;
4. the rest: those in the folders of the best matches first, code before prose, shallow
   before deep.

``ScanResult`` says how many files were listed and read, and why it stopped, if it did.

The order of the matches (``_rank``), so that the alphabet decides only between files alike
in every way: the route file named exactly for the target comes first (of two, the one
that imports more files: a monorepo's app before its marketing site; a route under more
route words, ``inbox/settings`` beside ``settings``, is only near it), then that page's own
files: what it imports (a file it renders is a match even if it never names the target)
and its route's companions (``layout``, ``loading``, ``error``, ``+page.server.ts``…); then
each further such page with its files; then every other file. Within each: by score (name,
mentions, a definition named for the term, +3 when the page imports the file, -4 for tests
and stories); then, at equal score, by role: the route's companions, sub-routes and page
components; the files the page imports, in its order of import; other code; tests and
stories last; then shallower paths first; then the path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import json
import posixpath
import re
import time
import tomllib
from collections.abc import Callable, Collection, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fnmatch import translate
from pathlib import Path
from typing import Any, TypeVar

from .. import git_search
from ..sandbox import SKIP_DIR_SUFFIXES, SKIP_DIRS, Budget, Location, Sandbox, SandboxError

__all__ = [
    "FileMatch",
    "ProjectDocs",
    "RepositoryListing",
    "ScanResult",
    "find_matching_files",
    "glob_pattern",
    "list_repository",
    "read_project_docs",
    "resolve_import",
    "search_terms",
]

MAX_FILE_BYTES = 256 * 1024
MAX_READS = 400  # files whose text is read, best paths first
MAX_BYTES_READ = 8 * 1024 * 1024
LIST_SECONDS = 5.0  # listing every file (git ls-files or the walk)
READ_SECONDS = 3.0  # reading the best of them
MAX_DOC_BYTES = 64 * 1024
_SYMBOL_SCAN_CHARS = 64 * 1024
_IMPORT_SCAN_CHARS = 32 * 1024

# Not worth reading: known binary formats, lock files and generated bundles.
NOISE_PATTERNS = (
    "*.png", "*.jpg", "*.jpeg", "*.gif", "*.ico", "*.webp", "*.pdf", "*.zip", "*.gz",
    "*.tgz", "*.woff", "*.woff2", "*.ttf", "*.eot", "*.mp3", "*.mp4", "*.so", "*.dylib",
    "*.dll", "*.exe", "*.pyc", "*.class", "*.jar", "*.sqlite", "*.db", "*.lock",
    "*-lock.json", "*.min.js", "*.min.css", "*.map",
)  # fmt: skip
# Files named by convention, whose folder says what they are (app routers, packages).
GENERIC_FILE_NAMES = frozenset(
    {"page", "index", "route", "layout", "view", "main", "mod", "init", "default", "server",
     "loading", "error", "template", "not-found"}
)  # fmt: skip
_NOISE = re.compile("|".join(translate(p) for p in NOISE_PATTERNS))
README_NAMES = ("README.md", "README.rst", "README.txt", "README")
MANIFEST_NAMES = ("package.json", "pyproject.toml")
# Section headings, never a project's name.
GENERIC_HEADINGS = frozenset(
    {
        "about", "acknowledgements", "acknowledgments", "api", "architecture", "authors",
        "background", "build", "building", "changelog", "changes", "configuration", "contents",
        "contributing", "contributors", "credits", "demo", "deploy", "deployment",
        "description", "development", "docs", "documentation", "example", "examples", "faq",
        "features", "getting started", "get started", "how it works", "how to use",
        "install", "installation", "installing", "intro", "introduction", "license",
        "motivation", "notes", "overview", "prerequisites", "quick start", "quickstart",
        "readme", "reference", "requirements", "roadmap", "running", "screenshots", "setup",
        "status", "summary", "support", "table of contents", "testing", "tests", "toc", "todo",
        "usage", "what is this", "welcome",
    }
)  # fmt: skip

STOP_WORDS = frozenset(
    {
        "a", "an", "and", "app", "component", "components", "feature", "file", "for", "in",
        "module", "my", "of", "on", "our", "page", "pages", "screen", "section", "the",
        "this", "to", "view", "with",
    }
)  # fmt: skip
STACK_KEYWORDS = (
    ("Next.js", r"\bnext\.?js\b"),
    ("React", r"\breact\b"),
    ("Vue", r"\bvue(?:\.js)?\b"),
    ("Svelte", r"\bsvelte(?:kit)?\b"),
    ("Angular", r"\bangular\b"),
    ("TypeScript", r"\btypescript\b"),
    ("Node.js", r"\bnode\.?js\b"),
    ("Python", r"\bpython\b"),
    ("FastAPI", r"\bfastapi\b"),
    ("Django", r"\bdjango\b"),
    ("Flask", r"\bflask\b"),
    ("Ruby on Rails", r"\brails\b"),
    ("Tailwind CSS", r"\btailwind\b"),
    ("Prisma", r"\bprisma\b"),
    ("GraphQL", r"\bgraphql\b"),
    ("PostgreSQL", r"\bpostgres(?:ql)?\b"),
    ("SQLite", r"\bsqlite\b"),
    ("Redis", r"\bredis\b"),
)
_MAX_STACK = 5

_WORD_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_SYMBOL = re.compile(
    r"^([ \t]*)(?:export[ \t]+)?(?:default[ \t]+)?(?:async[ \t]+)?"
    r"(?:def|class|function\*?|const|let|interface|type|func|fn|struct|enum)[ \t]+"
    r"([A-Za-z_$][\w$]*)",
    re.MULTILINE,
)
_MD_TITLE = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.MULTILINE)  # "# Title" (not "## Section")
_UNDERLINED_TITLE = re.compile(r"^([^\s=#-].*)\n[=#]{3,}[ \t]*$", re.MULTILINE)  # Setext, RST
_HEADING_NUMBER = re.compile(r"^[\d.)\s]+")


@dataclass(frozen=True, slots=True)
class ProjectDocs:
    """What the repository's own notes say about it."""

    files: tuple[str, ...]  # relative paths actually read, in reading order
    name: str | None  # the manifest's name, else the README's title (never a section)
    summary: str | None  # the README's first sentence of prose
    stack: tuple[str, ...]  # technologies the notes mention, in order of mention
    guidance: str | None  # a first convention from CLAUDE.md, verbatim


@dataclass(frozen=True, slots=True)
class FileMatch:
    """A file that is about the page or component, and why."""

    path: str  # relative, POSIX separators
    score: int
    in_name: bool  # a search term is in the file's name or folder
    content_hits: int
    symbols: tuple[str, ...]  # functions, classes, components defined in it
    role: str = "code"  # "page", "route", "imported", "code" or "test" (see ``_Role``)


@dataclass(frozen=True, slots=True)
class ScanResult:
    terms: tuple[str, ...]
    matches: tuple[FileMatch, ...]  # best first
    files_scanned: int  # files listed and ranked by their path
    truncated: bool  # not every listed file was read, or the listing itself was cut short
    files_read: int = 0  # files whose text was read (the best paths first)
    listed_by: str = "walk"  # "git" (git ls-files) or "walk" (the sandbox's walk)
    stopped: str | None = None  # why: "listing time", "reads", "bytes" or "read time"
    read: tuple[str, ...] = ()  # the files it opened (or tried to), sorted: what it depends on


def search_terms(target: str) -> tuple[str, ...]:
    """The words of ``target`` worth searching for, stemmed, lower case, in order.

    ``"Collections page"`` → ``("collection",)``; ``"UserProfile"`` → ``("user", "profile")``.
    Stop words are dropped only if other words remain.
    """
    words: list[str] = []
    for raw in re.split(r"[^0-9A-Za-z]+|_", target):
        words.extend(part.lower() for part in _WORD_PARTS.findall(raw))
    words = [word for word in words if len(word) > 1]
    meaningful = [word for word in words if word not in STOP_WORDS]
    return tuple(dict.fromkeys(_stem(word) for word in (meaningful or words)))


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def glob_pattern(terms: Sequence[str]) -> str:
    """A glob that describes the name search, for the activity log."""
    return "**/*" + "*".join(terms) + "*" if terms else "**/*"


def read_project_docs(root: Path) -> ProjectDocs:
    """Read CLAUDE.md, the first README found and the package manifest at the root.

    The project's name is the manifest's (``package.json`` "name", ``pyproject.toml``
    ``[project]`` or ``[tool.poetry]`` name), else the README's first title that is not a
    section heading ("Installation", "Getting started", "Usage", ``GENERIC_HEADINGS``),
    else None (the caller says the folder's name)."""
    sandbox = Sandbox(root)
    texts: dict[str, str] = {}
    for name in ("CLAUDE.md", *README_NAMES):
        text = _read_doc(sandbox, name)
        if text is not None:
            texts[name] = text
            if name != "CLAUDE.md":
                break  # the first README that may be read
    claude_text = texts.get("CLAUDE.md", "")
    readme_text = next((text for name, text in texts.items() if name != "CLAUDE.md"), "")
    files = list(texts)
    project_name = None
    for manifest in MANIFEST_NAMES:
        text = _read_doc(sandbox, manifest)
        if text is not None:
            files.append(manifest)
            project_name = _manifest_name(manifest, text)
            if project_name:
                break
    return ProjectDocs(
        files=tuple(files),
        name=project_name or _first_heading(readme_text) or _first_heading(claude_text),
        summary=_first_sentence(readme_text),
        stack=_stack(" ".join(texts.values())),
        guidance=_first_convention(claude_text),
    )


def _read_doc(sandbox: Sandbox, name: str) -> str | None:
    """The start of a text file at the root, if the sandbox lets it be read."""
    try:
        found = sandbox.resolve(name)
        if found.is_dir:
            return None
        return sandbox.read_text(found, MAX_DOC_BYTES, truncate=True)
    except (OSError, SandboxError):
        return None


def _manifest_name(manifest: str, text: str) -> str | None:
    """The "name" a package manifest declares, or None (absent, not text, unparsable)."""
    data: Any
    try:
        if manifest == "package.json":
            data = json.loads(text)
            name = data.get("name") if isinstance(data, dict) else None
        else:
            data = tomllib.loads(text)
            project = data.get("project")
            poetry = data.get("tool", {}).get("poetry")
            name = next(
                (table.get("name") for table in (project, poetry) if isinstance(table, dict)),
                None,
            )
    except (ValueError, AttributeError):
        return None
    if not isinstance(name, str):
        return None
    name = " ".join(name.split())
    return name[:80] or None


def _first_heading(text: str) -> str | None:
    """The first title (a level-one heading) that is not a section heading or CLAUDE.md's."""
    for pattern in (_MD_TITLE, _UNDERLINED_TITLE):
        for found in pattern.finditer(text):
            heading = _clean_inline(found.group(1))
            if heading and "claude" not in heading.lower() and not _is_section(heading):
                return heading[:80]
    return None


def _is_section(heading: str) -> bool:
    """ "Installation", "2. Getting Started", "📦 Usage:", "Table of Contents"…"""
    words = re.sub(r"[^\w\s'-]", " ", heading.lower().replace("&", " and "))
    words = _HEADING_NUMBER.sub("", " ".join(words.split())).strip(" '-")
    return not words or words in GENERIC_HEADINGS


def _first_sentence(text: str) -> str | None:
    in_fence = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence or len(stripped) < 20 or stripped[0] in "#=-*>|[!<.:":
            continue
        sentence = _clean_inline(re.split(r"(?<=[.!?])\s", stripped, maxsplit=1)[0])
        return sentence[:200] if sentence else None
    return None


def _first_convention(text: str) -> str | None:
    for line in text.splitlines():
        found = re.match(r"^\s*[-*]\s+(.+)$", line)
        if found and len(found.group(1).split()) >= 4:
            return _clean_inline(found.group(1))[:160]
    return None


def _clean_inline(text: str) -> str:
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", text)  # badges and images
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their words
    return re.sub(r"[`*_]", "", text).strip()


def _stack(text: str) -> tuple[str, ...]:
    positions = []
    for label, pattern in STACK_KEYWORDS:
        found = re.search(pattern, text, re.IGNORECASE)
        if found:
            positions.append((found.start(), label))
    return tuple(label for _, label in sorted(positions)[:_MAX_STACK])


_T = TypeVar("_T")

# Page files by their framework's conventions (see ``_role``).
_PAGE_EXTENSIONS = frozenset(
    {"astro", "cjs", "html", "js", "jsx", "mdx", "mjs", "php", "py", "rb", "svelte", "ts",
     "tsx", "vue"}
)  # fmt: skip
_CODE_EXTENSIONS = _PAGE_EXTENSIONS | {
    "c", "cc", "cpp", "cs", "css", "dart", "ex", "go", "h", "java", "kt", "less", "rs",
    "scala", "scss", "swift",
}  # fmt: skip
_PAGE_NAMES = frozenset({"page", "+page"})  # app router, SvelteKit: a page by its own name
# Folders under which each file is a route (Next.js and Nuxt pages, Remix, SvelteKit,
# TanStack routes, Vue views, React Native screens, Python routers and views).
_ROUTE_FOLDERS = frozenset(
    {"pages", "routes", "views", "screens", "routers", "endpoints", "controllers", "handlers"}
)
# Under a route folder, named by their folder (``pages/search/index.tsx``).
_FOLDER_NAMED = frozenset({"index", "_index", "route", "views", "routes"})
# Folders above which nothing is part of a route's URL (``_route_words``).
_ROUTE_ROOTS = _ROUTE_FOLDERS | {"app"}
_PYTHON_ROUTE_MODULES = frozenset({"views", "routes", "pages"})  # search/views.py (Django)
# A route's other files (app router, SvelteKit, Remix), beside its page.
_COMPANIONS = frozenset(
    {"layout", "+layout", "loading", "error", "+error", "template", "not-found", "default",
     "head", "route", "+page.server", "+page", "+layout.server", "+server", "actions"}
)  # fmt: skip
_PAGE_WORDS = ("page", "screen", "view")  # SearchPage.tsx, search_view.py
_SUPPORTING = re.compile(
    r"(^|/)(tests?|__tests__|__mocks__|spec|e2e|cypress|playwright|stories)/"
    r"|[._-](test|spec|stories|story)\."
)
_JS_IMPORT = re.compile(r"""(?:\bfrom|\bimport\s*\(?|\brequire\s*\()\s*['"]([^'"\n]{1,200})['"]""")
_PY_IMPORT = re.compile(r"^[ \t]*(?:from[ \t]+([.\w]+)[ \t]+import|import[ \t]+([\w.]+))", re.M)
_ALIASES = (("@/", ""), ("~/", ""), ("#/", ""), ("$lib/", "lib/"), ("~~/", ""), ("@@/", ""))
# Hidden names and skipped folders (``SKIP_DIRS``) anywhere in a path git listed.
_PASSED_OVER = re.compile(
    r"(?:^|/)(?:\.|(?:"
    + "|".join(re.escape(name) for name in sorted(SKIP_DIRS))
    + r"|[^/]*(?:"
    + "|".join(re.escape(suffix) for suffix in SKIP_DIR_SUFFIXES)
    + r"))/)"
)
_IMPORT_EXTENSIONS = ("ts", "tsx", "js", "jsx", "mjs", "vue", "svelte", "py")


class _Role:
    """Ranks between files of equal score (lower first) and their names."""

    PAGE, ROUTE, IMPORTED, CODE, TEST = range(5)
    NAMES = ("page", "route", "imported", "code", "test")


@dataclass(slots=True)
class _Listing:
    paths: list[str]  # relative, POSIX, hidden and noise already passed over
    by: str  # "git" or "walk"
    complete: bool
    admitted: dict[str, Location | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Path:
    """What a path alone says about a file."""

    rel: str
    name_score: int
    route_rank: int  # 0 the target's own route file, 1 a sub-route or near name, 2 none
    role: int


def find_matching_files(
    root: Path,
    terms: Sequence[str],
    *,
    exclude: Collection[str] = (),
    limit: int = 5,
    max_reads: int = MAX_READS,
    max_bytes: int = MAX_BYTES_READ,
    use_git: bool = True,
    list_seconds: float = LIST_SECONDS,
    read_seconds: float = READ_SECONDS,
    listing: RepositoryListing | None = None,
) -> ScanResult:
    """The files whose paths (strongly) or contents (weakly) are about ``terms``, best first.

    Every file is listed and ranked by its path; the best ``max_reads`` are read. A
    ``listing`` of ``root`` made by ``list_repository`` spares listing it again."""
    if not terms:
        return ScanResult(terms=(), matches=(), files_scanned=0, truncated=False)
    terms = tuple(terms)
    sandbox = Sandbox(root)
    if listing is None:
        listing = _list(sandbox, use_git, time.monotonic() + list_seconds)
    listed = set(listing.paths)
    excluded = set(exclude)
    rels = [rel for rel in listing.paths if rel not in excluded]
    mentions = re.compile("|".join(re.escape(form) for term in terms for form in _forms(term)))
    reader = _Reader(sandbox, listing, terms, max_reads, max_bytes, read_seconds)

    # 1. the target's route files, 2. what they import, 3. named files, 4. the rest.
    abouts = (_about(rel, terms) for rel in rels if mentions.search(rel.lower()))
    named = _exact_routes_first([about for about in abouts if about.name_score])
    pages: list[tuple[str, list[str]]] = []  # the pages whose imports are followed
    exact = any(about.route_rank == 0 for about in named)
    for about in named:
        if about.route_rank == 2:
            break
        text = reader.read(about)
        if text is not None and (about.route_rank == 0 or not exact):
            pages.append((about.rel, _imports(about.rel, text, listed)))
    # two pages named alike (a monorepo's site and app): the one with more code of its own
    pages.sort(key=lambda page: -len(page[1]))
    for index, (page, found) in enumerate(pages):
        reader.pages.setdefault(page, index)
        reader.page_of.setdefault(page.rpartition("/")[0] + "/", index)  # its companions
        for rel in found:
            if rel not in excluded:
                reader.page_of.setdefault(rel, index)
                reader.imported.setdefault(rel, len(reader.imported) + 1)
    imported_in_order = list(reader.imported)
    reader.read_all(_about(rel, terms) for rel in imported_in_order)
    reader.read_all(named)
    rest = reader.left(len(rels))
    if rest > 0:
        near = _near_folders(reader.best_paths(20))
        done = reader.done
        unnamed = (
            (rel.rpartition("/")[0] not in near, *_path_key(rel))
            for rel in rels
            if rel not in done and not mentions.search(rel.lower())
        )
        reader.read_all(_about(key[-1], terms) for key in heapq.nsmallest(rest, unnamed))

    matches = sorted(reader.matches, key=reader.rank)
    stopped = "listing time" if not listing.complete else reader.stopped
    if stopped is None and reader.count < len(rels):
        stopped = "reads"  # the read stopped short of the list; say so
    return ScanResult(
        terms=terms,
        matches=tuple(match for _, match, _ in matches[:limit]),
        files_scanned=len(rels),
        truncated=stopped is not None,
        files_read=reader.count,
        listed_by=listing.by,
        stopped=stopped,
        read=tuple(sorted(reader.done)),
    )


def _rank(
    entry: tuple[_Path, FileMatch, int], pages: dict[str, int], page_of: dict[str, int]
) -> tuple[int, int, int, int, int, int, str]:
    """The order of matches: each page the target names (``pages``, in their order), then its
    own files (``page_of``: what it imports, and its route's companions, a folder's key ending
    in "/"), before any other file; within these: score; role; import order (for the files a
    page imports); depth; path."""
    about, match, imported_at = entry
    role = _Role.NAMES.index(match.role)
    folder = about.rel.rpartition("/")[0] + "/"
    if about.rel in pages:
        group, own = pages[about.rel], 0
    elif about.rel in page_of:
        group, own = page_of[about.rel], 1
    elif role == _Role.ROUTE and folder in page_of:
        group, own = page_of[folder], 1
    else:
        group, own = len(pages), 2
    depth = about.rel.count("/")
    return (group, own, -match.score, role, imported_at, depth, about.rel)


def _exact_routes_first(named: list[_Path]) -> list[_Path]:
    """The named paths in reading order: route files first. A route named exactly for the
    target but under more route words than another (``inbox/settings`` beside ``settings``
    for "Settings") is only near it: read early, but not the page."""
    extra = {about.rel: _route_words(about.rel) for about in named if about.route_rank == 0}
    fewest = min(extra.values(), default=0)
    named = [
        dataclasses.replace(about, route_rank=1) if extra.get(about.rel, 0) > fewest else about
        for about in named
    ]
    return sorted(named, key=lambda a: (a.route_rank, -a.name_score, a.role, *_path_key(a.rel)))


def _route_words(rel: str) -> int:
    """How many segments of a route file's URL come before the one that names it:
    ``app/(shop)/[locale]/inbox/settings/page.tsx`` 1 (inbox), ``pages/settings.tsx`` 0. Groups,
    slots, dynamic and private segments are not words; nor is anything above the last folder
    that holds routes (``app``, ``pages``, ``routes``…)."""
    folders = rel.split("/")[:-1]
    roots = [index for index, folder in enumerate(folders) if folder.lower() in _ROUTE_ROOTS]
    after = folders[roots[-1] + 1 :] if roots else []
    words = [f for f in after if not f.startswith(("(", "@", "[", "$", ":", "_"))]
    return max(len(words) - 1, 0) if _names_by_folder(rel) else len(words)


def _names_by_folder(rel: str) -> bool:
    """The route file takes its name from its folder (``search/page.tsx``, ``search/index.vue``,
    ``search/views.py``), not from its own (``pages/search.tsx``)."""
    head = rel.rpartition("/")[2].rpartition(".")[0].split(".")[0].lower()
    return head in _PAGE_NAMES or head in _FOLDER_NAMED or head in _PYTHON_ROUTE_MODULES


def _path_key(rel: str) -> tuple[bool, int, str]:
    """Code before prose and data, shallow before deep, then the path."""
    extension = rel.rpartition("/")[2].rpartition(".")[2].lower()
    return (extension not in _CODE_EXTENSIONS, rel.count("/"), rel)


def _near_folders(paths: Iterable[str]) -> set[str]:
    near: set[str] = set()
    for rel in paths:
        folder = rel.rpartition("/")[0]
        near.add(folder)
        near.add(folder.rpartition("/")[0])
    return near


# -- listing ----------------------------------------------------------------------------------

RepositoryListing = _Listing  # what ``list_repository`` gives and ``find_matching_files`` takes


def list_repository(
    root: Path, *, use_git: bool = True, seconds: float = LIST_SECONDS
) -> RepositoryListing:
    """Every file the scan ranks (``paths``; ``by`` "git" or "walk"; ``complete`` unless the
    time ran out), listed once for whoever needs the list beside the scan (the repository
    map resolves imports and finds tests in it). Blocking."""
    return _list(Sandbox(root), use_git, time.monotonic() + seconds)


def _list(sandbox: Sandbox, use_git: bool, deadline: float) -> _Listing:
    """Every file worth ranking: git's list in a checkout, else the sandbox's walk."""
    if use_git:
        listing = _run_async(lambda: _git_listing(sandbox.root, deadline))
        if listing is not None and listing.failed is None:
            paths = [rel for rel in listing.paths if _worth_listing(rel)]
            return _Listing(paths, "git", complete=listing.stopped is None)
    budget = Budget(max_entries=2**62, deadline=deadline)  # no count: the time bounds it
    admitted: dict[str, Location | None] = {}
    for found in sandbox.walk(sandbox.resolve("."), budget, breadth_first=True, pass_over=_hidden):
        if not found.linked and not _NOISE.match(found.rel.rsplit("/", 1)[-1].lower()):
            admitted[found.rel] = found
    return _Listing(list(admitted), "walk", budget.stopped is None, admitted)


async def _git_listing(root: str, deadline: float) -> git_search.GitListing | None:
    if not await git_search.is_checkout(root):
        return None
    return await git_search.list_files(root, "", deadline)


def _run_async(factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T | None:
    """Run a coroutine to its end from blocking code (a worker thread, or a test's event loop:
    then in a thread of its own). None when git cannot be started at all."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        running = False
    else:
        running = True
    try:
        if not running:
            return asyncio.run(factory())
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, factory()).result()
    except OSError:
        return None


def _worth_listing(rel: str) -> bool:
    """What the walk passes over, for a path git listed: hidden, noise, skipped folders.
    (Whether the sandbox admits it is asked only of the files that are read.)"""
    if _PASSED_OVER.search(rel):
        return False
    return not _NOISE.match(rel.rpartition("/")[2].lower())


def _hidden(name: str) -> bool:
    return name.startswith(".")


# -- reading ----------------------------------------------------------------------------------


class _Reader:
    """Reads files once each, within the budget, and keeps those that match."""

    def __init__(
        self,
        sandbox: Sandbox,
        listing: _Listing,
        terms: tuple[str, ...],
        max_reads: int,
        max_bytes: int,
        seconds: float,
    ) -> None:
        self.sandbox = sandbox
        self.listing = listing
        self.terms = terms
        self.reads_left = max_reads
        self.bytes_left = max_bytes
        self.deadline = time.monotonic() + seconds
        self.done: set[str] = set()
        self.imported: dict[str, int] = {}  # what the target's pages import, in order
        self.pages: dict[str, int] = {}  # the target's pages, best first
        self.page_of: dict[str, int] = {}  # the files (and route folders) of each page
        self.matches: list[tuple[_Path, FileMatch, int]] = []
        self.stopped: str | None = None

    @property
    def count(self) -> int:
        return len(self.done)

    def left(self, total: int) -> int:
        return 0 if self.stopped else min(self.reads_left, total - self.count)

    def rank(self, entry: tuple[_Path, FileMatch, int]) -> tuple[int, int, int, int, int, int, str]:
        return _rank(entry, self.pages, self.page_of)

    def best_paths(self, count: int) -> list[str]:
        return [about.rel for about, _, _ in sorted(self.matches, key=self.rank)[:count]]

    def read_all(self, abouts: Iterable[_Path]) -> None:
        for about in abouts:
            if self.stopped:
                return
            self.read(about)

    def read(self, about: _Path) -> str | None:
        """The file's text (None: binary, too large, refused), scored once read."""
        if about.rel in self.done or self.stopped:
            return None
        if self.reads_left <= 0:
            self.stopped = "reads"
        elif self.bytes_left <= 0:
            self.stopped = "bytes"
        elif time.monotonic() > self.deadline:
            self.stopped = "read time"
        if self.stopped:
            return None
        self.done.add(about.rel)
        self.reads_left -= 1
        found = self._locate(about.rel)
        if found is None or found.linked:
            return None
        try:
            text = self.sandbox.read_text(found, MAX_FILE_BYTES)
        except (OSError, SandboxError):
            return None
        self.bytes_left -= len(text)
        imported_at = self.imported.get(about.rel)
        match = _score(about, text, self.terms, imported=imported_at is not None)
        if match is not None:
            self.matches.append((about, match, imported_at or 0))
        return text

    def _locate(self, rel: str) -> Location | None:
        admitted = self.listing.admitted
        if rel not in admitted:
            admitted[rel] = self.sandbox.admit(rel)  # git listed it: the sandbox decides
        return admitted[rel]


# -- what a path says ---------------------------------------------------------------------


def _about(rel: str, terms: tuple[str, ...]) -> _Path:
    name_score = _name_score(rel, terms)
    route_rank, role = _role(rel, terms) if name_score else (2, _plain_role(rel))
    return _Path(rel, name_score, route_rank, role)


def _plain_role(rel: str) -> int:
    return _Role.TEST if _SUPPORTING.search(rel.lower()) else _Role.CODE


def _role(rel: str, terms: tuple[str, ...]) -> tuple[int, int]:
    """Whether ``rel`` is the route file of the page ``terms`` name (0: named exactly for it;
    1: a sub-route, a page's component or a page named with more words, read early; 2: not),
    and its role (``_Role``)."""
    if _SUPPORTING.search(rel.lower()):
        return 2, _Role.TEST
    *folders, filename = rel.split("/")
    head, _, extension = filename.rpartition(".")
    if not head or extension.lower() not in _PAGE_EXTENSIONS:
        return 2, _Role.CODE
    lowered = [folder.lower() for folder in folders]
    if "api" in lowered:
        return 2, _Role.CODE  # an API handler, not a page
    stem = head.split(".")[0]
    naming, dynamic = _naming_folder(folders)
    in_route_folder = any(folder in _ROUTE_FOLDERS for folder in lowered)
    if head.lower() in _PAGE_NAMES and (head != "+page" or extension == "svelte"):
        label = naming  # app/search/page.tsx, routes/search/+page.svelte
    elif in_route_folder and stem.startswith(("[", "$", ":")):
        label, dynamic = naming, True  # pages/search/[query].tsx: a sub-route
    elif in_route_folder and stem.lower() in _FOLDER_NAMED:
        if naming is not None and naming.lower() in _ROUTE_FOLDERS:
            return 2, _Role.CODE  # the folder's own index: pages/index.tsx
        label = naming  # pages/search/index.tsx, search/views.py under views/
    elif extension == "py" and stem.lower() in _PYTHON_ROUTE_MODULES:
        label = naming  # search/views.py, search/routes.py
    elif in_route_folder:
        label, dynamic = stem, dynamic or "$" in head  # pages/search.tsx, routes/search.py
    else:
        words = _WORD_PARTS.findall(stem)
        if not words or words[-1].lower() not in _PAGE_WORDS:
            return 2, _companion(head, naming, terms)
        label, dynamic = stem, True  # SearchPage.tsx: a page's component, after its route
    if label is None:
        return 2, _Role.CODE
    named = set(search_terms(label))
    if named == set(terms):
        return (1, _Role.ROUTE) if dynamic else (0, _Role.PAGE)
    if all(any(term in word for word in named) for term in terms):
        return 1, _Role.CODE  # another page: saved-searches/page.tsx for "search"
    return 2, _companion(head, naming, terms)


def _companion(head: str, naming: str | None, terms: tuple[str, ...]) -> int:
    """A route's layout, loading or error file, its SvelteKit load function, beside its page."""
    in_its_folder = naming is not None and all(_mentions(naming.lower(), term) for term in terms)
    return _Role.ROUTE if head.lower() in _COMPANIONS and in_its_folder else _Role.CODE


def _naming_folder(folders: Sequence[str]) -> tuple[str | None, bool]:
    """The folder that names a route file (``app/(shop)/search/[id]/page.tsx`` → search),
    passing over groups, slots and dynamic segments; and whether it passed a dynamic one."""
    dynamic = False
    for folder in reversed(folders):
        if folder.startswith("(") or folder.startswith("@"):
            continue  # a route group or a parallel slot: not part of the route's name
        if folder.startswith(("[", "$", ":")) or folder.startswith("_"):
            dynamic = dynamic or not folder.startswith("_")
            continue
        return folder, dynamic
    return None, dynamic


def _imports(rel: str, text: str, listed: Collection[str]) -> list[str]:
    """The listed files that ``rel`` imports (relative, aliased and package-absolute
    specifiers, resolved as bundlers and Python would, against the listing)."""
    folder = rel.rpartition("/")[0]
    python = rel.endswith(".py")
    found: dict[str, None] = {}
    head = text[:_IMPORT_SCAN_CHARS]
    specifiers = (
        [(a or b) for a, b in _PY_IMPORT.findall(head)] if python else _JS_IMPORT.findall(head)
    )
    for specifier in specifiers:
        for base in _import_bases(folder, specifier, python):
            target = _resolve(base, listed)
            if target is not None and target != rel:
                found[target] = None
                break
    return list(found)


def resolve_import(importer: str, specifier: str, listed: Collection[str]) -> str | None:
    """The listed file that ``importer`` means by ``specifier`` (``./OrderList``,
    ``@/lib/api``, ``..models``, ``app.views``), as ``_imports`` resolves it, or None (a
    package, or nothing listed there). For callers that read specifiers from syntax trees."""
    folder = importer.rpartition("/")[0]
    for base in _import_bases(folder, specifier, importer.endswith(".py")):
        target = _resolve(base, listed)
        if target is not None and target != importer:
            return target
    return None


def _import_bases(folder: str, specifier: str, python: bool) -> list[str]:
    """Where a specifier may point, without an extension, most likely first."""
    if python:
        dots = len(specifier) - len(specifier.lstrip("."))
        module = specifier[dots:].replace(".", "/")
        if dots:
            base = folder
            for _ in range(dots - 1):
                base = base.rpartition("/")[0]
            return [posixpath.join(base, module) if module else base]
        return _from_ancestors(folder, module)
    if specifier.startswith("."):
        joined = posixpath.normpath(posixpath.join(folder, specifier))
        return [] if joined.startswith("..") else [joined.removeprefix("./")]
    for alias, replacement in _ALIASES:
        if specifier.startswith(alias):
            return _from_ancestors(folder, replacement + specifier[len(alias) :])
    if "/" in specifier and not specifier.startswith("@"):
        return _from_ancestors(folder, specifier)  # a baseUrl import: components/search/Bar
    return []  # a package


def _from_ancestors(folder: str, rest: str) -> list[str]:
    """``rest`` below each folder above the importer (and its ``src``), nearest first: an alias
    is rooted at its package, wherever that is in a monorepo."""
    parts = folder.split("/") if folder else []
    bases = []
    for depth in range(len(parts), -1, -1):
        above = "/".join(parts[:depth])
        bases.append(posixpath.join(above, rest))
        bases.append(posixpath.join(above, "src", rest))
    return list(dict.fromkeys(bases))


def _resolve(base: str, listed: Collection[str]) -> str | None:
    if base in listed:
        return base
    for extension in _IMPORT_EXTENSIONS:
        for candidate in (f"{base}.{extension}", f"{base}/index.{extension}"):
            if candidate in listed:
                return candidate
    init = f"{base}/__init__.py"
    return init if init in listed else None


def _forms(term: str) -> tuple[str, ...]:
    """How a (stemmed) term is written: "category" also as "categories"."""
    if len(term) > 3 and term.endswith("y") and term[-2] not in "aeiou":
        return (term, term[:-1] + "ies")
    return (term,)


def _mentions(text: str, term: str) -> bool:
    return any(form in text for form in _forms(term))


def _name_score(rel: str, terms: Sequence[str]) -> int:
    lowered = rel.lower()
    if not any(_mentions(lowered, term) for term in terms):
        return 0  # most paths: decided cheaply
    *folders, filename = lowered.split("/")
    if folders and filename.split(".")[0].strip("+_") in GENERIC_FILE_NAMES:
        # collections/page.tsx is named by its folder (route groups and slots passed over)
        named = [f for f in folders if not f.startswith(("(", "@"))] or folders
        filename = f"{named[-1]}/{filename}"
        folders = folders[: len(folders) - 1 - folders[::-1].index(named[-1])]
    score = 0
    matched = 0
    for term in terms:
        if _mentions(filename, term):
            score, matched = score + 10, matched + 1
        elif any(_mentions(folder, term) for folder in folders):
            score, matched = score + 6, matched + 1
    if len(terms) > 1 and matched == len(terms):
        score += 5
    return score


def _score(about: _Path, text: str, terms: Sequence[str], *, imported: bool) -> FileMatch | None:
    lowered = text.lower()
    counts = [min(sum(lowered.count(form) for form in _forms(term)), 5) for term in terms]
    hits = sum(counts)
    if not about.name_score and not (all(counts) or imported):
        return None  # only some of the words: the common case, decided cheaply
    symbols = _symbols(text, terms)
    defines_term = any(term in symbol.lower() for symbol in symbols for term in terms)
    if not about.name_score and not imported and not defines_term and hits < 3:
        return None  # a passing mention is not evidence (being rendered by the page is)
    score = about.name_score + hits + (4 if defines_term else 0) + (3 if imported else 0)
    role = about.role
    if role == _Role.TEST:
        score -= 4  # tests support the code; the code itself is the better anchor
    elif imported and role == _Role.CODE:
        role = _Role.IMPORTED
    return FileMatch(
        path=about.rel,
        score=score,
        in_name=about.name_score > 0,
        content_hits=hits,
        symbols=symbols,
        role=_Role.NAMES[role],
    )


def _symbols(text: str, terms: Sequence[str], limit: int = 6) -> tuple[str, ...]:
    """Names defined in the file: those that mention a search term first, then top-level
    definitions, then nested ones (methods), each in order of appearance."""
    ranks: dict[str, tuple[bool, bool]] = {}
    for indent, name in _SYMBOL.findall(text[:_SYMBOL_SCAN_CHARS]):
        if len(name) > 2 and not name.startswith("_") and name != "default":
            mentions_term = any(term in name.lower() for term in terms)
            ranks.setdefault(name, (not mentions_term, bool(indent)))
    return tuple(sorted(ranks, key=ranks.__getitem__)[:limit])
