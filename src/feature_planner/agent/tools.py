"""The agent's repository tools: ``Glob``, ``Grep`` and ``Read``, read-only, confined to one root.

What may be seen and read is the ``Sandbox``'s answer (``sandbox``): ``Read`` refuses exactly
what ``Glob`` and ``Grep`` never list, binary files included. This module adds what the
model asks for and how it is answered:

- Searching is done by ``git grep`` in a git checkout (``git_search``), else by ripgrep
  (``rg_search``), else by a walk in Python; Glob lists with ``git ls-files`` or the walk.
  What git or rg report is admitted by the ``Sandbox`` path by path, as the walk's files are.
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
import functools
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex
from wcmatch import glob as wcglob
from wcmatch._wcparse import PatternLimitException

from . import git_search, rg_search
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
MAX_COUNTED_LINES = 10_000  # git grep's lines read at most (at least 10 x max_results)
_GLOB_FLAGS = wcglob.GLOBSTAR | wcglob.BRACE | wcglob.DOTGLOB | wcglob.FORCEUNIX
_ABSOLUTE = re.compile(r"^(?:[/\\~]|[A-Za-z]:)")
_GLOB_MAGIC = re.compile(r"[*?\[{]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# Constructs after which one search of a file's whole text (MULTILINE) could miss a match that
# a search of one of its lines finds: anchors to the whole string, lookarounds, atomic groups,
# possessive quantifiers, conditionals, recursion. Conservative: escaped or in a class too.
_LINE_ONLY = re.compile(r"\\[AZzG]|\(\?(?:[=!>|(&R0-9+-]|<[=!]|P>)|[*+?}]\+")


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """A tool as the model is told about it."""

    name: str  # "Glob" | "Grep" | "Read" (or the providers' submit_suggestion, finish)
    description: str
    input_schema: dict[str, Any]  # JSON schema of the arguments


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What the model reads back; ``is_error`` marks a refusal or bad input."""

    text: str
    is_error: bool = False


class _ToolError(Exception):
    """Raised inside a tool; becomes ``ToolResult(message, is_error=True)``."""


