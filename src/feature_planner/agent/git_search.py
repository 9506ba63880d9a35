"""Listing and searching a git checkout's files with git itself: complete and fast at scale.

``RepositoryTools`` uses these when its root is the top of a git working tree: ``git
ls-files -co --exclude-standard`` lists tracked files and untracked ones that are not ignored,
and ``git grep --untracked -I`` searches them, both in C and on every core, where a walk in
Python takes seconds at 100,000 files. What they return are candidates only: every path goes
through the ``Sandbox`` (``Sandbox.admit``) before anything of it is shown, so the Sandbox
stays the one gate (secret names, skipped and ignored folders, symbolic links).

Every run is ``asyncio.create_subprocess_exec`` (never a shell; the pattern is passed after
``-e``), with a deadline: past it, or past the output cap, the process is killed and the
answer says it was cut short. git is run with the caller's environment minus every ``GIT_*``
variable, with ``GIT_OPTIONAL_LOCKS=0`` (it never writes the index), no fsmonitor hook, no
pager, no colour, and explicit matching options so that no ``grep.*`` setting changes what a
pattern means.

Patterns: ``Grep`` takes Python regular expressions (the ``regex`` package). A pattern without
metacharacters is searched as a fixed string (``-F``). Any other is searched with ``-P``
(PCRE2, when this machine's git has it: checked once at run time) with ``(*UCP)`` in front,
so that ``\\w``, ``\\d``, ``\\s`` and ``\\b`` are Unicode-aware as in Python. PCRE2 differs
from Python in a few constructs: ``{,n}`` (a literal in PCRE2 before 10.43), ``\\N{name}``,
``\\L<name>``, fuzzy matching, version-1 sets; patterns with those, patterns git refuses,
and machines without PCRE2 are searched in Python instead (``RepositoryTools`` falls back).
Every line git reports is matched again with the Python pattern before it is shown, so a
difference of flavour can drop a line but never add one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = [
    "GitGrep",
    "GitListing",
    "GrepHit",
    "grep",
    "grep_mode",
    "hit_reader",
    "is_checkout",
    "list_files",
    "names",
    "pattern_mode",
    "run_process",
]

GrepMode = Literal["fixed", "pcre"]
Stop = Literal["time", "output"] | None

_CONFIG = (
    "-c", "core.fsmonitor=false", "-c", "core.quotePath=false", "-c", "color.ui=false",
    "-c", "submodule.recurse=false", "-c", "grep.column=false", "-c", "grep.fullName=true",
    "-c", "grep.patternType=default", "-c", "grep.fallbackToNoIndex=false",
)  # fmt: skip
_READ_CHUNK = 1 << 20
MAX_RECORD_BYTES = 1 << 20  # a longer output line is skipped as a long line, unread
MAX_ERROR_BYTES = 1 << 20  # of a process's error output, kept (the rest is read and dropped)
_METACHARACTERS = re.compile(r"[\\^$.|?*+()\[\]{}]")
# Python constructs PCRE2 reads differently or not at all: those patterns are searched in
# Python. (Conservative: a match inside a character class also counts.)
_PYTHON_ONLY = re.compile(
    r"\{,"  # {,n}
    r"|\\[NLgpPX]"  # \N{name}, \L<list>, \g, properties and graphemes (kept to Python)
    r"|\(\?[a-zA-Z-]*[abefprwLuV]"  # flags PCRE2 lacks or reads differently
    r"|\{\s*(?:\d+\s*<=?\s*)?[deis]\s*[<=,}]"  # fuzzy matching
)


@dataclass(frozen=True, slots=True)
class GitListing:
    """Paths relative to the root (POSIX, as git prints them); ``stopped`` when cut short."""

    paths: list[str]
    stopped: Stop = None
    failed: str | None = None  # git could not list (an error message): use another way


@dataclass(frozen=True, slots=True)
class GrepHit:
    path: str
    line_number: int
    text: str  # the whole line, without its line ending


@dataclass(slots=True)
class GitGrep:
    """What ``git grep`` (or ``rg``, see ``rg_search``) reported."""

    hits: list[GrepHit] = field(default_factory=list)
    long_lines: int = 0  # matching lines longer than the record cap, not read
    stopped: Stop = None
    failed: str | None = None


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0", GIT_PAGER="cat", LC_ALL="C.UTF-8")
    return env


async def _run(
    root: str, argv: list[str], deadline: float, consume: Callable[[bytes], bool]
) -> tuple[int | None, Stop, str]:
    """Run ``git argv`` in ``root``, feeding its output to ``consume`` (False: enough).

    Returns the exit code (None when killed), why it was stopped, and its error output."""
    git = shutil.which("git")
    if git is None:
        return 127, None, "git is not installed"
    return await run_process(
        [git, "--no-pager", *_CONFIG, *argv], root, _environment(), deadline, consume
    )


async def run_process(
    argv: list[str],
    cwd: str,
    env: dict[str, str],
    deadline: float,
    consume: Callable[[bytes], bool],
) -> tuple[int | None, Stop, str]:
    """Run ``argv`` (no shell) in ``cwd``, feeding its output to ``consume`` (False: enough);
    past ``deadline`` (``time.monotonic``) or once ``consume`` has enough, it is killed.

    Returns the exit code (None when killed), why it was stopped, and its error output."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    errors = asyncio.ensure_future(_drain(process.stderr, MAX_ERROR_BYTES))
    stopped: Stop = None
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                stopped = "time"
                break
            try:
                chunk = await asyncio.wait_for(process.stdout.read(_READ_CHUNK), remaining)
            except TimeoutError:
                stopped = "time"
                break
            if not chunk:
                break
            if not consume(chunk):
                stopped = "output"
                break
        if stopped is None:
            try:
                code: int | None = await asyncio.wait_for(
                    process.wait(), max(deadline - time.monotonic(), 0.05)
                )
            except TimeoutError:
                stopped, code = "time", None
        else:
            code = None
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        if not errors.done():
            errors.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await errors
    message = errors.result().decode("utf-8", "replace").strip() if not errors.cancelled() else ""
    return code, stopped, message


