"""The map of a repository for one page or component: its own files, what each exports and
imports, its tests and the API routes it calls, built once per repository state and kept.

Why: an AI model told where the page's files are, and what is in them, starts by reading
them instead of spending its first tool calls looking for them; ``PageMap.summary`` is that
telling, for its first message. (In the spirit of Aider's repo map, narrowed to one page.)

What is in the map, in this order (``MappedFile.role``):

1. ``route``: the page's route files, as ``repo_scan.find_matching_files`` ranks them (the
   one ranking of the project: the route file named for the target, its companions and
   page components). Without any, the best match stands in (as a ``component``, an
   ``api`` module or ``related``) and its imports are followed the same way.
2. ``component``, ``imported``, ``api``: what the route files import, and what that imports,
   to ``MAX_IMPORT_DEPTH`` (a component is a .tsx/.jsx/.vue/.svelte file that exports a
   capitalised name; an API module is one in an ``api`` folder or named for it), then the
   API routes the mapped code requests: the URL of a ``fetch('/api/orders')`` (``axios``,
   ``useSWR``, ``useFetch``…; of a template, its fixed parts) matched against the listed
   route handlers (Next.js ``app/**/route.ts`` and ``pages/api/**``, SvelteKit
   ``+server.ts``) and against the route decorators (``@router.get``, ``@app.route``, with
   an ``APIRouter(prefix=…)`` or ``Blueprint(url_prefix=…)``) of the Python files whose path
   names a word of the URL.
3. ``related``: the scan's other matches.
4. ``test``: the tests of those files, by name, beside them (``X.test.tsx``, ``X.spec.ts``,
   ``test_x.py``, ``x_test.py`` in the file's folder or a ``__tests__``/``tests``/``test``
   folder under it) or, for a name that says what it tests, under any tests folder; and the
   scan's test matches.

Code is read as code: exports, imports and requested URLs come from syntax trees
(tree-sitter, ``facts.syntax_trees``: the grammars of the offline engine), never from
regular expressions over the text; import specifiers are resolved against the listing by
``repo_scan.resolve_import``. Everything is listed and read through the ``Sandbox`` (git's
list in a checkout, so ``.gitignore`` holds; never a secret, an ignored file or anything
outside the root; a path it refuses is not named either).

The cache (``page_map``): a map is kept per repository and target (``MAX_REPOSITORIES`` by
``MAX_TARGETS``, least recently used out) with the repository's state when it was built,
and served again while that state holds. The state is two parts:

- its shape, computed at every call: the modification times of its folders (a file added,
  removed or renamed changes its folder's), of its ``.gitignore`` files, and in a checkout
  git's ``HEAD``, index and ``info/exclude``; hidden and skipped folders (``SKIP_DIRS``) are
  passed over, as the listing passes over them;
- the files whose text the build read (the scan's and the map's own): their modification
  times and sizes, checked at a hit. A file nobody read cannot change the map.

At 100,000 files this costs ~0.09 s, against ~0.3 s for ``git status --porcelain`` and
~0.4 s to stat every listed file (bench/RESULTS.md, "Repository map"), and a build ~0.6-1 s.
Like git's index, a state whose newest time lies within ``RACY_NS`` of when it was taken
(2 s on a file system that keeps whole seconds) is not kept: a later change could carry the
same time. A map whose listing or reading was cut short by time is not kept either.

Blocking file I/O and subprocesses: call ``page_map`` from a worker thread, or await
``page_map_in_thread``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from tree_sitter import Language, Node, Query, QueryCursor

from .facts import language_of, syntax_trees
from .providers.repo_scan import (
    RepositoryListing,
    find_matching_files,
    list_repository,
    resolve_import,
    search_terms,
)
from .sandbox import SKIP_DIR_SUFFIXES, SKIP_DIRS, Location, Sandbox, SandboxError
from .syntax import node_text, walk

__all__ = [
    "ROLES",
    "MappedFile",
    "PageMap",
    "page_map",
    "page_map_in_thread",
]

ROLES = ("route", "component", "imported", "api", "related", "test")
MAX_IMPORT_DEPTH = 2  # the route's imports (1), and theirs (2)
MAX_CODE_FILES = 30  # routes, components, imported and API files in one map
MAX_RELATED = 6
MAX_TESTS = 20
MAX_ROUTE_CANDIDATES = 40  # Python files parsed for the route a URL names
MAX_FILE_BYTES = 256 * 1024
SCAN_MATCHES = 12
MAX_REPOSITORIES = 4
MAX_TARGETS = 8
RACY_NS = 20_000_000  # 20 ms: above Linux's coarse file clock
RACY_WHOLE_SECONDS_NS = 2_000_000_000  # file systems that keep whole seconds (FAT: two)
SUMMARY_MAX_NAMES = 6

_COMPONENT_SUFFIXES = (".tsx", ".jsx", ".vue", ".svelte")
_JS_ROUTE_SUFFIXES = (".ts", ".js", ".tsx", ".jsx", ".mjs")
_GENERIC_STEMS = frozenset(
    {"page", "index", "route", "layout", "views", "view", "__init__", "main", "+page",
     "+server", "+layout", "loading", "error", "routes", "app", "server"}
)  # fmt: skip
_TEST_FOLDERS = frozenset({"__tests__", "tests", "test", "spec", "e2e"})
# The name (or last member) of a call that requests a URL: fetch, axios, SWR, Nuxt, ky…
_REQUEST_CALLS = frozenset(
    {"fetch", "$fetch", "ofetch", "useFetch", "useLazyFetch", "useSWR", "useSWRImmutable",
     "useSWRInfinite", "axios", "get", "post", "put", "patch", "delete", "del", "head",
     "request", "ky"}
)  # fmt: skip
_PY_ROUTE_DECORATORS = frozenset(
    {"get", "post", "put", "patch", "delete", "head", "options", "route", "api_route",
     "websocket"}
)  # fmt: skip
_URL_PASSED_OVER = frozenset({"api", "v1", "v2", "v3", "rest", "graphql"})
_DYNAMIC = "[*]"  # a URL segment that a template fills at run time


@dataclass(frozen=True, slots=True)
class MappedFile:
    """One of the page's files, and what its syntax tree says."""

    path: str  # relative to the root, POSIX
    role: str  # one of ``ROLES``
    exports: tuple[str, ...] = ()  # exported names (Python: ``__all__``, else public top level)
    imports: tuple[str, ...] = ()  # the map's files it imports
    tests: tuple[str, ...] = ()  # its tests (also in the map, role "test")
    calls: tuple[str, ...] = ()  # the map's API routes whose URL it requests

    def line(self) -> str:
        """``app/orders/page.tsx (route; exports OrdersPage; imports …; tests: none)``."""
        parts = [self.role]
        if self.exports:
            parts.append("exports " + _names(self.exports))
        if self.imports:
            parts.append("imports " + _names(self.imports))
        if self.calls:
            parts.append("calls " + _names(self.calls))
        if self.role != "test":
            parts.append("tests: " + (_names(self.tests) if self.tests else "none"))
        return f"{_clean(self.path)} ({'; '.join(parts)})"


