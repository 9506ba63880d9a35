"""The agent's repository tools: ``Glob``, ``Grep`` and ``Read``, read-only, confined to one root.

What may be seen and read is the ``Sandbox``'s answer (``sandbox``): ``Read`` refuses exactly
what ``Glob`` and ``Grep`` never list, binary files included. This module adds what the
model asks for and how it is answered:

- Arguments are pydantic models (``tool_arguments``): the JSON schema the model is shown and
  the validation of what it sends come from one place.
- Globs are matched by ``wcmatch``: ``*`` and ``?`` within one folder, ``**/`` any number of
  folders (also none), a final ``**`` everything below, ``[abc]`` / ``[!abc]`` classes,
  ``{a,b}`` alternatives; names that start with a dot match like any other.
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
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import regex
from wcmatch import glob as wcglob
from wcmatch._wcparse import PatternLimitException

from .profile import TOOL_NAMES, ToolName
from .sandbox import (
    BinaryFileError,
    Budget,
    FileTooLargeError,
    Location,
    MissingPathError,
    Sandbox,
    SandboxError,
    UnreadableFileError,
    skip_lines,
)
from .tool_arguments import (
    GlobArguments,
    GrepArguments,
    ReadArguments,
    ToolArgumentError,
    ToolArguments,
    parse_arguments,
)

__all__ = ["GREP_MAX_FILE_BYTES", "RepositoryTools", "ToolDefinition", "ToolResult"]

GREP_MAX_FILE_BYTES = 4 * 1024 * 1024  # larger files (bundles, logs, dumps) are skipped
MAX_LINE_CHARS = 10_000  # longer lines are not searched: minified code, data
MAX_SHOWN_LINE_CHARS = 500  # a matching line is cut to this in Grep's answer
MAX_GLOB_EXPANSIONS = 128  # patterns one glob's {a,b} alternatives may expand to
_GLOB_FLAGS = wcglob.GLOBSTAR | wcglob.BRACE | wcglob.DOTGLOB | wcglob.FORCEUNIX
_ABSOLUTE = re.compile(r"^(?:[/\\~]|[A-Za-z]:)")
_GLOB_MAGIC = re.compile(r"[*?\[{]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool as the model is told about it."""

    name: str  # "Glob" | "Grep" | "Read" (or the providers' submit_suggestions)
    description: str
    input_schema: dict[str, Any]  # JSON schema of the arguments


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What the model reads back; ``is_error`` marks a refusal or bad input."""

    text: str
    is_error: bool = False


class _ToolError(Exception):
    """Raised inside a tool; becomes ``ToolResult(message, is_error=True)``."""


_Handler = Callable[[Sandbox, Budget, Any], str]


class RepositoryTools:
    """``Glob``, ``Grep`` and ``Read`` over one repository, for one agent's allowed subset.

    Stateless between calls (each call has its own ``Sandbox``, so ``.gitignore`` files are
    re-read), so one instance may serve concurrent calls.
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
        self._root = Sandbox(root).root
        self._allowed: tuple[ToolName, ...] = tuple(n for n in TOOL_NAMES if n in allowed)
        self._max_read_bytes = max_read_bytes
        self._max_results = max_results
        self._max_files_scanned = max_files_scanned
        self._time_limit = time_limit
        self._tools: dict[str, tuple[type[ToolArguments], _Handler]] = {
            "Glob": (GlobArguments, self._glob),
            "Grep": (GrepArguments, self._grep),
            "Read": (ReadArguments, self._read),
        }

    @property
    def root(self) -> Path:
        return Path(self._root)

    def definitions(self) -> list[ToolDefinition]:
        """The allowed tools, in ``TOOL_NAMES`` order; fresh objects on every call."""
        return [
            ToolDefinition(name, self._description(name), self._tools[name][0].json_schema())
            for name in self._allowed
        ]

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
        if name not in self._tools:
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
        sandbox = Sandbox(self._root)
        budget = Budget.lasting(self._time_limit, self._max_files_scanned)
        model, handler = self._tools[name]
        try:
            return ToolResult(handler(sandbox, budget, parse_arguments(name, model, arguments)))
        except (_ToolError, ToolArgumentError, SandboxError) as refusal:
            return ToolResult(str(refusal), is_error=True)
        except OSError as failure:
            return ToolResult(f"Could not read: {failure.strerror or failure}", is_error=True)

    # ----------------------------------------------------------------------------- Glob

    def _glob(self, sandbox: Sandbox, budget: Budget, args: GlobArguments) -> str:
        pattern = args.pattern.removeprefix("./")
        matcher = _compile_glob(pattern)
        base = sandbox.resolve(args.path or ".")
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
        try:
            start = sandbox.resolve("/".join([base.rel, *prefix]).lstrip("/")) if prefix else base
        except MissingPathError:
            return f"No files match {pattern}."
        if not start.is_dir:
            return f"No files match {pattern}."
        offset = len(base.rel) + 1 if base.rel else 0
        matches = sorted(
            found.rel
            for found in sandbox.walk(start, budget, max_depth=max_depth)
            if matcher.match(found.rel[offset:]) and not sandbox.is_binary(found)
        )
        lines = matches[: self._max_results]
        if not matches:
            lines.append(f"No files match {pattern}.")
        if len(matches) > self._max_results:
            lines.append(
                f"[truncated: showing {self._max_results:,} of "
                f"{_at_least(budget)}{len(matches):,} matches; narrow the pattern or path]"
            )
        lines.extend(self._stop_markers(budget))
        return "\n".join(lines)

    # ----------------------------------------------------------------------------- Grep

    def _grep(self, sandbox: Sandbox, budget: Budget, args: GrepArguments) -> str:
        flags = regex.IGNORECASE if args.case_insensitive else 0
        try:
            compiled = regex.compile(args.pattern, flags)
        except regex.error as problem:
            raise _ToolError(f"Invalid regular expression {args.pattern!r}: {problem}") from None
        file_filter = _compile_glob(args.glob) if args.glob else None
        by_path = "/" in (args.glob or "")  # else the glob is matched against file names
        base = sandbox.resolve(args.path or ".")
        files = sandbox.walk(base, budget) if base.is_dir else iter([base])
        offset = len(base.rel) + 1 if base.rel and base.is_dir else 0

        shown: list[str] = []
        total = 0
        notes = {"long lines": 0, "large files": 0, "binary files": 0}
        for found in files:
            if file_filter is not None:
                subject = found.rel[offset:] if by_path else found.rel.rsplit("/", 1)[-1]
                if not file_filter.match(subject):
                    continue
            text = _grep_text(sandbox, found, notes)
            if text is None:
                continue
            for number, line in enumerate(text.split("\n"), start=1):
                if len(line) > MAX_LINE_CHARS:
                    notes["long lines"] += 1
                    continue
                remaining = budget.remaining()
                if remaining <= 0:
                    budget.stopped = "time"
                    break
                try:
                    hit = compiled.search(line, concurrent=True, timeout=remaining)
                except TimeoutError:
                    budget.stopped = "time"
                    break
                if hit is None:
                    continue
                total += 1
                if len(shown) < self._max_results:
                    shown.append(f"{found.rel}:{number}: {_shown(line.rstrip(chr(13)))}")
            if budget.stopped == "time":
                break

        lines = shown or [f"No matches for {args.pattern}."]
        if total > len(shown):
            lines.append(
                f"[truncated: showing {len(shown):,} of {_at_least(budget)}{total:,} matches; "
                "narrow the pattern, path or glob]"
            )
        lines.extend(self._stop_markers(budget))
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

    def _read(self, sandbox: Sandbox, budget: Budget, args: ReadArguments) -> str:
        first = args.offset or 1
        target = sandbox.resolve(args.path)
        if target.is_dir:
            raise _ToolError(f"{target.rel or '.'} is a directory; use Glob to list files.")
        with sandbox.open_text(target) as handle:
            number = skip_lines(handle, first - 1, budget.deadline)
            out: list[str] = []
            room = self._max_read_bytes
            while args.limit is None or number < first - 1 + args.limit:
                raw = handle.readline(room + 1)
                if not raw:
                    break
                number += 1
                if len(raw) > room:
                    if not out:  # one line longer than the whole budget: show its start
                        out.append(_numbered(number, raw[:room]))
                        number += 1
                    out.append(
                        f"[truncated at {self._max_read_bytes} bytes; use offset/limit to read "
                        f"more (next offset: {number})]"
                    )
                    break
                room -= len(raw)
                out.append(_numbered(number, raw))
        if not out:
            if number == 0:
                return f"[{target.rel} is empty]"
            return f"[{target.rel} has {number:,} lines; offset {first:,} is past the end]"
        return "\n".join(out)

    # ----------------------------------------------------------------------------- answers

    def _stop_markers(self, budget: Budget) -> list[str]:
        if budget.stopped == "time":
            return [
                f"[truncated: search stopped after {self._time_limit:g} s; "
                "narrow the pattern, path or glob]"
            ]
        if budget.stopped == "entries":
            return [
                f"[truncated: stopped after scanning {self._max_files_scanned:,} entries; "
                "narrow the pattern or path]"
            ]
        return []

    def _description(self, name: str) -> str:
        if name == "Glob":
            return (
                "Find files by name with a glob pattern, e.g. 'src/**/*.tsx' or '**/*.{py,md}'. "
                "'*' matches within one folder, '**/' any number of folders; a pattern "
                "without '**' only matches at its own depth. Returns file paths relative to "
                "the repository root, sorted alphabetically, at most "
                f"{self._max_results} of them. Ignored, vendored, binary and secret files "
                "are never listed."
            )
        if name == "Grep":
            return (
                "Search file contents with a Python regular expression, line by line. Returns "
                "'path:line: text' for each matching line (paths relative to the repository "
                f"root), at most {self._max_results} lines. Use 'glob' to search only some "
                "files (e.g. '*.ts' by file name, or 'src/**/*.ts' by path) and 'path' to "
                "search one directory or file."
            )
        return (
            "Read a text file, with line numbers like 'cat -n'. Give the path relative to the "
            f"repository root. At most {self._max_read_bytes:,} bytes are returned at once; "
            "use offset (first line, from 1) and limit (number of lines) to read a part."
        )


