"""What of a repository may be seen and read: one answer for everything that reads it.

The agent's tools (``tools``), the offline engine's scan (``providers.repo_scan``) and any
check of a citation against the code go through a ``Sandbox``; none of them opens a
repository file by itself. The model chooses paths, and the repository's own files may try
to talk it into anything, so the rules are enforced here rather than asked of anyone:

- Paths are relative to the root. Absolute paths, ``~`` and ``..`` are refused outright
  (before any look at the disk); a path is then resolved (``realpath``) and refused when a
  symbolic link takes it out of the root.
- Invisible, by name at any depth of the path (as given and as resolved): ``.git``
  internals and secret-looking files (``SECRET_PATTERNS``). Also invisible: the skipped
  directories (``SKIP_DIRS``: dependencies, virtual environments, build output) and whatever
  the ``.gitignore`` files (the root one and nested ones) ignore.
- Files are opened as regular files only (never a FIFO or a device) and never through a
  final symbolic link; a NUL byte in the first ``BINARY_SNIFF_BYTES`` makes a file binary,
  and a binary file is never read as text. Every read has a size limit.
- A walk never descends into a symlinked directory (no loops, no duplicates: its files are
  listed under their real path), lists a symlinked file only when its target is inside the
  root and visible itself, and stops at its ``Budget`` of entries and time.

``resolve`` refuses exactly what ``walk`` never lists, so nothing can be read that cannot be
found; ``admit`` applies ``walk``'s rules to a path listed by something else (``git
ls-files``, ``git grep``), so that a faster listing shows no more than a walk would. A
``Sandbox`` keeps the ``.gitignore`` files it has read: make one per task (a tool call, a
scan), so that the next task sees edits. All of it is blocking file I/O.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
import os
import re
import stat
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pathspec import GitIgnoreSpec

__all__ = [
    "BINARY_SNIFF_BYTES",
    "SECRET_PATTERNS",
    "SKIP_DIRS",
    "SKIP_DIR_SUFFIXES",
    "BinaryFileError",
    "Budget",
    "FileTooLargeError",
    "LineRangeError",
    "Location",
    "MissingPathError",
    "RefusedPathError",
    "Sandbox",
    "SandboxError",
    "UnreadableFileError",
    "skip_lines",
]

# Never entered, at any depth: dependencies, virtual environments, build output, caches.
# (Also any directory whose name ends in ``SKIP_DIR_SUFFIXES``.)
SKIP_DIRS = frozenset({
    ".venv", "__pycache__", "build", "coverage", "dist", "node_modules", "target", "vendor",
    "venv",
})  # fmt: skip
SKIP_DIR_SUFFIXES = (".egg-info",)
# Files that look like secrets: never listed or read. Matched against each lowercased part
# of a path.
SECRET_PATTERNS = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.keystore", "id_rsa*",
    "id_ed25519*", "id_ecdsa*", "*credentials*", ".npmrc", ".pypirc",
)  # fmt: skip
_SECRET = re.compile("|".join(fnmatch.translate(p) for p in SECRET_PATTERNS))
BINARY_SNIFF_BYTES = 8 * 1024
MAX_GITIGNORE_BYTES = 256 * 1024
MAX_DEPTH = 64
READ_LINES_MAX_BYTES = 4 * 1024 * 1024  # how far into a file ``read_lines`` reads
_ABSOLUTE = re.compile(r"^(?:[/\\~]|[A-Za-z]:)")


class SandboxError(Exception):
    """A refusal; its message is meant for whoever asked (the model reads it)."""


class RefusedPathError(SandboxError):
    """The path may not be seen: outside the root, a secret, ignored, or not a plain path."""


class MissingPathError(SandboxError):
    """The path does not exist (inside the root)."""


class UnreadableFileError(SandboxError):
    """The file may be seen but not read as text: a FIFO, a device."""


class BinaryFileError(UnreadableFileError):
    """A NUL byte in the file's first ``BINARY_SNIFF_BYTES``."""