@dataclass(frozen=True, slots=True)
class PageMap:
    """The page's own files, best first, and how many files the repository lists."""

    target: str
    files: tuple[MappedFile, ...]
    listed: int  # files listed in the repository (git's list, or the sandbox's walk)
    complete: bool = True  # False when the listing was cut short by time

    def summary(self, max_chars: int = 2500) -> str:
        """Plain text for an AI model's first message: one line per file, no file contents,
        at most ``max_chars`` characters; says so when nothing was found."""
        subject = _clean(self.target.strip())[:80] or "the page"
        cut = "" if self.complete else "; the listing was cut short"
        if not self.files:
            text = (
                f"Repository map for “{subject}”: no file of the {self.listed:,} listed looks "
                f"like it{cut}. Search the repository for it."
            )
            return text[:max_chars]
        header = f"Repository map for “{subject}” ({self.listed:,} files listed{cut}):"
        attached = {test for mapped in self.files for test in mapped.tests}
        lines = [
            "- " + mapped.line()
            for mapped in self.files
            if not (mapped.role == "test" and mapped.path in attached)
        ]
        shown = [header]
        used = len(header)
        for index, line in enumerate(lines):
            left = len(lines) - index - 1
            tail = len(f"\n(and {left} more files)") if left else 0
            if used + 1 + len(line) + tail > max_chars:
                shown.append(f"(and {len(lines) - index} more files)")
                break
            shown.append(line)
            used += 1 + len(line)
        return "\n".join(shown)[:max_chars]


def page_map(root: Path | str, target: str) -> PageMap:
    """The map of ``root`` for the page or component ``target``: kept from an earlier call
    while the repository's state holds, else built (blocking; call from a worker thread)."""
    real = os.path.realpath(root)
    terms = search_terms(target)
    if not os.path.isdir(real):
        return PageMap(target, (), 0, complete=False)  # nothing to map, nothing to keep
    started = time.time_ns()
    shape = _shape(real)
    kept = _CACHE.get(real, terms, shape)
    if kept is not None:
        return kept if kept.target == target else replace(kept, target=target)
    built, read, keep = _build(real, target, terms)
    if keep:
        _CACHE.put(real, terms, shape, _stats(real, read), built, started)
    return built