_Handler = Callable[[Sandbox, Budget, Any], Awaitable[str]]


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
        max_files_scanned: int = 2_000_000,
        time_limit: float = 2.0,
        use_git: bool = True,
        use_rg: bool = True,
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
        self._use_git = use_git
        self._use_rg = use_rg
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
        """Run one tool (file work in worker threads, git in subprocesses); problems come back
        as ``is_error`` results."""
        if name not in self._tools:
            return ToolResult(f"Unknown tool {name!r}; available: {self._available()}.", True)
        if name not in self._allowed:
            return ToolResult(
                f"Tool {name!r} is not available to this agent; available: {self._available()}.",
                True,
            )
        if not isinstance(arguments, Mapping):
            return ToolResult("Tool arguments must be a JSON object.", True)
        return await self._run(name, dict(arguments))

    def _available(self) -> str:
        return ", ".join(self._allowed) or "none"

    async def _run(self, name: str, arguments: Mapping[str, Any]) -> ToolResult:
        sandbox = Sandbox(self._root)
        budget = Budget.lasting(self._time_limit, self._max_files_scanned)
        model, handler = self._tools[name]
        try:
            args = parse_arguments(name, model, arguments)
            return ToolResult(await handler(sandbox, budget, args))
        except (_ToolError, ToolArgumentError, SandboxError) as refusal:
            return ToolResult(str(refusal), is_error=True)
        except OSError as failure:
            return ToolResult(f"Could not read: {failure.strerror or failure}", is_error=True)

    async def _git_checkout(self) -> bool:
        return self._use_git and await git_search.is_checkout(self._root)

    def _rg(self) -> str | None:
        return rg_search.executable() if self._use_rg else None

    # ----------------------------------------------------------------------------- Glob

    async def _glob(self, sandbox: Sandbox, budget: Budget, args: GlobArguments) -> str:
        plan = await asyncio.to_thread(_GlobPlan.make, sandbox, args)
        if plan.start is None:
            return f"No files match {plan.pattern}."
        if await self._git_checkout():
            under = git_search.real_rel(self._root, plan.start.real)
            listing = await git_search.list_files(self._root, under, budget.deadline)
            if listing.failed is None:
                return await asyncio.to_thread(
                    self._glob_listed, sandbox, budget, plan, listing, under
                )
        return await asyncio.to_thread(self._glob_walked, sandbox, budget, plan)

    def _glob_walked(self, sandbox: Sandbox, budget: Budget, plan: _GlobPlan) -> str:
        assert plan.start is not None
        matches = sorted(
            found.rel
            for found in sandbox.walk(plan.start, budget, max_depth=plan.max_depth)
            if plan.matcher.match(found.rel[plan.offset :]) and not sandbox.is_binary(found)
        )
        stop = None
        if budget.stopped == "entries":
            stop = f"stopped after scanning {self._max_files_scanned:,} entries"
        elif budget.stopped == "time":
            stop = f"walked {budget.entries:,} entries in {self._time_limit:g} s, not all"
        return self._glob_answer(plan.pattern, matches, stop)

    def _glob_listed(
        self,
        sandbox: Sandbox,
        budget: Budget,
        plan: _GlobPlan,
        listing: git_search.GitListing,
        under: str,
    ) -> str:
        assert plan.start is not None
        shown_prefix = plan.start.rel
        candidates = sorted(
            (shown, path)
            for path in listing.paths
            if path.endswith(plan.tail)
            and plan.matcher.match((shown := _shown_path(path, under, shown_prefix))[plan.offset :])
        )
        matches: list[str] = []
        checked = 0
        for shown, path in candidates:
            if time.monotonic() > budget.deadline:
                budget.stopped = "time"
                break
            found = sandbox.admit(path)
            checked += 1
            if found is not None and not sandbox.is_binary(found):
                matches.append(shown)
        stop = None
        if listing.stopped:
            stop = (
                f"git ls-files listed {len(listing.paths):,} files in "
                f"{self._time_limit:g} s, not all"
            )
        elif budget.stopped:
            stop = (
                f"checked {checked:,} of {len(candidates):,} matching files in "
                f"{self._time_limit:g} s"
            )
        return self._glob_answer(plan.pattern, matches, stop)

    def _glob_answer(self, pattern: str, matches: list[str], stop: str | None) -> str:
        parts = []
        if len(matches) > self._max_results:
            at_least = "at least " if stop else ""
            parts.append(f"showing {self._max_results:,} of {at_least}{len(matches):,} matches")
        if stop:
            parts.append(stop)
        lines = _truncation(parts, "narrow the pattern or path")
        lines.extend(matches[: self._max_results])
        if not lines:
            lines.append(f"No files match {pattern}.")
        return "\n".join(lines)

    # ----------------------------------------------------------------------------- Grep

    async def _grep(self, sandbox: Sandbox, budget: Budget, args: GrepArguments) -> str:
        plan = await asyncio.to_thread(_GrepPlan.make, sandbox, args)
        tally: _Tally | None = None
        if plan.base.is_dir:
            tally = await self._grep_fast(sandbox, budget, plan, args)
        if tally is None:
            tally = await asyncio.to_thread(self._grep_walked, sandbox, budget, plan)
        return self._grep_answer(args.pattern, plan, tally)

    async def _grep_fast(
        self, sandbox: Sandbox, budget: Budget, plan: _GrepPlan, args: GrepArguments
    ) -> _Tally | None:
        """Search with git grep in a git checkout, else with rg (or in Python over their list
        of files when they cannot take the pattern); None when neither can be used: walk."""
        root = self._root
        under = git_search.real_rel(root, plan.base.real)
        search: Callable[..., Awaitable[git_search.GitGrep]]
        listing: Callable[[str, float], Awaitable[git_search.GitListing]]
        if await self._git_checkout():
            tool = "git grep"
            mode = await git_search.grep_mode(root, args.pattern)
            search = functools.partial(git_search.grep, root)
            listing = functools.partial(git_search.list_files, root)
        elif (rg := self._rg()) is not None:
            tool = "rg"
            mode = git_search.pattern_mode(args.pattern)
            if mode == "pcre" and not await rg_search.has_pcre(rg, root):
                mode = None
            search = functools.partial(rg_search.grep, rg, root)
            listing = functools.partial(rg_search.list_files, rg, root)
        else:
            return None
        if mode is not None:
            found = await search(
                args.pattern,
                mode,
                case_insensitive=args.case_insensitive,
                under=under,
                deadline=budget.deadline,
                max_hits=max(MAX_COUNTED_LINES, 10 * self._max_results),
            )
            if found.failed is None:
                return await asyncio.to_thread(
                    self._grep_hits, sandbox, budget, plan, found, under, tool
                )
        listed = await listing(under, budget.deadline)
        if listed.failed is not None:
            return None
        return await asyncio.to_thread(self._grep_listed, sandbox, budget, plan, listed)

    def _grep_hits(
        self,
        sandbox: Sandbox,
        budget: Budget,
        plan: _GrepPlan,
        found: git_search.GitGrep,
        under: str,
        tool: str,
    ) -> _Tally:
        """git grep's or rg's lines, each admitted by the sandbox and matched again in Python."""
        tally = _Tally(engine=tool)
        admitted: dict[str, Location | None] = {}
        hits = sorted(
            ((_shown_path(hit.path, under, plan.base.rel), hit) for hit in found.hits),
            key=lambda pair: (pair[0].split("/"), pair[1].line_number),
        )
        for shown, hit in hits:
            if not plan.accepts(shown):
                continue
            if hit.path not in admitted:
                admitted[hit.path] = _searchable(sandbox, sandbox.admit(hit.path), tally.notes)
            if admitted[hit.path] is None:
                continue
            if len(hit.text) > MAX_LINE_CHARS:
                tally.notes["long lines"] += 1
                continue
            remaining = budget.remaining()
            try:
                if remaining <= 0:
                    raise TimeoutError
                matched = plan.compiled.search(hit.text, concurrent=True, timeout=remaining)
            except TimeoutError:
                budget.stopped = "time"
                break
            if matched is not None:
                tally.add(f"{shown}:{hit.line_number}: {_shown(hit.text)}", self._max_results)
        tally.notes["long lines"] += found.long_lines
        if budget.stopped is None and found.stopped == "time":
            tally.stop = (
                f"{tool} stopped after {self._time_limit:g} s, before every file was searched"
            )
        elif budget.stopped is None and found.stopped == "output":
            tally.stop = f"counted the first {len(found.hits):,} matching lines only"
        elif budget.stopped:
            tally.stop = f"checked the matching lines for {self._time_limit:g} s, not all"
        return tally

    def _grep_listed(
        self, sandbox: Sandbox, budget: Budget, plan: _GrepPlan, listing: git_search.GitListing
    ) -> _Tally:
        """The Python search over git's or rg's list of files (a pattern they cannot take)."""
        tally = _Tally(engine="python")

        def files() -> Iterator[Location]:
            for path in listing.paths:
                if time.monotonic() > budget.deadline:
                    budget.stopped = "time"
                    return
                found = sandbox.admit(path)
                if found is not None:
                    yield found

        self._search(sandbox, budget, plan, files(), tally)
        if listing.stopped or budget.stopped:
            tally.stop = (
                f"searched {tally.files_searched:,} of {len(listing.paths):,}"
                f"{'+' if listing.stopped else ''} files in {self._time_limit:g} s"
            )
        return tally

    def _grep_walked(self, sandbox: Sandbox, budget: Budget, plan: _GrepPlan) -> _Tally:
        tally = _Tally(engine="python")
        files = sandbox.walk(plan.base, budget) if plan.base.is_dir else iter([plan.base])
        self._search(sandbox, budget, plan, files, tally)
        if budget.stopped == "entries":
            tally.stop = f"stopped after scanning {self._max_files_scanned:,} entries"
        elif budget.stopped == "time":
            tally.stop = (
                f"searched {tally.files_searched:,} files in {self._time_limit:g} s, not all"
            )
        return tally

    def _search(
        self,
        sandbox: Sandbox,
        budget: Budget,
        plan: _GrepPlan,
        files: Iterable[Location],
        tally: _Tally,
    ) -> None:
        """Search each file line by line, after one search of its whole text (when that is
        sure not to miss a line's match) has shown it worth it."""
        for found in files:
            if not plan.accepts(found.rel):
                continue
            text = _grep_text(sandbox, found, tally.notes)
            if text is None:
                continue
            try:
                if plan.prefilter is not None:
                    remaining = budget.remaining()
                    if remaining <= 0:
                        raise TimeoutError
                    if plan.prefilter.search(text, concurrent=True, timeout=remaining) is None:
                        tally.files_searched += 1
                        continue
                for number, line in enumerate(text.split("\n"), start=1):
                    if len(line) > MAX_LINE_CHARS:
                        tally.notes["long lines"] += 1
                        continue
                    remaining = budget.remaining()
                    if remaining <= 0:
                        raise TimeoutError
                    if plan.compiled.search(line, concurrent=True, timeout=remaining):
                        tally.add(f"{found.rel}:{number}: {_shown(line)}", self._max_results)
            except TimeoutError:
                budget.stopped = "time"
                return
            tally.files_searched += 1

    def _grep_answer(self, pattern: str, plan: _GrepPlan, tally: _Tally) -> str:
        parts = []
        if tally.total > len(tally.shown):
            at_least = "at least " if tally.stop else ""
            parts.append(f"showing {len(tally.shown):,} of {at_least}{tally.total:,} matches")
        if tally.stop:
            parts.append(tally.stop)
        lines = _truncation(parts, "narrow the pattern, path or glob")
        lines.extend(tally.shown)
        if not lines:
            lines.append(f"No matches for {pattern}.")
        notes = tally.notes
        if notes["long lines"]:
            lines.append(
                f"[skipped {notes['long lines']:,} lines longer than {MAX_LINE_CHARS:,} characters]"
            )
        if notes["large files"]:
            lines.append(
                f"[skipped {notes['large files']:,} files larger than "
                f"{GREP_MAX_FILE_BYTES:,} bytes]"
            )
        if notes["binary files"] and not plan.base.is_dir:
            lines.append("[skipped: binary file]")
        return "\n".join(lines)

    # ----------------------------------------------------------------------------- Read

    async def _read(self, sandbox: Sandbox, budget: Budget, args: ReadArguments) -> str:
        return await asyncio.to_thread(self._read_file, sandbox, budget, args)

    def _read_file(self, sandbox: Sandbox, budget: Budget, args: ReadArguments) -> str:
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