class FileTooLargeError(UnreadableFileError):
    """The file is larger than the read allows."""


class LineRangeError(SandboxError):
    """The file has no such lines."""


@dataclass(frozen=True, slots=True)
class Location:
    """A path the sandbox has let through."""

    rel: str  # relative to the root, POSIX separators, through any symlink; "" is the root
    real: str  # absolute path to open, symlinks resolved
    is_dir: bool = False
    linked: bool = False  # listed through a symbolic link (to a visible file of the root)


@dataclass(slots=True)
class Budget:
    """Work one task may do; ``stopped`` says which limit ended it early."""

    max_entries: int
    deadline: float = math.inf  # on the ``time.monotonic()`` clock
    entries: int = 0
    stopped: str | None = None  # "entries" | "time"

    @classmethod
    def lasting(cls, seconds: float, max_entries: int) -> Budget:
        return cls(max_entries=max_entries, deadline=time.monotonic() + seconds)

    def take_entry(self) -> bool:
        """Count one directory entry looked at; False once a limit is reached."""
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


class Sandbox:
    """One repository's rules, for one task."""

    __slots__ = ("_folders", "_quick", "_specs", "root")

    def __init__(self, root: Path | str) -> None:
        self.root = os.path.realpath(root)  # the root's real path: symlinks resolved
        self._specs: dict[str, GitIgnoreSpec | None] = {}  # .gitignore files read, by folder
        self._folders: dict[str, bool] = {}  # may a walk enter this folder, by folder
        # per .gitignore, one regex that matches when any of its patterns might: most paths
        # match none, and skip the pattern-by-pattern check
        self._quick: dict[str, re.Pattern[str] | None] = {}

    # -- may this be seen ---------------------------------------------------------------------

    def resolve(self, raw: str) -> Location:
        """A path as the model gave it, checked and resolved; refusals raise ``SandboxError``."""
        if "\x00" in raw:
            raise RefusedPathError("Paths cannot contain NUL characters.")
        text = raw.strip().replace("\\", "/")
        if _ABSOLUTE.match(text):
            raise RefusedPathError(
                f"Refused {raw!r}: absolute paths are not allowed; "
                "give a path relative to the repository root."
            )
        parts = [part for part in text.split("/") if part not in ("", ".")]
        if ".." in parts:
            raise RefusedPathError(
                f"Refused {raw!r}: '..' is not allowed; paths stay inside the root."
            )
        rel = "/".join(parts)
        _check_names(rel)
        real = os.path.realpath(os.path.join(self.root, *parts))
        real_rel = _inside(self.root, real)
        if real_rel is None:
            raise RefusedPathError(
                f"Refused {rel}: it is a symbolic link that leads outside the root."
            )
        _check_names(real_rel)
        try:
            is_dir = stat.S_ISDIR(os.stat(real).st_mode)
        except FileNotFoundError:
            raise MissingPathError(f"No such file or directory: {rel}") from None
        for path in dict.fromkeys((rel, real_rel)):
            if self._is_ignored_path(path, is_dir):
                raise RefusedPathError(
                    f"Refused {rel}: it is ignored (.gitignore or a vendored dir)."
                )
        return Location(rel, real, is_dir, linked=real_rel != rel)

    def walk(
        self,
        start: Location,
        budget: Budget,
        *,
        max_depth: int | None = None,
        breadth_first: bool = False,
        pass_over: Callable[[str], bool] | None = None,
    ) -> Iterator[Location]:
        """The visible files below the directory ``start``, each directory in name order.

        Depth first (the order of a sorted recursive listing) unless ``breadth_first``
        (shallow files first, so that a cut-off spares them). ``max_depth`` 1 lists only
        ``start``'s own files. ``pass_over`` may narrow the walk further: names for which it
        is true are neither listed nor entered.
        """
        limit = min(max_depth or MAX_DEPTH, MAX_DEPTH)

        def listing(directory: Location) -> Iterator[Location]:
            """Its visible entries, in name order, each counted in ``budget``."""
            try:
                with os.scandir(directory.real) as scan:
                    entries = sorted(scan, key=lambda entry: entry.name)
            except OSError:
                return
            for entry in entries:
                if not budget.take_entry():
                    return
                if pass_over is None or not pass_over(entry.name):
                    rel = f"{directory.rel}/{entry.name}" if directory.rel else entry.name
                    found = self._visible(entry, rel)
                    if found is not None:
                        yield found

        def depth_first(directory: Location, depth: int) -> Iterator[Location]:
            for found in listing(directory):
                if not found.is_dir:
                    yield found
                elif depth + 1 < limit:
                    yield from depth_first(found, depth + 1)

        if not breadth_first:
            yield from depth_first(start, 0)
            return
        pending = deque([(start, 0)])
        while pending:
            directory, depth = pending.popleft()
            for found in listing(directory):
                if not found.is_dir:
                    yield found
                elif depth + 1 < limit:
                    pending.append((found, depth + 1))

    def admit(self, rel: str) -> Location | None:
        """A file path that something else listed (``git ls-files``, ``git grep``), as
        ``walk`` would list it, or None when ``walk`` would not: the same rules, path by path.

        ``rel`` is relative to the root, in POSIX form. Folders are checked once each."""
        parts = rel.split("/")
        if len(parts) > MAX_DEPTH or any(part in ("", ".", "..") for part in parts):
            return None
        if "\x00" in rel:
            return None
        folder, _, name = rel.rpartition("/")
        lower = name.lower()
        if lower == ".git" or _SECRET.match(lower) or not self._folder_visible(folder):
            return None
        path = os.path.join(self.root, rel)
        try:
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                real = os.path.realpath(path)
                real_rel = _inside(self.root, real)
                if real_rel is None or not _names_visible(real_rel):
                    return None
                if not stat.S_ISREG(os.stat(real).st_mode):
                    return None
                if self._is_ignored(rel, False) or self._is_ignored_path(real_rel, False):
                    return None
                return Location(rel, real, linked=True)
        except OSError:
            return None
        if not stat.S_ISREG(mode) or self._is_ignored(rel, False):
            return None
        return Location(rel, path)

    def _folder_visible(self, rel: str) -> bool:
        """Whether a walk from the root enters the folder ``rel`` ("" is the root)."""
        known = self._folders.get(rel)
        if known is None:
            parent, _, name = rel.rpartition("/")
            lower = name.lower()
            known = rel == "" or (
                self._folder_visible(parent)
                and lower != ".git"
                and not _SECRET.match(lower)
                and not _skipped_dir(name)
                and not os.path.islink(os.path.join(self.root, rel))
                and not self._is_ignored(rel, True)
            )
            self._folders[rel] = known
        return known

    def _visible(self, entry: os.DirEntry[str], rel: str) -> Location | None:
        """The entry as a file or a directory to enter, or None when it is invisible."""
        name = entry.name.lower()
        if name == ".git" or _SECRET.match(name):
            return None
        try:
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
                real_rel = _inside(self.root, real)
                if real_rel is None or not _names_visible(real_rel):
                    return None
                if not stat.S_ISREG(os.stat(real).st_mode):
                    return None  # symlinked directories are listed under their real path
                if self._is_ignored(rel, False) or self._is_ignored_path(real_rel, False):
                    return None
                return Location(rel, real, linked=True)
            if entry.is_dir(follow_symlinks=False):
                if _skipped_dir(entry.name) or self._is_ignored(rel, True):
                    return None
                return Location(rel, entry.path, is_dir=True)
            if entry.is_file(follow_symlinks=False) and not self._is_ignored(rel, False):
                return Location(rel, entry.path)
        except OSError:
            pass
        return None

    # -- may this be read ---------------------------------------------------------------------

    @contextlib.contextmanager
    def open_text(self, location: Location) -> Iterator[IO[bytes]]:
        """The file, opened at its start, once it is known not to be binary."""
        with _open_regular(location.real) as handle:
            if b"\x00" in handle.read(BINARY_SNIFF_BYTES):
                raise BinaryFileError(
                    f"{location.rel} is a binary file; only text files can be read."
                )
            handle.seek(0)
            yield handle

    def is_binary(self, location: Location) -> bool:
        """True also for what cannot be opened at all: it is not text to show."""
        try:
            with self.open_text(location):
                return False
        except (OSError, SandboxError):
            return True

    def read_text(self, location: Location, max_bytes: int, *, truncate: bool = False) -> str:
        """The file's text; a file larger than ``max_bytes`` raises ``FileTooLargeError``,
        or with ``truncate`` gives its first ``max_bytes``."""
        data = _read_regular(location.real, max_bytes + 1)
        if len(data) > max_bytes and not truncate:
            raise FileTooLargeError(f"{location.rel} is larger than {max_bytes:,} bytes.")
        if b"\x00" in data[:BINARY_SNIFF_BYTES]:
            raise BinaryFileError(f"{location.rel} is a binary file; only text files can be read.")
        return data[:max_bytes].decode("utf-8", errors="replace")

    def read_lines(
        self, path: str, start: int, end: int, *, max_bytes: int = READ_LINES_MAX_BYTES
    ) -> tuple[str, ...]:
        """Lines ``start`` to ``end`` (from 1, inclusive) of the text file ``path``, without
        their line endings, if the sandbox lets it be read; else ``SandboxError``:
        ``RefusedPathError``, ``MissingPathError``, ``UnreadableFileError`` (binary, not a
        regular file, or the lines lie beyond the first ``max_bytes``) or
        ``LineRangeError``."""
        if start < 1 or end < start:
            raise LineRangeError(f"Lines {start}-{end} are not a range of lines (from 1).")
        location = self.resolve(path)
        if location.is_dir:
            raise RefusedPathError(f"{location.rel or '.'} is a directory, not a file.")
        with self.open_text(location) as handle:
            data = handle.read(max_bytes + 1)
        complete = len(data) <= max_bytes
        if not complete:
            data = data[: data.rfind(b"\n", 0, max_bytes) + 1]  # whole lines only
        lines = data.decode("utf-8", errors="replace").split("\n")
        if lines[-1] == "":
            lines.pop()  # the text after the last line ending
        if end > len(lines):
            if not complete:
                raise FileTooLargeError(
                    f"Lines {start}-{end} of {location.rel} lie beyond its first "
                    f"{max_bytes:,} bytes."
                )
            raise LineRangeError(
                f"{location.rel} has {len(lines):,} lines; lines {start}-{end} do not exist."
            )
        return tuple(line.removesuffix("\r") for line in lines[start - 1 : end])

    # -- .gitignore ---------------------------------------------------------------------------

    def _is_ignored_path(self, rel: str, is_dir: bool) -> bool:
        """Whether ``rel`` or any directory above it is skipped or ignored."""
        parts = rel.split("/") if rel else []
        for depth in range(1, len(parts) + 1):
            last = depth == len(parts)
            part_is_dir = is_dir or not last
            if part_is_dir and _skipped_dir(parts[depth - 1]):
                return True
            if self._is_ignored("/".join(parts[:depth]), part_is_dir):
                return True
        return False

    def _is_ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether ``.gitignore`` files ignore ``rel`` itself (its parents are checked apart).

        Each ``.gitignore`` from the root down to ``rel``'s directory is consulted, and the
        deepest one with a matching pattern decides, as git does.
        """
        parts = rel.split("/")
        ignored = False
        for depth in range(len(parts)):
            spec = self._gitignore("/".join(parts[:depth]))
            if spec is None:
                continue
            subject = "/".join(parts[depth:]) + ("/" if is_dir else "")
            quick = self._quick.get("/".join(parts[:depth]))
            if quick is not None and quick.match(subject) is None:
                continue
            result = spec.check_file(subject)
            if result.include is not None:
                ignored = result.include
        return ignored

    def _gitignore(self, rel_dir: str) -> GitIgnoreSpec | None:
        if rel_dir not in self._specs:
            spec = None
            real = os.path.realpath(os.path.join(self.root, rel_dir, ".gitignore"))
            if _inside(self.root, real) is not None:
                try:
                    with _open_regular(real) as handle:
                        data = handle.read(MAX_GITIGNORE_BYTES)
                    spec = GitIgnoreSpec.from_lines(data.decode("utf-8", "replace").splitlines())
                except (OSError, SandboxError, ValueError):
                    spec = None
            self._specs[rel_dir] = spec
            self._quick[rel_dir] = _any_pattern(spec) if spec is not None else None
        return self._specs[rel_dir]


def skip_lines(handle: IO[bytes], count: int, deadline: float = math.inf) -> int:
    """Skip ``count`` lines in bounded chunks (a line may be huge); return how many there
    were (a last line without a line ending counts). Past ``deadline`` (``time.monotonic``),
    ``FileTooLargeError``."""
    skipped = 0
    partial = False
    while skipped < count:
        chunk = handle.readline(1 << 20)
        if not chunk:
            return skipped + partial
        partial = not chunk.endswith(b"\n")
        skipped += not partial
        if time.monotonic() > deadline:
            raise FileTooLargeError(
                "Reading up to that offset took too long; the file is too large."
            )
    return skipped


@contextlib.contextmanager
def _open_regular(real: str) -> Iterator[IO[bytes]]:
    """Open a regular file for reading, never through a final symlink, never a FIFO."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    descriptor = os.open(real, flags)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise UnreadableFileError("Only regular files can be read.")
        handle = os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    with handle:
        yield handle