async def page_map_in_thread(root: Path | str, target: str) -> PageMap:
    """``page_map`` in a worker thread, for the event loop."""
    return await asyncio.to_thread(page_map, root, target)


# -- the cache ------------------------------------------------------------------------------

_Stat = tuple[int, int]  # modification time (ns), size; (-1, -1): gone


@dataclass(frozen=True, slots=True)
class _Shape:
    """A repository's folders and listing rules, condensed: equal while no file is added,
    removed or renamed and no ignore rule or commit changes."""

    digest: str
    checkout: bool
    newest_ns: int  # the newest modification time seen (for the racy check)
    whole_seconds: bool  # every time seen was a whole second


@dataclass(frozen=True, slots=True)
class _Entry:
    shape: str
    read: dict[str, _Stat]  # what the build read, as it was
    built: PageMap


class _MapCache:
    """Few repositories by few targets, least recently used out; safe across threads."""

    def __init__(self, repositories: int, targets: int) -> None:
        self._repositories = repositories
        self._targets = targets
        self._entries: OrderedDict[str, OrderedDict[tuple[str, ...], _Entry]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, root: str, terms: tuple[str, ...], shape: _Shape) -> PageMap | None:
        with self._lock:
            targets = self._entries.get(root)
            entry = targets.get(terms) if targets is not None else None
            if entry is None or targets is None:
                return None
            self._entries.move_to_end(root)
            targets.move_to_end(terms)
        if entry.shape != shape.digest or _stats(root, entry.read) != entry.read:
            return None
        return entry.built

    def put(
        self,
        root: str,
        terms: tuple[str, ...],
        shape: _Shape,
        read: dict[str, _Stat],
        built: PageMap,
        started_ns: int,
    ) -> None:
        newest = max([shape.newest_ns, *(mtime for mtime, _ in read.values())])
        whole = shape.whole_seconds and all(m % 1_000_000_000 == 0 for m, _ in read.values())
        if newest > started_ns - (RACY_WHOLE_SECONDS_NS if whole else RACY_NS):
            return  # a change in the same tick of the file clock could go unseen
        with self._lock:
            targets = self._entries.setdefault(root, OrderedDict())
            targets[terms] = _Entry(shape.digest, read, built)
            targets.move_to_end(terms)
            self._entries.move_to_end(root)
            while len(targets) > self._targets:
                targets.popitem(last=False)
            while len(self._entries) > self._repositories:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_CACHE = _MapCache(MAX_REPOSITORIES, MAX_TARGETS)


def _stats(root: str, paths: Iterable[str]) -> dict[str, _Stat]:
    """Modification time and size of each file (through symbolic links: their target's)."""
    found: dict[str, _Stat] = {}
    for rel in paths:
        try:
            status = os.stat(os.path.join(root, rel))
        except OSError:
            found[rel] = (-1, -1)
        else:
            found[rel] = (status.st_mtime_ns, status.st_size)
    return found


def _shape(root: str) -> _Shape:
    """The repository's shape (see the module's docstring): a git call and a walk of its
    folders' entries, without a stat of each file."""
    digest = hashlib.sha256()
    times: list[int] = []
    git = _git_state(root)
    if git is not None:
        head, git_dir = git
        digest.update(f"git {head}\n".encode())
        for rel in ("index", "info/exclude"):
            mtime, size = _stats(git_dir, [rel])[rel]
            digest.update(f"{rel} {mtime} {size}\n".encode())
            times.append(mtime)
    pending = [""]
    while pending:
        rel = pending.pop()
        folder = os.path.join(root, rel) if rel else root
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
            mtime = os.stat(folder).st_mtime_ns
        except OSError:
            digest.update(f"gone {rel}\n".encode(errors="surrogateescape"))
            continue
        times.append(mtime)
        digest.update(f"d {rel} {mtime}\n".encode(errors="surrogateescape"))
        for entry in entries:
            name = entry.name
            if name == ".gitignore":
                mtime, size = _stats(folder, [name])[name]
                times.append(mtime)
                digest.update(f"i {rel} {mtime} {size}\n".encode(errors="surrogateescape"))
            elif (
                not name.startswith(".")
                and name not in SKIP_DIRS
                and not name.endswith(SKIP_DIR_SUFFIXES)
                and entry.is_dir(follow_symlinks=False)
            ):
                pending.append(f"{rel}/{name}" if rel else name)
    return _Shape(
        digest=digest.hexdigest(),
        checkout=git is not None,
        newest_ns=max(times, default=0),
        whole_seconds=all(mtime % 1_000_000_000 == 0 for mtime in times),
    )


