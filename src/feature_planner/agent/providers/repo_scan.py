"""Read a repository the way a careful person would, without an AI model.

Two questions are answered here, both with blocking file I/O (call them from a worker
thread): what do the project's own notes say (``read_project_docs``), and which files are
about the page or component the user named (``find_matching_files``).

What may be seen and read is the ``Sandbox``'s answer, the same as for the agent's tools
(secrets, ``.git``, ignored and vendored files, binaries, links out of the root: never).
Within that, this scan passes over what is rarely worth reading: hidden files and folders,
symbolic links (their targets are scanned under their own path), images, archives, lock
files and bundles (``NOISE_PATTERNS``) and files over ``MAX_FILE_BYTES``; and it stops after
a fixed number of entries and bytes so that a huge repository stays fast.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from fnmatch import translate
from pathlib import Path

from ..sandbox import Budget, Location, Sandbox, SandboxError

__all__ = [
    "FileMatch",
    "ProjectDocs",
    "ScanResult",
    "find_matching_files",
    "glob_pattern",
    "read_project_docs",
    "search_terms",
]

MAX_FILE_BYTES = 256 * 1024
MAX_FILES = 5_000  # candidate files considered
MAX_ENTRIES = 20_000  # directory entries looked at, files and directories alike
MAX_BYTES_READ = 8 * 1024 * 1024
MAX_DOC_BYTES = 64 * 1024
_SYMBOL_SCAN_CHARS = 64 * 1024

# Not worth reading: known binary formats, lock files and generated bundles.
NOISE_PATTERNS = (
    "*.png", "*.jpg", "*.jpeg", "*.gif", "*.ico", "*.webp", "*.pdf", "*.zip", "*.gz",
    "*.tgz", "*.woff", "*.woff2", "*.ttf", "*.eot", "*.mp3", "*.mp4", "*.so", "*.dylib",
    "*.dll", "*.exe", "*.pyc", "*.class", "*.jar", "*.sqlite", "*.db", "*.lock",
    "*-lock.json", "*.min.js", "*.min.css", "*.map",
)  # fmt: skip
# Files named by convention, whose folder says what they are (app routers, packages).
GENERIC_FILE_NAMES = frozenset(
    {"page", "index", "route", "layout", "view", "main", "mod", "init", "default", "server"}
)
_NOISE = re.compile("|".join(translate(p) for p in NOISE_PATTERNS))
README_NAMES = ("README.md", "README.rst", "README.txt", "README")

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
_MD_HEADING = re.compile(r"^#{1,2}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_RST_HEADING = re.compile(r"^([^\s=#-].*)\n[=#-]{3,}[ \t]*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class ProjectDocs:
    """What the repository's own notes say about it."""

    files: tuple[str, ...]  # relative paths actually read, in reading order
    name: str | None  # the first heading
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


@dataclass(frozen=True, slots=True)
class ScanResult:
    terms: tuple[str, ...]
    matches: tuple[FileMatch, ...]  # best first
    files_scanned: int
    truncated: bool  # a limit stopped the walk early


@dataclass(frozen=True, slots=True)
class _Candidate:
    file: Location
    size: int

    @property
    def rel(self) -> str:
        return self.file.rel


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
    """Read CLAUDE.md and the first README found at the repository's root."""
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
    return ProjectDocs(
        files=tuple(texts),
        name=_first_heading(readme_text) or _first_heading(claude_text),
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


def _first_heading(text: str) -> str | None:
    for pattern in (_MD_HEADING, _RST_HEADING):
        for found in pattern.finditer(text):
            heading = _clean_inline(found.group(1))
            if heading and "claude" not in heading.lower():
                return heading[:80]
    return None


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


def find_matching_files(
    root: Path,
    terms: Sequence[str],
    *,
    exclude: Collection[str] = (),
    limit: int = 5,
    max_files: int = MAX_FILES,
    max_bytes: int = MAX_BYTES_READ,
) -> ScanResult:
    """The files whose names (strongly) or contents (weakly) mention ``terms``, best first."""
    if not terms:
        return ScanResult(terms=(), matches=(), files_scanned=0, truncated=False)
    sandbox = Sandbox(root)
    candidates, truncated = _walk(sandbox, max_files)
    name_scores = {c.rel: _name_score(c.rel, terms) for c in candidates}
    # Files matched by name are read first so that the byte budget never hides them.
    ordered = sorted(candidates, key=lambda c: -name_scores[c.rel])
    matches: list[FileMatch] = []
    budget = max_bytes
    for candidate in ordered:
        if candidate.rel in exclude:
            continue
        if budget <= 0 and not name_scores[candidate.rel]:
            truncated = True
            break
        text = _read_text(sandbox, candidate)
        budget -= candidate.size
        if text is not None:
            match = _score(candidate.rel, text, terms, name_scores[candidate.rel])
            if match is not None:
                matches.append(match)
    matches.sort(key=lambda m: (-m.score, m.path))
    return ScanResult(
        terms=tuple(terms),
        matches=tuple(matches[:limit]),
        files_scanned=len(candidates),
        truncated=truncated,
    )


def _walk(sandbox: Sandbox, max_files: int) -> tuple[list[_Candidate], bool]:
    """Breadth first, sorted by name so that the result (and any cut-off) is deterministic."""
    budget = Budget(max_entries=MAX_ENTRIES)
    candidates: list[_Candidate] = []
    files = sandbox.walk(sandbox.resolve("."), budget, breadth_first=True, pass_over=_hidden)
    for found in files:
        if found.linked or _NOISE.match(found.rel.rsplit("/", 1)[-1].lower()):
            continue
        try:
            size = os.stat(found.real).st_size
        except OSError:
            continue
        if size > MAX_FILE_BYTES:
            continue
        if len(candidates) >= max_files:
            return candidates, True
        candidates.append(_Candidate(found, size))
    return candidates, budget.stopped is not None


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _read_text(sandbox: Sandbox, candidate: _Candidate) -> str | None:
    """The file's text, or None for binary or unreadable files."""
    try:
        return sandbox.read_text(candidate.file, MAX_FILE_BYTES)
    except (OSError, SandboxError):
        return None


def _name_score(rel: str, terms: Sequence[str]) -> int:
    *folders, filename = rel.lower().split("/")
    if folders and filename.split(".")[0].strip("+_") in GENERIC_FILE_NAMES:
        filename = f"{folders.pop()}/{filename}"  # collections/page.tsx is named by its folder
    score = 0
    matched = 0
    for term in terms:
        if term in filename:
            score, matched = score + 10, matched + 1
        elif any(term in folder for folder in folders):
            score, matched = score + 6, matched + 1
    if len(terms) > 1 and matched == len(terms):
        score += 5
    return score


def _score(rel: str, text: str, terms: Sequence[str], name_score: int) -> FileMatch | None:
    lowered = text.lower()
    counts = [min(lowered.count(term), 5) for term in terms]
    hits = sum(counts)
    if not name_score and not all(counts):
        return None  # only some of the words: the common case, decided cheaply
    symbols = _symbols(text, terms)
    defines_term = any(term in symbol.lower() for symbol in symbols for term in terms)
    if not name_score and not defines_term and hits < 3:
        return None  # a passing mention is not evidence
    score = name_score + hits + (4 if defines_term else 0)
    if re.search(r"(^|/)(tests?|__tests__|spec)/|[._-](test|spec)\.", rel.lower()):
        score -= 4  # tests support the code; the code itself is the better anchor
    return FileMatch(
        path=rel,
        score=score,
        in_name=name_score > 0,
        content_hits=hits,
        symbols=symbols,
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