async def _drain(stream: asyncio.StreamReader, limit: int) -> bytes:
    """Everything ``stream`` gives until its end (so that the process never blocks writing
    it), the first ``limit`` bytes kept."""
    kept = bytearray()
    while chunk := await stream.read(_READ_CHUNK):
        kept.extend(chunk[: max(limit - len(kept), 0)])
    return bytes(kept)


async def is_checkout(root: str, timeout: float = 2.0) -> bool:
    """Whether ``root`` (a real path) is the top folder of a git working tree git will read
    (not, e.g., a folder inside one, or one owned by another user without safe.directory)."""
    out = bytearray()

    def keep(chunk: bytes) -> bool:
        out.extend(chunk)
        return len(out) < 64 * 1024

    try:
        code, stopped, _ = await _run(
            root, ["rev-parse", "--show-toplevel"], time.monotonic() + timeout, keep
        )
    except OSError:
        return False
    if code != 0 or stopped:
        return False
    top = os.fsdecode(bytes(out)).strip()
    return bool(top) and os.path.realpath(top) == os.path.realpath(root)


_pcre: bool | None = None


async def _has_pcre(root: str) -> bool:
    """Whether this machine's git was built with PCRE2 (asked once)."""
    global _pcre
    if _pcre is None:
        code, stopped, _ = await _run(
            root,
            ["grep", "-q", "-P", "-e", "(*UCP)x", "--", ":(literal)no/such/path/pcre-check"],
            time.monotonic() + 5,
            lambda _: True,
        )
        if stopped:
            return False
        _pcre = code in (0, 1)
    return _pcre


def pattern_mode(pattern: str) -> GrepMode | None:
    """How a PCRE2 grep (git's or ripgrep's) should take ``pattern`` (a Python regular
    expression): as a fixed string, as PCRE2, or None: only Python reads it as meant."""
    if not _METACHARACTERS.search(pattern):
        return "fixed"
    if _PYTHON_ONLY.search(pattern) or "\n" in pattern:
        return None
    return "pcre"