def _git_state(root: str) -> tuple[str, str] | None:
    """``HEAD``'s commit (or "HEAD" before the first) and the git folder, when ``root`` is the
    top of a git checkout (as ``repo_scan`` decides whether git lists it); else None."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", LC_ALL="C.UTF-8")
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "--absolute-git-dir", "HEAD"],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = os.fsdecode(done.stdout).splitlines()
    if len(lines) < 3 or os.path.realpath(lines[0]) != root:
        return None
    return lines[2], lines[1]


# -- building -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Code:
    """What one file's syntax trees say."""

    exports: list[str] = field(default_factory=list)
    specifiers: list[str] = field(default_factory=list)  # imports, in order, most likely first
    urls: list[tuple[str, ...]] = field(default_factory=list)  # requested, by segment
    routes: list[tuple[str, ...]] = field(default_factory=list)  # Python routes it declares


class _Builder:
    """One build: the listing, the sandbox, and every file read (the cache checks them)."""

    def __init__(self, root: str, listing: RepositoryListing) -> None:
        self.root = root
        self.sandbox = Sandbox(root)
        self.listing = listing
        self.listed = set(listing.paths)
        self.read: set[str] = set()
        self.codes: dict[str, _Code | None] = {}

    def admitted(self, rel: str) -> Location | None:
        """The file as the sandbox lets it be seen, or None (secret, ignored, a link…)."""
        admitted = self.listing.admitted
        if rel not in admitted:
            admitted[rel] = self.sandbox.admit(rel)
        found = admitted[rel]
        return None if found is None or found.linked else found

    def code(self, rel: str) -> _Code | None:
        """The file's exports, imports and requests, read once; None if it cannot be read."""
        if rel in self.codes:
            return self.codes[rel]
        found = self.admitted(rel)
        code = None
        if found is not None and language_of(rel) is not None:
            self.read.add(rel)
            try:
                text = self.sandbox.read_text(found, MAX_FILE_BYTES)
            except (OSError, SandboxError):
                text = None
            if text is not None:
                code = _read_code(rel, text)
        self.codes[rel] = code
        return code

    def imports_of(self, rel: str) -> list[str]:
        code = self.code(rel)
        if code is None:
            return []
        found: dict[str, None] = {}
        for specifier in code.specifiers:
            for candidate in specifier.split("\n"):  # Python: the name's module, else its own
                target = resolve_import(rel, candidate, self.listed)
                if target is not None:
                    if target != rel:
                        found[target] = None
                    break
        return list(found)


def _build(root: str, target: str, terms: tuple[str, ...]) -> tuple[PageMap, set[str], bool]:
    """The map, the files it depends on, and whether it may be kept (nothing cut short)."""
    listing = list_repository(Path(root))
    if not terms:
        return PageMap(target, (), len(listing.paths), listing.complete), set(), False
    scan = find_matching_files(Path(root), terms, limit=SCAN_MATCHES, listing=listing)
    builder = _Builder(root, listing)
    matches = [m for m in scan.matches if builder.admitted(m.path) is not None]
    roles: dict[str, str] = {}
    for role_names in (("page",), ("route",)):
        for match in matches:
            if match.role in role_names:
                roles.setdefault(match.path, "route")
    if not roles:  # no route file: the best match stands in, by what it is
        best = next((m for m in matches if m.role != "test"), None)
        if best is not None:
            role = _imported_role(best.path, builder.code(best.path))
            roles[best.path] = "related" if role == "imported" else role

    # the route files' imports, and theirs, breadth first
    level = list(roles)
    for _ in range(MAX_IMPORT_DEPTH):
        following: list[str] = []
        for rel in level:
            for imported in builder.imports_of(rel):
                if imported in roles or len(roles) >= MAX_CODE_FILES:
                    continue
                if builder.admitted(imported) is None or _is_test(imported):
                    continue
                roles[imported] = _imported_role(imported, builder.code(imported))
                following.append(imported)
        level = following

    # the API routes the mapped code requests
    calls: dict[str, list[str]] = {}
    routes = _RouteIndex(builder)
    for rel in list(roles):
        code = builder.code(rel)
        for url in code.urls if code is not None else ():
            handler = routes.find(url)
            if handler is None or handler == rel:
                continue
            calls.setdefault(rel, [])
            if handler not in calls[rel]:
                calls[rel].append(handler)
            if handler not in roles and len(roles) < MAX_CODE_FILES:
                roles[handler] = "api"

    related = [m.path for m in matches if m.role != "test" and m.path not in roles]
    for rel in related[:MAX_RELATED]:
        roles[rel] = "related"

    # tests, by name, and the scan's test matches
    tests_of = _TestIndex(listing.paths)
    tests: dict[str, list[str]] = {}
    test_files: dict[str, None] = {}
    for rel in roles:
        found = [t for t in tests_of.find(rel) if builder.admitted(t) is not None]
        tests[rel] = found[:4]
        test_files.update(dict.fromkeys(found[:4]))
    for match in matches:
        if match.role == "test" and match.path not in roles:
            test_files[match.path] = None
    test_paths = [rel for rel in test_files if rel not in roles][:MAX_TESTS]

    mapped = [*roles, *test_paths]
    in_map = set(mapped)
    files = []
    for rel in mapped:
        role = roles.get(rel, "test")
        code = builder.code(rel)
        files.append(
            MappedFile(
                path=rel,
                role=role,
                exports=tuple(code.exports) if code is not None and role != "test" else (),
                imports=tuple(t for t in builder.imports_of(rel) if t in in_map),
                tests=tuple(t for t in tests.get(rel, ()) if t in in_map),
                calls=tuple(t for t in calls.get(rel, ()) if t in in_map),
            )
        )
    built = PageMap(target, tuple(files), len(listing.paths), listing.complete)
    keep = listing.complete and scan.stopped in (None, "reads", "bytes")
    return built, builder.read | set(scan.read), keep


