"""The agent's repository tools: ``Glob``, ``Grep`` and ``Read``, read-only, confined to one root.

The model chooses the arguments, and the repository's own files may try to talk it into
anything, so every rule is enforced here rather than asked of the model:

- Paths are relative to the root. Absolute paths, ``~`` and ``..`` are refused outright
  (before any look at the disk); a path is then resolved (``realpath``) and refused when a
  symbolic link takes it out of the root. Walks never descend into symlinked directories (no
  loops, no duplicates: their files are listed under their real path) and list a symlinked
  file only when its target is inside the root and visible itself.
- Invisible, by name at any depth of the path (lexical and resolved): ``.git`` internals and
  secret-looking files (``SECRET_PATTERNS``). Also invisible: ``SKIP_DIRS`` and whatever the
  ``.gitignore`` files (the root one and nested ones) ignore. ``Read`` refuses exactly what
  ``Glob`` and ``Grep`` never list, so the model cannot read what it cannot find.
- Binary files (a NUL byte in the first 8 KiB) are skipped by ``Glob`` and ``Grep`` and
  refused by ``Read``; other file types (FIFOs, devices) are never opened.
- Every answer is bounded: result counts, bytes, directory entries scanned and time, each
  with a ``[truncated: ...]`` line that tells the model how to narrow its request.
- ``Grep`` uses the ``regex`` package rather than ``re``: the standard library holds the GIL
  for the whole of a match, so one catastrophic pattern (``(a|aa)+$``, ``.*.*.*x``) would
  freeze every stream of the process with no way to stop it. ``regex`` takes a ``timeout``
  and releases the GIL (``concurrent=True``); its default syntax is that of ``re``.

Tool errors (bad input, refused path, unknown tool) are ``ToolResult(is_error=True)`` with a
message for the model, never an exception: the model reads it and tries something else.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
import re
import stat
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import regex
from pathspec import GitIgnoreSpec

from .profile import TOOL_NAMES, ToolName

__all__ = [
    "GREP_MAX_FILE_BYTES",
    "SECRET_PATTERNS",
    "SKIP_DIRS",
    "RepositoryTools",
    "ToolDefinition",
    "ToolResult",
]

SKIP_DIRS = frozenset({"node_modules", ".venv", "venv", "__pycache__"})
# Files that look like secrets: never listed or read, by the agent's tools or the offline
# engine (``repo_scan``). Matched against each lowercased path part.
SECRET_PATTERNS = (
    ".env",
    ".env.*",
    "*.env",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.keystore",
    "id_rsa*",
    "id_ed25519*",
    "id_ecdsa*",
    "*credentials*",
    ".npmrc",
    ".pypirc",
)
_SECRET = re.compile("|".join(fnmatch.translate(p) for p in SECRET_PATTERNS))
BINARY_SNIFF_BYTES = 8 * 1024
GREP_MAX_FILE_BYTES = 4 * 1024 * 1024  # larger files (bundles, logs, dumps) are skipped
MAX_LINE_CHARS = 10_000  # longer lines are not searched: minified code, data
MAX_SHOWN_LINE_CHARS = 500  # a matching line is cut to this in Grep's answer
MAX_PATTERN_CHARS = 1_000
MAX_GITIGNORE_BYTES = 256 * 1024
MAX_DEPTH = 64
_ABSOLUTE = re.compile(r"^(?:[/\\~]|[A-Za-z]:)")
_GLOB_MAGIC = re.compile(r"[*?\[{]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool as the model is told about it."""

    name: str  # "Glob" | "Grep" | "Read"
    description: str
    input_schema: dict[str, Any]  # JSON schema of the arguments


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What the model reads back; ``is_error`` marks a refusal or bad input."""

    text: str
    is_error: bool = False


class _ToolError(Exception):
    """Raised inside a tool; becomes ``ToolResult(message, is_error=True)``."""


class _NotFoundError(_ToolError):
    """The path does not exist (inside the root)."""


@dataclass(slots=True)
class _Budget:
    """Work one call may do; ``stopped`` says which limit ended it early."""

    deadline: float
    max_entries: int
    entries: int = 0
    stopped: str | None = None

    def take_entry(self) -> bool:
        if self.stopped is not None:
            return False
        self.entries += 1
        if self.entries > self.max_entries:
            self.stopped = "entries"
        elif time.monotonic() > self.deadline:
            self.stopped = "time"
        return self.stopped is None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


@dataclass(frozen=True, slots=True)
class _File:
    rel: str  # as listed: relative to the root, POSIX separators, through any symlink
    real: str  # absolute path to open, symlinks resolved


@dataclass(frozen=True, slots=True)
class _Target:
    rel: str  # normalised, relative to the root; "" is the root itself
    real: str
    is_dir: bool


@dataclass(slots=True)
class _Scan:
    """Per-call state: the budget and the ``.gitignore`` files read so far."""

    root: str
    budget: _Budget
    specs: dict[str, GitIgnoreSpec | None] = field(default_factory=dict)


class RepositoryTools:
    """``Glob``, ``Grep`` and ``Read`` over one repository, for one agent's allowed subset.

    Stateless between calls (``.gitignore`` files are re-read on each call), so one instance
    may serve concurrent calls.
    """

    def __init__(
        self,
        root: Path,
        allowed: Sequence[ToolName] = TOOL_NAMES,
        *,
        max_read_bytes: int = 100_000,
        max_results: int = 200,
        max_files_scanned: int = 20_000,
        time_limit: float = 2.0,
    ) -> None:
        unknown = [name for name in allowed if name not in TOOL_NAMES]
        if unknown:
            raise ValueError(f"unknown tool names: {unknown}; known: {list(TOOL_NAMES)}")
        if min(max_read_bytes, max_results, max_files_scanned) < 1 or time_limit <= 0:
            raise ValueError("tool limits must be positive")
        self._root = os.path.realpath(root)
        self._allowed: tuple[ToolName, ...] = tuple(n for n in TOOL_NAMES if n in allowed)
        self._max_read_bytes = max_read_bytes
        self._max_results = max_results
        self._max_files_scanned = max_files_scanned
        self._time_limit = time_limit
        self._handlers: dict[str, Callable[[_Scan, Mapping[str, Any]], str]] = {
            "Glob": self._glob,
            "Grep": self._grep,
            "Read": self._read,
        }

    @property
    def root(self) -> Path:
        return Path(self._root)

    def definitions(self) -> list[ToolDefinition]:
        """The allowed tools, in ``TOOL_NAMES`` order; fresh objects on every call."""
        return [_definition(name, self) for name in self._allowed]

    def describe(self, name: str, arguments: Mapping[str, Any]) -> str:
        """A short line for the ``activity`` event: the path read, or the pattern searched."""
        args = arguments if isinstance(arguments, Mapping) else {}
        detail = ""
        if name == "Read":
            detail = str(args.get("path", ""))
        elif name in ("Glob", "Grep"):
            detail = str(args.get("pattern", ""))
            if args.get("path"):
                detail += f" in {args['path']}"
        return _CONTROL.sub(" ", detail).strip()[:200]

    async def call(self, name: str, arguments: Mapping[str, Any]) -> ToolResult:
        """Run one tool in a worker thread; problems come back as ``is_error`` results."""
        if name not in self._handlers:
            return ToolResult(f"Unknown tool {name!r}; available: {self._available()}.", True)
        if name not in self._allowed:
            return ToolResult(
                f"Tool {name!r} is not available to this agent; available: {self._available()}.",
                True,
            )
        if not isinstance(arguments, Mapping):
            return ToolResult("Tool arguments must be a JSON object.", True)
        return await asyncio.to_thread(self._run, name, dict(arguments))

    def _available(self) -> str:
        return ", ".join(self._allowed) or "none"

    def _run(self, name: str, arguments: Mapping[str, Any]) -> ToolResult:
        scan = _Scan(
            root=self._root,
            budget=_Budget(time.monotonic() + self._time_limit, self._max_files_scanned),
        )
        try:
            _check_keys(name, arguments)
            return ToolResult(self._handlers[name](scan, arguments))
        except _ToolError as refusal:
            return ToolResult(str(refusal), is_error=True)
        except OSError as failure:
            return ToolResult(f"Could not read: {failure.strerror or failure}", is_error=True)

    # ----------------------------------------------------------------------------- Glob

    def _glob(self, scan: _Scan, args: Mapping[str, Any]) -> str:
        pattern = _pattern_argument(args, "pattern").removeprefix("./")
        matcher = _compile_glob(pattern)
        base = self._resolve(scan, _optional_str(args, "path") or ".")
        if not base.is_dir:
            raise _ToolError(f"{base.rel} is a file; path must be a directory.")
        segments = pattern.split("/")
        # Walk only below the pattern's literal leading directories, and no deeper than it
        # can match when it has no "**".
        prefix: list[str] = []
        for segment in segments[:-1]:
            if _GLOB_MAGIC.search(segment) or "\\" in segment:
                break
            prefix.append(segment)
        max_depth = None if "**" in pattern else len(segments) - len(prefix)
        start = _join(base.rel, *prefix)
        try:
            start_target = self._resolve(scan, start or ".") if prefix else base
        except _NotFoundError:
            return f"No files match {pattern}."
        if not start_target.is_dir:
            return f"No files match {pattern}."
        offset = len(base.rel) + 1 if base.rel else 0
        matches = sorted(
            found.rel
            for found in self._walk(scan, start_target, max_depth)
            if matcher.fullmatch(found.rel[offset:]) and not _is_binary_file(found.real)
        )
        lines = matches[: self._max_results]
        if not matches:
            lines.append(f"No files match {pattern}.")
        if len(matches) > self._max_results:
            lines.append(
                f"[truncated: showing {self._max_results:,} of "
                f"{_at_least(scan)}{len(matches):,} matches; narrow the pattern or path]"
            )
        lines.extend(self._stop_markers(scan))
        return "\n".join(lines)

    # ----------------------------------------------------------------------------- Grep

    def _grep(self, scan: _Scan, args: Mapping[str, Any]) -> str:
        pattern = _pattern_argument(args, "pattern")
        insensitive = args.get("case_insensitive", False)
        if not isinstance(insensitive, bool):
            raise _ToolError("case_insensitive must be true or false.")
        try:
            compiled = regex.compile(pattern, regex.IGNORECASE if insensitive else 0)
        except regex.error as problem:
            raise _ToolError(f"Invalid regular expression {pattern!r}: {problem}") from None
        name_glob = _optional_str(args, "glob")
        file_filter = _compile_glob(name_glob) if name_glob else None
        by_path = "/" in (name_glob or "")  # else the glob is matched against file names
        base = self._resolve(scan, _optional_str(args, "path") or ".")

        files = self._walk(scan, base, None) if base.is_dir else iter([_File(base.rel, base.real)])
        offset = len(base.rel) + 1 if base.rel and base.is_dir else 0

        shown: list[str] = []
        total = 0
        notes = {"long lines": 0, "large files": 0, "binary files": 0}
        for found in files:
            if file_filter is not None:
                subject = found.rel[offset:] if by_path else found.rel.rsplit("/", 1)[-1]
                if not file_filter.fullmatch(subject):
                    continue
            text = _read_text(found.real, GREP_MAX_FILE_BYTES, notes)
            if text is None:
                continue
            for number, line in enumerate(text.split("\n"), start=1):
                if len(line) > MAX_LINE_CHARS:
                    notes["long lines"] += 1
                    continue
                remaining = scan.budget.remaining()
                if remaining <= 0:
                    scan.budget.stopped = "time"
                    break
                try:
                    hit = compiled.search(line, concurrent=True, timeout=remaining)
                except TimeoutError:
                    scan.budget.stopped = "time"
                    break
                if hit is None:
                    continue
                total += 1
                if len(shown) < self._max_results:
                    shown.append(f"{found.rel}:{number}: {_shown(line.rstrip(chr(13)))}")
            if scan.budget.stopped == "time":
                break

        lines = shown or [f"No matches for {pattern}."]
        if total > len(shown):
            lines.append(
                f"[truncated: showing {len(shown):,} of {_at_least(scan)}{total:,} matches; "
                "narrow the pattern, path or glob]"
            )
        lines.extend(self._stop_markers(scan))
        if notes["long lines"]:
            lines.append(
                f"[skipped {notes['long lines']:,} lines longer than {MAX_LINE_CHARS:,} characters]"
            )
        if notes["large files"]:
            lines.append(
                f"[skipped {notes['large files']:,} files larger than "
                f"{GREP_MAX_FILE_BYTES:,} bytes]"
            )
        if notes["binary files"] and not base.is_dir:
            lines.append("[skipped: binary file]")
        return "\n".join(lines)

    # ----------------------------------------------------------------------------- Read

    def _read(self, scan: _Scan, args: Mapping[str, Any]) -> str:
        raw_path = args.get("path")
        if not isinstance(raw_path, str) or not raw_path.strip():
            raise _ToolError("path is required: a file path relative to the repository root.")
        first = _optional_positive_int(args, "offset") or 1
        limit = _optional_positive_int(args, "limit")
        target = self._resolve(scan, raw_path)
        if target.is_dir:
            raise _ToolError(f"{target.rel or '.'} is a directory; use Glob to list files.")
        with _open_regular(target.real) as handle:
            if b"\x00" in handle.read(BINARY_SNIFF_BYTES):
                raise _ToolError(f"{target.rel} is a binary file; only text files can be read.")
            handle.seek(0)
            number = _skip_lines(handle, first - 1, scan.budget)
            out: list[str] = []
            budget = self._max_read_bytes
            while limit is None or number < first - 1 + limit:
                raw = handle.readline(budget + 1)
                if not raw:
                    break
                number += 1
                if len(raw) > budget:
                    if not out:  # one line longer than the whole budget: show its start
                        out.append(_numbered(number, raw[:budget]))
                        number += 1
                    out.append(
                        f"[truncated at {self._max_read_bytes} bytes; use offset/limit to read "
                        f"more (next offset: {number})]"
                    )
                    break
                budget -= len(raw)
                out.append(_numbered(number, raw))
        if not out:
            if number == 0:
                return f"[{target.rel} is empty]"
            return f"[{target.rel} has {number:,} lines; offset {first:,} is past the end]"
        return "\n".join(out)

    # ----------------------------------------------------------------------------- paths

    def _resolve(self, scan: _Scan, raw: str) -> _Target:
        """A path the model gave, checked and resolved; refusals raise ``_ToolError``."""
        if "\x00" in raw:
            raise _ToolError("Paths cannot contain NUL characters.")
        text = raw.strip().replace("\\", "/")
        if _ABSOLUTE.match(text):
            raise _ToolError(
                f"Refused {raw!r}: absolute paths are not allowed; "
                "give a path relative to the repository root."
            )
        parts = [part for part in text.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise _ToolError(f"Refused {raw!r}: '..' is not allowed; paths stay inside the root.")
        rel = "/".join(parts)
        _check_names(rel)
        real = os.path.realpath(os.path.join(self._root, *parts))
        real_rel = _inside(self._root, real)
        if real_rel is None:
            raise _ToolError(f"Refused {rel}: it is a symbolic link that leads outside the root.")
        _check_names(real_rel)
        try:
            is_dir = stat.S_ISDIR(os.stat(real).st_mode)
        except FileNotFoundError:
            raise _NotFoundError(f"No such file or directory: {rel}") from None
        for path in dict.fromkeys((rel, real_rel)):
            if _is_ignored_path(scan, path, is_dir):
                raise _ToolError(f"Refused {rel}: it is ignored (.gitignore or a vendored dir).")
        return _Target(rel, real, is_dir)

    def _walk(self, scan: _Scan, start: _Target, max_depth: int | None) -> Iterator[_File]:
        """Visible files below ``start``, depth first, each directory in name order."""

        def visit(rel_dir: str, real_dir: str, depth: int) -> Iterator[_File]:
            try:
                with os.scandir(real_dir) as listing:
                    entries = sorted(listing, key=lambda entry: entry.name)
            except OSError:
                return
            for entry in entries:
                if not scan.budget.take_entry():
                    return
                rel = _join(rel_dir, entry.name)
                kind, real = self._classify(scan, entry, rel)
                if kind == "file":
                    yield _File(rel, real)
                elif kind == "dir" and depth + 1 < min(max_depth or MAX_DEPTH, MAX_DEPTH):
                    yield from visit(rel, real, depth + 1)

        yield from visit(start.rel, start.real, 0)

    def _classify(self, scan: _Scan, entry: os.DirEntry[str], rel: str) -> tuple[str, str]:
        """``("file" | "dir", real path)`` for a visible entry, ``("", "")`` otherwise."""
        name = entry.name.lower()
        if name == ".git" or _SECRET.match(name):
            return "", ""
        try:
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
                real_rel = _inside(self._root, real)
                if real_rel is None or not _names_visible(real_rel):
                    return "", ""
                if not stat.S_ISREG(os.stat(real).st_mode):
                    return "", ""  # symlinked directories are listed under their real path
                if _is_ignored(scan, rel, False) or _is_ignored_path(scan, real_rel, False):
                    return "", ""
                return "file", real
            if entry.is_dir(follow_symlinks=False):
                if entry.name in SKIP_DIRS or _is_ignored(scan, rel, True):
                    return "", ""
                return "dir", entry.path
            if entry.is_file(follow_symlinks=False) and not _is_ignored(scan, rel, False):
                return "file", entry.path
        except OSError:
            pass
        return "", ""

    def _stop_markers(self, scan: _Scan) -> list[str]:
        if scan.budget.stopped == "time":
            return [
                f"[truncated: search stopped after {self._time_limit:g} s; "
                "narrow the pattern, path or glob]"
            ]
        if scan.budget.stopped == "entries":
            return [
                f"[truncated: stopped after scanning {self._max_files_scanned:,} entries; "
                "narrow the pattern or path]"
            ]
        return []


# --------------------------------------------------------------------------------- helpers


def _join(*parts: str) -> str:
    return "/".join(part for part in parts if part)


def _inside(root: str, real: str) -> str | None:
    """``real`` relative to ``root`` in POSIX form, or None when it is outside."""
    if real == root:
        return ""
    if not real.startswith(root.rstrip(os.sep) + os.sep):
        return None
    return Path(os.path.relpath(real, root)).as_posix()


def _names_visible(rel: str) -> bool:
    return all(
        part.lower() != ".git" and not _SECRET.match(part.lower())
        for part in rel.split("/")
        if part
    )


def _check_names(rel: str) -> None:
    for part in rel.split("/"):
        lower = part.lower()
        if lower == ".git":
            raise _ToolError(f"Refused {rel}: .git internals are off limits.")
        if lower and _SECRET.match(lower):
            raise _ToolError(
                f"Refused {rel}: it looks like a secret (keys, credentials, .env files) "
                "and is never read."
            )


def _is_ignored_path(scan: _Scan, rel: str, is_dir: bool) -> bool:
    """Whether ``rel`` or any directory above it is skipped or ignored."""
    parts = rel.split("/") if rel else []
    for depth in range(1, len(parts) + 1):
        last = depth == len(parts)
        part_is_dir = is_dir or not last
        if part_is_dir and parts[depth - 1] in SKIP_DIRS:
            return True
        if _is_ignored(scan, "/".join(parts[:depth]), part_is_dir):
            return True
    return False


def _is_ignored(scan: _Scan, rel: str, is_dir: bool) -> bool:
    """Whether ``.gitignore`` files ignore ``rel`` itself (its parents are checked apart).

    Each ``.gitignore`` from the root down to ``rel``'s directory is consulted, and the
    deepest one with a matching pattern decides, as git does.
    """
    parts = rel.split("/")
    ignored = False
    for depth in range(len(parts)):
        spec = _gitignore(scan, "/".join(parts[:depth]))
        if spec is None:
            continue
        result = spec.check_file("/".join(parts[depth:]) + ("/" if is_dir else ""))
        if result.include is not None:
            ignored = result.include
    return ignored


def _gitignore(scan: _Scan, rel_dir: str) -> GitIgnoreSpec | None:
    if rel_dir not in scan.specs:
        spec = None
        path = os.path.join(scan.root, rel_dir, ".gitignore")
        real = os.path.realpath(path)
        if _inside(scan.root, real) is not None:
            try:
                with _open_regular(real) as handle:
                    data = handle.read(MAX_GITIGNORE_BYTES)
                spec = GitIgnoreSpec.from_lines(data.decode("utf-8", "replace").splitlines())
            except (OSError, _ToolError, ValueError):
                spec = None
        scan.specs[rel_dir] = spec
    return scan.specs[rel_dir]


@contextlib.contextmanager
def _open_regular(real: str) -> Iterator[IO[bytes]]:
    """Open a regular file for reading, never through a final symlink, never a FIFO."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    descriptor = os.open(real, flags)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise _ToolError("Only regular files can be read.")
        handle = os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    with handle:
        yield handle