# --------------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class _GlobPlan:
    pattern: str
    matcher: wcglob.WcMatcher[str]
    offset: int  # characters of a listed path before the part the pattern matches
    start: Location | None  # where to look: None when the pattern's folders do not exist
    max_depth: int | None
    tail: str  # literal text every match ends with ("*.py": ".py"), a cheap first test

    @classmethod
    def make(cls, sandbox: Sandbox, args: GlobArguments) -> _GlobPlan:
        pattern = args.pattern.removeprefix("./")
        matcher = _compile_glob(pattern)
        base = sandbox.resolve(args.path or ".")
        if not base.is_dir:
            raise _ToolError(f"{base.rel} is a file; path must be a directory.")
        segments = pattern.split("/")
        # Look only below the pattern's literal leading folders, and no deeper than it can
        # match when it has no "**".
        prefix: list[str] = []
        for segment in segments[:-1]:
            if _GLOB_MAGIC.search(segment) or "\\" in segment:
                break
            prefix.append(segment)
        max_depth = None if "**" in pattern else len(segments) - len(prefix)
        offset = len(base.rel) + 1 if base.rel else 0
        start: Location | None = base
        if prefix:
            try:
                start = sandbox.resolve("/".join([base.rel, *prefix]).lstrip("/"))
            except MissingPathError:
                start = None
        if start is not None and not start.is_dir:
            start = None
        last = segments[-1]
        tail = "" if "\\" in last else re.split(r"[*?\[\]{}]", last)[-1]
        return cls(pattern, matcher, offset, start, max_depth, tail)