def _imported_role(rel: str, code: _Code | None) -> str:
    *folders, name = rel.lower().split("/")
    stem = name.split(".")[0]
    if "api" in folders or "apis" in folders or stem in ("api", "apis") or stem.endswith("api"):
        return "api"
    if rel.endswith(_COMPONENT_SUFFIXES[2:]):
        return "component"
    exports = code.exports if code is not None else []
    if rel.endswith(_COMPONENT_SUFFIXES) and any(n[:1].isupper() for n in exports):
        return "component"
    return "imported"


# -- tests beside the files -----------------------------------------------------------------


def _is_test(rel: str) -> bool:
    *folders, name = rel.split("/")
    lowered = name.lower()
    if ".test." in lowered or ".spec." in lowered:
        return True
    if lowered.endswith(".py") and (lowered.startswith("test_") or lowered.endswith("_test.py")):
        return True
    return "__tests__" in folders and language_of(rel) is not None


def _tested_name(rel: str) -> str:
    """``OrderList.test.tsx`` → orderlist; ``test_orders.py`` → orders."""
    name = rel.rpartition("/")[2].lower()
    stem = name.split(".")[0]
    if name.endswith(".py"):
        stem = stem.removeprefix("test_").removesuffix("_test")
    return stem


class _TestIndex:
    """The listing's test files by the name they test."""

    def __init__(self, paths: Iterable[str]) -> None:
        self.by_name: dict[str, list[str]] = {}
        for rel in paths:
            lowered = rel.lower()
            if ("test" in lowered or "spec" in lowered) and _is_test(rel):
                self.by_name.setdefault(_tested_name(rel), []).append(rel)

    def find(self, rel: str) -> list[str]:
        """Tests of ``rel``: named for it, in its folder or a tests folder below it; or, for
        a name that says what it is (not ``page``, ``index``…), in any tests folder. For a
        generic name, the folder's name counts as the file's (``orders.test.tsx``)."""
        folder, _, name = rel.rpartition("/")
        stem = name.lower().split(".")[0]
        names = [(stem, stem not in _GENERIC_STEMS)]
        if stem in _GENERIC_STEMS and folder:
            names.append((folder.rpartition("/")[2].lower(), True))
        found: list[str] = []
        for wanted, anywhere in names:
            for test in self.by_name.get(wanted, ()):
                test_folder = test.rpartition("/")[0]
                beside = test_folder == folder or (
                    test_folder.rpartition("/")[0] == folder
                    and test_folder.rpartition("/")[2] in _TEST_FOLDERS
                )
                in_tests = any(part in _TEST_FOLDERS for part in test_folder.split("/"))
                if (beside or (anywhere and in_tests)) and test != rel and test not in found:
                    found.append(test)
        return sorted(found, key=lambda t: (t.rpartition("/")[0] != folder, t.count("/"), t))


# -- API routes -----------------------------------------------------------------------------