async def grep_mode(root: str, pattern: str) -> GrepMode | None:
    """How git should search ``pattern`` (a Python regular expression), or None: in Python."""
    mode = pattern_mode(pattern)
    if mode == "pcre" and not await _has_pcre(root):
        return None
    return mode


def _pathspec(rel: str) -> list[str]:
    return ["--", f":(literal){rel}"] if rel else []


async def list_files(root: str, under: str, deadline: float) -> GitListing:
    """Tracked files and untracked ones not ignored, below ``under`` (a real folder relative to
    the root, "" for all), in git's order (by path)."""
    chunks: list[bytes] = []

    def keep(chunk: bytes) -> bool:
        chunks.append(chunk)
        return True

    code, stopped, errors = await _run(
        root,
        ["ls-files", "-z", "--cached", "--others", "--exclude-standard", *_pathspec(under)],
        deadline,
        keep,
    )
    if stopped is None and code != 0:
        return GitListing([], failed=errors or f"git ls-files exited with {code}")
    return GitListing(names(b"".join(chunks)), stopped)


def names(data: bytes) -> list[str]:
    """The NUL-terminated names in ``data`` (``-z`` / ``--null`` output), without repeats; a
    last name cut short (no NUL after it) is left out."""
    found = os.fsdecode(data[: data.rfind(b"\0") + 1]).split("\0")
    found.pop()  # after the last NUL
    return list(dict.fromkeys(found))


async def grep(
    root: str,
    pattern: str,
    mode: GrepMode,
    *,
    case_insensitive: bool,
    under: str,
    deadline: float,
    max_hits: int,
) -> GitGrep:
    """Lines matching ``pattern`` in the text files ``list_files`` would list (git's own binary
    test, ``-I``; symbolic links are not followed), at most ``max_hits`` of them."""
    result = GitGrep()
    consume = hit_reader(result, max_hits)
    flags = ["-F"] if mode == "fixed" else ["-P"]
    expression = pattern if mode == "fixed" else "(*UCP)" + pattern
    code, stopped, errors = await _run(
        root,
        [
            "grep", "--untracked", "--exclude-standard", "-I", "-n", "-z", "--no-color",
            *(["-i"] if case_insensitive else []), *flags, "-e", expression, *_pathspec(under),
        ],
        deadline,
        consume,
    )  # fmt: skip
    result.stopped = stopped
    if stopped is None and code not in (0, 1):
        result.failed = errors or f"git grep exited with {code}"
    return result


def hit_reader(result: GitGrep, max_hits: int) -> Callable[[bytes], bool]:
    """A ``consume`` for ``run_process`` that reads ``path NUL line-number NUL text`` records,
    one a line (``git grep -n -z``; ``rg --null --field-match-separator '\\x00'``), into
    ``result``; False once it holds ``max_hits``."""
    pending = bytearray()
    skipping = False  # inside a record longer than MAX_RECORD_BYTES

    def consume(chunk: bytes) -> bool:
        nonlocal skipping
        pending.extend(chunk)
        start = 0
        while True:
            end = pending.find(b"\n", start)
            if end < 0:
                break
            if skipping:
                skipping = False
            else:
                _record(result, bytes(pending[start:end]))
            start = end + 1
            if len(result.hits) >= max_hits:
                del pending[:start]
                return False
        del pending[:start]
        if len(pending) > MAX_RECORD_BYTES:
            if not skipping:
                result.long_lines += 1
            skipping = True
            pending.clear()
        return True

    return consume


def _record(result: GitGrep, record: bytes) -> None:
    path, _, rest = record.partition(b"\0")
    number, _, text = rest.partition(b"\0")
    if not number.isdigit():
        return
    line = text.decode("utf-8", "replace")  # a "\r" stays, as in the Python search
    result.hits.append(GrepHit(os.fsdecode(path), int(number), line))


def real_rel(root: str, real: str) -> str:
    """``real`` (an absolute path inside ``root``) relative to it, in POSIX form."""
    return "" if real == root else Path(os.path.relpath(real, root)).as_posix()