@dataclass(frozen=True, slots=True)
class _GrepPlan:
    compiled: regex.Pattern[str]
    prefilter: regex.Pattern[str] | None  # one search of a whole file's text, or None
    file_filter: wcglob.WcMatcher[str] | None
    by_path: bool  # the glob is matched against the path below ``base``, else the file name
    base: Location
    offset: int

    @classmethod
    def make(cls, sandbox: Sandbox, args: GrepArguments) -> _GrepPlan:
        flags = regex.IGNORECASE if args.case_insensitive else 0
        try:
            compiled = regex.compile(args.pattern, flags)
        except regex.error as problem:
            raise _ToolError(f"Invalid regular expression {args.pattern!r}: {problem}") from None
        prefilter = None
        if not _LINE_ONLY.search(args.pattern):
            try:
                prefilter = regex.compile(args.pattern, flags | regex.MULTILINE)
            except regex.error:
                prefilter = None
        file_filter = _compile_glob(args.glob) if args.glob else None
        base = sandbox.resolve(args.path or ".")
        offset = len(base.rel) + 1 if base.rel and base.is_dir else 0
        return cls(compiled, prefilter, file_filter, "/" in (args.glob or ""), base, offset)

    def accepts(self, rel: str) -> bool:
        if self.file_filter is None:
            return True
        return bool(self.file_filter.match(rel[self.offset :] if self.by_path else _name(rel)))