class _RouteIndex:
    """The listed route handlers, by URL pattern, and Python routes found on demand."""

    def __init__(self, builder: _Builder) -> None:
        self.builder = builder
        self.handlers: list[tuple[tuple[str, ...], str]] = []
        self.python: list[str] = []
        self.indexed = False

    def _index(self) -> None:
        """Sort the listing once, on the first URL (most pages request none)."""
        self.indexed = True
        for rel in self.builder.listing.paths:
            pattern = _handler_pattern(rel)
            if pattern is not None:
                self.handlers.append((pattern, rel))
            elif rel.endswith(".py") and not _is_test(rel):
                self.python.append(rel)

    def find(self, url: tuple[str, ...]) -> str | None:
        """The handler of ``url`` (segments), the most literal fit first; None if unknown."""
        if not self.indexed:
            self._index()
        fits = [
            (-_literal_fit(url, pattern), rel)
            for pattern, rel in self.handlers
            if _fits(url, pattern) and self.builder.admitted(rel) is not None
        ]
        if fits:
            return min(fits)[1]
        return self._python_route(url)

    def _python_route(self, url: tuple[str, ...]) -> str | None:
        words = [w.lower() for w in url if w != _DYNAMIC and w.lower() not in _URL_PASSED_OVER]
        if not words:
            return None
        candidates = sorted(
            (rel for rel in self.python if any(word in rel.lower() for word in words)),
            key=lambda rel: (rel.count("/"), rel),
        )[:MAX_ROUTE_CANDIDATES]
        best: tuple[int, str] | None = None
        for rel in candidates:
            code = self.builder.code(rel)
            for route in code.routes if code is not None else ():
                for skipped in range(len(url)):  # a router may be mounted under a prefix
                    if _fits(url[skipped:], route) and any(not _is_dynamic(p) for p in route):
                        rank = (skipped, rel)
                        if best is None or rank < best:
                            best = rank
                        break
        return best[1] if best is not None else None


def _handler_pattern(rel: str) -> tuple[str, ...] | None:
    """The URL segments a listed file answers (``[id]`` where any one fits), or None."""
    *folders, name = rel.split("/")
    stem, _, suffix = name.rpartition(".")
    if f".{suffix}" not in _JS_ROUTE_SUFFIXES:
        return None
    if stem == "route" and "app" in folders:
        below = folders[len(folders) - 1 - folders[::-1].index("app") + 1 :]
    elif stem == "+server" and "routes" in folders:
        below = folders[len(folders) - 1 - folders[::-1].index("routes") + 1 :]
    elif "pages" in folders and "api" in folders[folders.index("pages") :]:
        below = folders[folders.index("pages") + 1 :] + ([] if stem == "index" else [stem])
    else:
        return None
    segments = [part for part in below if not part.startswith(("(", "@"))]
    if any(part.startswith("_") for part in segments):
        return None  # a private folder: not routed
    return tuple(segments)


def _is_dynamic(segment: str) -> bool:
    return segment.startswith("[")