def _skip_lines(handle: IO[bytes], count: int, budget: _Budget) -> int:
    """Skip ``count`` lines in bounded chunks (a line may be huge); return how many."""
    skipped = 0
    partial = False
    while skipped < count:
        chunk = handle.readline(1 << 20)
        if not chunk:
            return skipped + partial
        partial = not chunk.endswith(b"\n")
        skipped += not partial
        if time.monotonic() > budget.deadline:
            raise _ToolError("Reading up to that offset took too long; the file is too large.")
    return skipped


def _is_binary_file(real: str) -> bool:
    try:
        with _open_regular(real) as handle:
            return b"\x00" in handle.read(BINARY_SNIFF_BYTES)
    except (OSError, _ToolError):
        return True


def _read_text(real: str, max_bytes: int, notes: dict[str, int]) -> str | None:
    """The file's text for Grep, or None (counted in ``notes``) when skipped."""
    try:
        with _open_regular(real) as handle:
            data: bytes = handle.read(max_bytes + 1)
    except (OSError, _ToolError):
        return None
    if len(data) > max_bytes:
        notes["large files"] += 1
        return None
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        notes["binary files"] += 1
        return None
    return data.decode("utf-8", errors="replace")


def _numbered(number: int, raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").removesuffix("\n").removesuffix("\r")
    return f"{number:>6}\t{text}"


def _shown(line: str) -> str:
    return line if len(line) <= MAX_SHOWN_LINE_CHARS else line[:MAX_SHOWN_LINE_CHARS] + "…"


def _at_least(scan: _Scan) -> str:
    return "at least " if scan.budget.stopped else ""


# --------------------------------------------------------------------------------- arguments

_PROPERTIES: dict[str, set[str]] = {
    "Glob": {"pattern", "path"},
    "Grep": {"pattern", "path", "glob", "case_insensitive"},
    "Read": {"path", "offset", "limit"},
}


def _check_keys(name: str, arguments: Mapping[str, Any]) -> None:
    unknown = sorted(str(key) for key in arguments if key not in _PROPERTIES[name])
    if unknown:
        expected = ", ".join(sorted(_PROPERTIES[name]))
        raise _ToolError(f"Unknown argument(s) for {name}: {', '.join(unknown)}; use {expected}.")


def _pattern_argument(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise _ToolError(f"{key} is required and must be a non-empty string.")
    if len(value) > MAX_PATTERN_CHARS:
        raise _ToolError(f"{key} is longer than {MAX_PATTERN_CHARS:,} characters.")
    return value


def _optional_str(args: Mapping[str, Any], key: str) -> str | None:
    value = args.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _ToolError(f"{key} must be a string.")
    if len(value) > MAX_PATTERN_CHARS:
        raise _ToolError(f"{key} is longer than {MAX_PATTERN_CHARS:,} characters.")
    return value


def _optional_positive_int(args: Mapping[str, Any], key: str) -> int | None:
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _ToolError(f"{key} must be a whole number of at least 1.")
    return value


def _compile_glob(pattern: str) -> re.Pattern[str]:
    """A glob as a regular expression over POSIX paths.

    ``*`` and ``?`` stay within one path segment, ``**/`` spans directories (also none),
    a final ``**`` matches everything below, ``[abc]`` / ``[!abc]`` are classes and
    ``{a,b}`` alternatives.
    """
    text = pattern.removeprefix("./")
    if _ABSOLUTE.match(text):
        raise _ToolError(f"Refused {pattern!r}: glob patterns are relative (e.g. src/**/*.tsx).")
    if ".." in text.split("/"):
        raise _ToolError(f"Refused {pattern!r}: '..' is not allowed in patterns.")
    return re.compile(_glob_regex(text), re.DOTALL)


def _glob_regex(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        at_segment_start = i == 0 or pattern[i - 1] == "/"
        if pattern.startswith("**", i) and at_segment_start and pattern[i + 2 : i + 3] in ("/", ""):
            if i + 2 == n:
                out.append(".*")
                i += 2
            else:
                out.append("(?:[^/]*/)*")
                i += 3
        elif char == "*":
            while i < n and pattern[i] == "*":
                i += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[" and (end := _class_end(pattern, i)) > 0:
            body = pattern[i + 1 : end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            escaped = body.replace("\\", "\\\\").replace("[", "\\[")
            out.append(f"[{'^/' if negate else ''}{escaped}]")
            i = end + 1
        elif char == "{" and (end := _brace_end(pattern, i)) > 0:
            options = _split_top_level(pattern[i + 1 : end])
            out.append("(?:" + "|".join(_glob_regex(option) for option in options) + ")")
            i = end + 1
        elif char == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _class_end(pattern: str, start: int) -> int:
    i = start + 1
    if i < len(pattern) and pattern[i] in "!^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    end = pattern.find("]", i)
    return end if end > 0 and "/" not in pattern[start:end] else -1


def _brace_end(pattern: str, start: int) -> int:
    depth = 0
    for i in range(start, len(pattern)):
        if pattern[i] == "{":
            depth += 1
        elif pattern[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _split_top_level(body: str) -> list[str]:
    options: list[str] = []
    current: list[str] = []
    depth = 0
    for char in body:
        if char == "," and depth == 0:
            options.append("".join(current))
            current = []
            continue
        depth += (char == "{") - (char == "}")
        current.append(char)
    options.append("".join(current))
    return options


# --------------------------------------------------------------------------------- definitions


def _definition(name: ToolName, tools: RepositoryTools) -> ToolDefinition:
    path_property = {
        "type": "string",
        "description": "A directory relative to the repository root (default: the root).",
    }
    if name == "Glob":
        return ToolDefinition(
            name="Glob",
            description=(
                "Find files by name with a glob pattern, e.g. 'src/**/*.tsx' or '**/*.{py,md}'. "
                "'*' matches within one folder, '**/' any number of folders; a pattern "
                "without '**' only matches at its own depth. Returns file paths relative to "
                "the repository root, sorted alphabetically, at most "
                f"{tools._max_results} of them. Ignored, vendored, binary and secret files "
                "are never listed."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "The glob pattern."},
                    "path": path_property,
                },
                "required": ["pattern"],
                "additionalProperties": False,
            },
        )
    if name == "Grep":
        return ToolDefinition(
            name="Grep",
            description=(
                "Search file contents with a Python regular expression, line by line. Returns "
                "'path:line: text' for each matching line (paths relative to the repository "
                f"root), at most {tools._max_results} lines. Use 'glob' to search only some "
                "files (e.g. '*.ts' by file name, or 'src/**/*.ts' by path) and 'path' to "
                "search one directory or file."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "A Python regular expression."},
                    "path": {
                        "type": "string",
                        "description": "A directory or file relative to the repository root "
                        "(default: the root).",
                    },
                    "glob": {
                        "type": "string",
                        "description": "Only files whose name (or path, if it has a '/') "
                        "matches this glob.",
                    },
                    "case_insensitive": {
                        "type": "boolean",
                        "description": "Ignore case (default false).",
                    },
                },
                "required": ["pattern"],
                "additionalProperties": False,
            },
        )
    return ToolDefinition(
        name="Read",
        description=(
            "Read a text file, with line numbers like 'cat -n'. Give the path relative to the "
            f"repository root. At most {tools._max_read_bytes:,} bytes are returned at once; "
            "use offset (first line, from 1) and limit (number of lines) to read a part."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "The file, relative to the repository root.",
                },
                "offset": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "The first line to read, from 1 (default 1).",
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "How many lines to read (default: up to the size limit).",
                },
            },
            "required": ["path"],
            "additionalProperties": False,
        },
    )