@dataclass(slots=True)
class _Tally:
    """What a search found, and how far it went."""

    engine: str  # "git grep" | "rg" | "python"
    shown: list[str] = field(default_factory=list)
    total: int = 0
    files_searched: int = 0
    stop: str | None = None  # how the search was cut short, for the truncation line
    notes: dict[str, int] = field(
        default_factory=lambda: {"long lines": 0, "large files": 0, "binary files": 0}
    )

    def add(self, line: str, limit: int) -> None:
        self.total += 1
        if len(self.shown) < limit:
            self.shown.append(line)


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


def _searchable(sandbox: Sandbox, found: Location | None, notes: dict[str, int]) -> Location | None:
    """``found`` if Grep may show lines of it (text, not too large), else None (counted)."""
    if found is None:
        return None
    try:
        if os.stat(found.real).st_size > GREP_MAX_FILE_BYTES:
            notes["large files"] += 1
            return None
    except OSError:
        return None
    if sandbox.is_binary(found):
        notes["binary files"] += 1
        return None
    return found


def _shown_path(path: str, real_prefix: str, shown_prefix: str) -> str:
    """A path git gave (below the real folder ``real_prefix``) as the model named that folder
    (``shown_prefix``, which may go through a symbolic link)."""
    if real_prefix == shown_prefix:
        return path
    rest = path[len(real_prefix) :].lstrip("/") if real_prefix else path
    return f"{shown_prefix}/{rest}" if shown_prefix else rest


def _truncation(parts: list[str], advice: str) -> list[str]:
    """The first line of an answer that was cut short, or nothing."""
    return [f"[truncated: {'; '.join(parts)}; {advice}]"] if parts else []


def _name(rel: str) -> str:
    return rel.rsplit("/", 1)[-1]


def _numbered(number: int, raw: bytes) -> str:
    text = raw.decode("utf-8", errors="replace").removesuffix("\n").removesuffix("\r")
    return f"{number:>6}\t{text}"


def _shown(line: str) -> str:
    line = line.rstrip("\r")
    return line if len(line) <= MAX_SHOWN_LINE_CHARS else line[:MAX_SHOWN_LINE_CHARS] + "…"