# --------------------------------------------------------------------------------- helpers


def _compile_glob(pattern: str) -> wcglob.WcMatcher[str]:
    """A glob over POSIX paths relative to the folder searched (see the module docstring)."""
    text = pattern.removeprefix("./")
    if _ABSOLUTE.match(text):
        raise _ToolError(f"Refused {pattern!r}: glob patterns are relative (e.g. src/**/*.tsx).")
    if ".." in text.split("/"):
        raise _ToolError(f"Refused {pattern!r}: '..' is not allowed in patterns.")
    try:
        return wcglob.compile(text, flags=_GLOB_FLAGS, limit=MAX_GLOB_EXPANSIONS)
    except PatternLimitException:
        raise _ToolError(
            f"Refused {pattern!r}: its {{...}} alternatives expand to more than "
            f"{MAX_GLOB_EXPANSIONS} patterns; use fewer."
        ) from None


def _grep_text(sandbox: Sandbox, found: Location, notes: dict[str, int]) -> str | None:
    """The file's text for Grep, or None (counted in ``notes``) when skipped."""
    try:
        return sandbox.read_text(found, GREP_MAX_FILE_BYTES)
    except FileTooLargeError:
        notes["large files"] += 1
    except BinaryFileError:
        notes["binary files"] += 1
    except (OSError, UnreadableFileError):
        pass  # not a regular file, or gone since the walk
    return None


def _numbered(number: int, raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").removesuffix("\n").removesuffix("\r")
    return f"{number:>6}\t{text}"


def _shown(line: str) -> str:
    return line if len(line) <= MAX_SHOWN_LINE_CHARS else line[:MAX_SHOWN_LINE_CHARS] + "…"


def _at_least(budget: Budget) -> str:
    return "at least " if budget.stopped else ""