def _any_pattern(spec: GitIgnoreSpec) -> re.Pattern[str] | None:
    """One regex matching whatever any pattern of ``spec`` matches, or None (check each)."""
    sources: list[str] = []
    for pattern in spec.patterns:
        if pattern.include is None:
            continue  # a blank line or a comment
        compiled = getattr(pattern, "regex", None)
        if not isinstance(compiled, re.Pattern) or not isinstance(compiled.pattern, str):
            return None
        sources.append(compiled.pattern.replace("(?P<ps_d>", "(?:"))
    try:
        return re.compile("|".join(f"(?:{source})" for source in sources) or "(?!)")
    except re.error:
        return None


def _read_regular(real: str, limit: int) -> bytes:
    """Up to ``limit`` bytes of a regular file (as ``_open_regular``, without a file object:
    Grep reads many small files)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    descriptor = os.open(real, flags)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise UnreadableFileError("Only regular files can be read.")
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(descriptor, limit - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(descriptor)
    return b"".join(chunks)


def _skipped_dir(name: str) -> bool:
    return name in SKIP_DIRS or name.endswith(SKIP_DIR_SUFFIXES)


def _inside(root: str, real: str) -> str | None:
    """``real`` relative to ``root`` in POSIX form, or None when it is outside."""
    if real == root:
        return ""
    if not real.startswith(root.rstrip(os.sep) + os.sep):
        return None
    return Path(os.path.relpath(real, root)).as_posix()


def _names_visible(rel: str) -> bool:
    try:
        _check_names(rel)
    except RefusedPathError:
        return False
    return True


def _check_names(rel: str) -> None:
    for part in rel.split("/"):
        lower = part.lower()
        if lower == ".git":
            raise RefusedPathError(f"Refused {rel}: .git internals are off limits.")
        if lower and _SECRET.match(lower):
            raise RefusedPathError(
                f"Refused {rel}: it looks like a secret (keys, credentials, .env files) "
                "and is never read."
            )