def _fits(url: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether ``url``'s segments fit ``pattern``'s (``[x]`` one, ``[...x]`` one or more,
    ``[[...x]]`` any number)."""
    if not pattern:
        return not url
    head = pattern[0]
    if head.startswith("[[..."):
        return True
    if head.startswith("[..."):
        return bool(url)
    if not url:
        return False
    if _is_dynamic(head):
        return _fits(url[1:], pattern[1:])
    return url[0] == head and _fits(url[1:], pattern[1:])


def _literal_fit(url: tuple[str, ...], pattern: tuple[str, ...]) -> int:
    return sum(1 for u, p in zip(url, pattern, strict=False) if u == p)


def _url_segments(url: str) -> tuple[str, ...] | None:
    """``/api/orders/[*]?page=2`` → ("api", "orders", "[*]"); None for what is not a path
    of this site (``https://…``, ``//cdn…``, relative)."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/") or path.startswith("//"):
        return None
    segments = [part for part in path.split("/") if part]
    return tuple(_DYNAMIC if "\x00" in part else part for part in segments)


def _route_segments(path: str) -> tuple[str, ...]:
    """A Python route's path: ``/orders/{order_id}``, ``/<int:id>`` → dynamic segments."""
    return tuple("[x]" if part.startswith(("{", "<")) else part for part in path.split("/") if part)


# -- reading code ---------------------------------------------------------------------------


def _read_code(rel: str, text: str) -> _Code:
    code = _Code()
    language = language_of(rel)
    for tree in syntax_trees(rel, text):
        if language == "python":
            _read_python(tree.root_node, code)
        else:
            calls = _calls(tree.root_node, tree.language)
            _read_script(tree.root_node, calls, code, component=language == "vue")
    if language == "vue":
        stem = rel.rpartition("/")[2].split(".")[0]
        code.exports.insert(0, stem)  # imported by its file's name
    code.exports = list(dict.fromkeys(code.exports))
    return code


def _string(node: Node | None) -> str | None:
    """The value of a string literal, or of a template with ``\\x00`` for each ``${…}``."""
    if node is None:
        return None
    if node.type == "string":
        return "".join(node_text(c) for c in node.named_children if c.type == "string_fragment")
    if node.type == "template_string":
        return "".join(
            "\x00" if child.type == "template_substitution" else node_text(child)
            for child in node.named_children
        )
    return None


_JS_DECLARATIONS = frozenset(
    {"function_declaration", "generator_function_declaration", "class_declaration",
     "abstract_class_declaration", "interface_declaration", "type_alias_declaration",
     "enum_declaration", "function_signature"}
)  # fmt: skip


def _read_script(root: Node, calls: list[Node], code: _Code, *, component: bool) -> None:
    """Exports (ES modules and CommonJS), import specifiers and requested URLs of a script."""
    constants: dict[str, str] = {}  # const API = '/api/orders'
    for statement in root.named_children:
        if statement.type == "import_statement":
            _add_specifier(code, _string(statement.child_by_field_name("source")))
        elif statement.type == "export_statement":
            _add_specifier(code, _string(statement.child_by_field_name("source")))
            code.exports.extend(_js_exports(statement, component=component))
        elif statement.type == "expression_statement" and statement.named_children:
            code.exports.extend(_commonjs_exports(statement.named_children[0]))
        if statement.type == "lexical_declaration":
            for declarator in statement.named_children:
                value = _string(declarator.child_by_field_name("value"))
                name = declarator.child_by_field_name("name")
                if value is not None and name is not None and name.type == "identifier":
                    constants[node_text(name)] = value
    for node in calls:
        function = node.child_by_field_name("function")
        arguments = node.child_by_field_name("arguments")
        first = arguments.named_children[0] if arguments and arguments.named_children else None
        if function is None or first is None:
            continue
        callee = node_text(function)
        if function.type == "import" or callee == "require":
            _add_specifier(code, _string(first))
            continue
        if callee.rpartition(".")[2] not in _REQUEST_CALLS:
            continue
        url = _string(first)
        if url is None and first.type == "identifier":
            url = constants.get(node_text(first))
        segments = _url_segments(url) if url is not None else None
        if segments and segments not in code.urls:
            code.urls.append(segments)


def _calls(root: Node, language: Language) -> list[Node]:
    """Every call of a script, in order: found by a tree-sitter query (in C, not a walk in
    Python over every node)."""
    captured = QueryCursor(_call_query(language)).captures(root)
    return sorted(captured.get("call", []), key=lambda node: node.start_byte)


@cache
def _call_query(language: Language) -> Query:
    return Query(language, "(call_expression) @call")


def _add_specifier(code: _Code, specifier: str | None) -> None:
    if specifier and "\x00" not in specifier and specifier not in code.specifiers:
        code.specifiers.append(specifier)


def _js_exports(statement: Node, *, component: bool) -> list[str]:
    names: list[str] = []
    declaration = statement.child_by_field_name("declaration")
    if declaration is not None:
        if declaration.type in _JS_DECLARATIONS:
            names.append(node_text(declaration.child_by_field_name("name")) or "default")
        elif declaration.type in ("lexical_declaration", "variable_declaration"):
            if component:
                return []  # a Svelte component's props (``export let``), not exports
            for declarator in declaration.named_children:
                names.extend(_bound_names(declarator.child_by_field_name("name")))
        return [name for name in names if name]
    value = statement.child_by_field_name("value")
    if value is not None:  # export default <expression>
        name = value.child_by_field_name("name") if value.type != "identifier" else value
        return [node_text(name) or "default"] if not component else []
    for child in statement.named_children:
        if child.type == "export_clause":
            for specifier in child.named_children:
                alias = specifier.child_by_field_name("alias")
                names.append(node_text(alias or specifier.child_by_field_name("name")))
        elif child.type == "identifier":  # export = Name
            names.append(node_text(child))
    return [name for name in names if name]


def _bound_names(pattern: Node | None) -> list[str]:
    """The names a declaration binds: ``A``, ``{ a, b: c }``, ``[x, y]``."""
    if pattern is None:
        return []
    if pattern.type == "identifier":
        return [node_text(pattern)]
    return [
        node_text(node)
        for node in walk(pattern)
        if node.type in ("shorthand_property_identifier_pattern", "identifier")
        and (node.parent is None or node.parent.type != "pair_pattern" or node.prev_sibling)
    ]


def _commonjs_exports(expression: Node) -> list[str]:
    """``module.exports = { a, b }`` / ``= Name``, ``exports.a = …``, ``module.exports.a``."""
    if expression.type != "assignment_expression":
        return []
    left = node_text(expression.child_by_field_name("left"))
    right = expression.child_by_field_name("right")
    if left == "module.exports" and right is not None:
        if right.type == "identifier":
            return [node_text(right)]
        if right.type == "object":
            return [
                node_text(child.child_by_field_name("key") or child)
                for child in right.named_children
                if child.type in ("shorthand_property_identifier", "pair", "method_definition")
            ]
        return ["default"]
    for prefix in ("module.exports.", "exports."):
        if left.startswith(prefix) and "." not in left[len(prefix) :]:
            return [left[len(prefix) :]]
    return []


def _read_python(root: Node, code: _Code) -> None:
    """Exports (``__all__``, else public top-level definitions and names), import
    specifiers (``from .a import b`` → ``.a.b`` else ``.a``) and declared routes."""
    public: list[str] = []
    declared: list[str] | None = None
    prefix = ""
    for statement in root.named_children:
        definition = statement
        if statement.type == "decorated_definition":
            definition = statement.child_by_field_name("definition") or statement
        if definition.type in ("function_definition", "class_definition"):
            public.append(node_text(definition.child_by_field_name("name")))
        elif statement.type == "expression_statement" and statement.named_children:
            assignment = statement.named_children[0]
            if assignment.type == "assignment":
                left = assignment.child_by_field_name("left")
                right = assignment.child_by_field_name("right")
                if node_text(left) == "__all__" and right is not None:
                    declared = [
                        value
                        for item in right.named_children
                        if (value := _py_string(item)) is not None
                    ]
                elif left is not None and left.type == "identifier":
                    public.append(node_text(left))
        elif statement.type == "import_statement":
            for name in statement.children_by_field_name("name"):
                _add_specifier(code, node_text(_unaliased(name)))
        elif statement.type == "import_from_statement":
            origin = node_text(statement.child_by_field_name("module_name"))
            for name in statement.children_by_field_name("name"):
                joined = (
                    origin + ("" if origin.endswith(".") else ".") + node_text(_unaliased(name))
                )
                _add_specifier(code, f"{joined}\n{origin}")
    for statement in root.named_children:  # router = APIRouter(prefix="/orders")
        expression = statement.named_children[0] if statement.named_children else None
        if statement.type != "expression_statement" or expression is None:
            continue
        made = expression.child_by_field_name("right") if expression.type == "assignment" else None
        if made is None or made.type != "call":
            continue
        function = node_text(made.child_by_field_name("function")).rpartition(".")[2]
        if function in ("APIRouter", "Blueprint") and not prefix:
            for argument in _arguments(made):
                if argument.type == "keyword_argument" and node_text(
                    argument.child_by_field_name("name")
                ) in ("prefix", "url_prefix"):
                    prefix = _py_string(argument.child_by_field_name("value")) or ""
    for statement in root.named_children:
        if statement.type != "decorated_definition":
            continue
        for decorator in statement.named_children:
            call = decorator.named_children[0] if decorator.named_children else None
            if decorator.type != "decorator" or call is None or call.type != "call":
                continue
            method = call.child_by_field_name("function")
            if method is None or method.type != "attribute":
                continue
            if node_text(method.child_by_field_name("attribute")) not in _PY_ROUTE_DECORATORS:
                continue
            arguments = [a for a in _arguments(call) if a.type != "keyword_argument"]
            path = _py_string(arguments[0]) if arguments else None
            if path is not None:
                code.routes.append(_route_segments(prefix.rstrip("/") + "/" + path.lstrip("/")))
    names = declared if declared is not None else public
    code.exports.extend(name for name in names if name and not name.startswith("_"))


def _unaliased(name: Node) -> Node | None:
    """``a.b`` of ``import a.b as c``."""
    return name.child_by_field_name("name") if name.type == "aliased_import" else name


def _arguments(call: Node) -> list[Node]:
    arguments = call.child_by_field_name("arguments")
    return list(arguments.named_children) if arguments is not None else []


def _py_string(node: Node | None) -> str | None:
    """The value of a plain Python string literal (not an f-string, not concatenated)."""
    if node is None or node.type != "string":
        return None
    if any(child.type == "interpolation" for child in node.named_children):
        return None
    return "".join(node_text(c) for c in node.named_children if c.type == "string_content")


# -- the summary's words --------------------------------------------------------------------


def _clean(text: str) -> str:
    """A name from the repository, on one line (a file name may hold any character)."""
    return "".join("?" if ord(char) < 32 or char in "\x7f\u2028\u2029" else char for char in text)[
        :200
    ]


def _names(names: tuple[str, ...]) -> str:
    shown = ", ".join(_clean(name) for name in names[:SUMMARY_MAX_NAMES])
    more = len(names) - SUMMARY_MAX_NAMES
    return shown + (f" +{more} more" if more > 0 else "")
