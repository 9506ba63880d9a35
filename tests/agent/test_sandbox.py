"""The repository sandbox: one table of what may be seen and read, and every reader held to it.

Each row is a file of one throwaway repository. The sandbox itself, the agent's tools
(``Read``, ``Glob``, ``Grep``) and the offline engine's scan must all give the same answer
for it: a file is either visible to all of them or to none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from feature_planner.agent.providers.repo_scan import find_matching_files
from feature_planner.agent.sandbox import (
    BINARY_SNIFF_BYTES,
    BinaryFileError,
    Budget,
    FileTooLargeError,
    LineRangeError,
    MissingPathError,
    RefusedPathError,
    Sandbox,
    SandboxError,
)
from feature_planner.agent.tools import RepositoryTools
from tests.agent.conftest import write

MARKER = "zebra"
TEXT = f"{MARKER} {MARKER} {MARKER}\n"  # three mentions: enough for the offline scan


@dataclass(frozen=True)
class Case:
    path: str
    reason: str | None  # None: visible; else what a refusal names
    content: str | bytes = TEXT

    def __str__(self) -> str:
        return self.path


CASES = [
    Case("src/app/zebra.py", None),
    Case("docs/zebra-notes.md", None),
    Case("keep.log", None),  # "*.log" is ignored, "!keep.log" takes it back
    Case("src/a/b/c/d/zebra.ts", None),
    # secret-looking names, at any depth
    Case("config/prod.env", "secret"),
    Case("aws-credentials", "secret"),
    Case("release.keystore", "secret"),
    Case("keys/id_ecdsa", "secret"),
    Case("certs/server.pem", "secret"),
    Case("secrets/credentials.json", "secret"),
    Case(".git/zebra", ".git internals"),
    # skipped directories, at any depth (dist, target, vendor, coverage and *.egg-info were
    # skipped by the offline scan only, .venv by the tools only)
    Case("node_modules/lib/index.js", "ignored"),
    Case(".venv/lib/site.py", "ignored"),
    Case("venv/lib/site.py", "ignored"),
    Case("src/__pycache__/zebra.py", "ignored"),
    Case("build/out.js", "ignored"),
    Case("dist/bundle.js", "ignored"),
    Case("target/release/zebra.rs", "ignored"),
    Case("vendor/pkg/zebra.go", "ignored"),
    Case("web/coverage/index.txt", "ignored"),
    Case("zebra.egg-info/PKG-INFO", "ignored"),
    # .gitignore, the root one and nested ones (the offline scan did not read them)
    Case("debug.log", "ignored"),
    Case("ignored/zebra.txt", "ignored"),
    Case("src/generated/zebra.ts", "ignored"),
    # binary: a NUL byte in the first 8 KiB (the offline scan looked at the first 1 KiB)
    Case("assets/zebra.dat", "binary", b"\x00\x01" + TEXT.encode()),
    Case("late-binary.txt", "binary", (TEXT + "x" * 4_000 + "\n").encode() + b"\x00"),
    # symbolic links (created by the fixture)
    Case("outside-link.txt", "outside the root"),
    Case("innocent.txt", "secret"),  # inside, but to a secret
]
VISIBLE = {case.path for case in CASES if case.reason is None}
LINKS = {"outside-link.txt": "../outside/zebra.txt", "innocent.txt": "config/prod.env"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write(tmp_path / "outside/zebra.txt", TEXT)
    write(root / ".gitignore", "*.log\n!keep.log\nignored/\n")
    write(root / "src/.gitignore", "generated/\n")
    for case in CASES:
        if case.path in LINKS:
            (root / case.path).symlink_to(LINKS[case.path])
        else:
            write(root / case.path, case.content)
    return root


# ------------------------------------------------------------------- one table, every reader


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_sandbox_reads_exactly_what_it_lists(root: Path, case: Case) -> None:
    sandbox = Sandbox(root)
    start = sandbox.resolve(".")
    for breadth_first in (False, True):
        listed = {
            found.rel
            for found in sandbox.walk(start, Budget(10_000), breadth_first=breadth_first)
            if not sandbox.is_binary(found)
        }
        assert (case.path in listed) == (case.reason is None)
    if case.reason is None:
        assert sandbox.read_lines(case.path, 1, 1) == (TEXT.rstrip("\n"),)
    else:
        with pytest.raises(SandboxError, match=case.reason):
            sandbox.read_lines(case.path, 1, 1)


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_the_tools_answer_as_the_sandbox(root: Path, case: Case) -> None:
    tools = RepositoryTools(root)
    read = await tools.call("Read", {"path": case.path})
    globbed = (await tools.call("Glob", {"pattern": "**"})).text.splitlines()
    grepped = (await tools.call("Grep", {"pattern": MARKER})).text.splitlines()
    if case.reason is None:
        assert not read.is_error and MARKER in read.text
    else:
        assert read.is_error and case.reason in read.text
        assert TEXT.strip() not in read.text  # the refusal names the file, never its text
    assert (case.path in globbed) == (case.reason is None)
    assert any(line.startswith(f"{case.path}:1: ") for line in grepped) == (case.reason is None)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_offline_scan_answers_as_the_sandbox(root: Path, case: Case) -> None:
    scan = find_matching_files(root, (MARKER,), limit=len(CASES))
    assert not scan.truncated
    assert (case.path in {match.path for match in scan.matches}) == (case.reason is None)


def test_the_table_sees_every_visible_file_and_nothing_else(root: Path) -> None:
    scan = find_matching_files(root, (MARKER,), limit=len(CASES))
    assert {match.path for match in scan.matches} == VISIBLE


# ------------------------------------------------------------------- paths


@pytest.mark.parametrize(
    ("path", "error", "reason"),
    [
        ("/etc/passwd", RefusedPathError, "absolute"),
        ("~/.ssh/id_rsa", RefusedPathError, "absolute"),
        ("C:\\Windows\\win.ini", RefusedPathError, "absolute"),
        ("src/../../outside/zebra.txt", RefusedPathError, "'..'"),
        ("src\\..\\..\\outside", RefusedPathError, "'..'"),
        ("src/app/zebra.py\x00.txt", RefusedPathError, "NUL"),
        ("src/missing.py", MissingPathError, "No such file"),
        ("SRC/.GIT/config", RefusedPathError, ".git internals"),
        ("Config/PROD.ENV", RefusedPathError, "secret"),
    ],
)
def test_resolve_refuses_before_looking_at_the_disk(
    root: Path, path: str, error: type[SandboxError], reason: str
) -> None:
    with pytest.raises(error, match=reason):
        Sandbox(root).resolve(path)


def test_resolve_normalises_the_path_and_says_when_it_went_through_a_link(root: Path) -> None:
    (root / "linked_src").symlink_to("src", target_is_directory=True)
    sandbox = Sandbox(root)

    plain = sandbox.resolve("./src//app/zebra.py ")
    assert (plain.rel, plain.is_dir, plain.linked) == ("src/app/zebra.py", False, False)
    assert plain.real == os.path.realpath(root / "src/app/zebra.py")
    linked = sandbox.resolve("linked_src\\app\\zebra.py")
    assert (linked.rel, linked.real, linked.linked) == ("linked_src/app/zebra.py", plain.real, True)
    assert sandbox.resolve("").rel == "" and sandbox.resolve(".").is_dir


# ------------------------------------------------------------------- read_lines


@pytest.fixture
def lines_repo(tmp_path: Path) -> Path:
    write(tmp_path / "crlf.txt", "one\r\ntwo\r\nthree")
    write(tmp_path / "big.txt", "".join(f"line {n}\n" for n in range(1, 2_001)))
    (tmp_path / "dir").mkdir()
    return tmp_path


def test_read_lines_gives_the_lines_without_their_endings(lines_repo: Path) -> None:
    sandbox = Sandbox(lines_repo)
    assert sandbox.read_lines("crlf.txt", 1, 3) == ("one", "two", "three")
    assert sandbox.read_lines("crlf.txt", 2, 2) == ("two",)
    assert sandbox.read_lines("big.txt", 1_999, 2_000) == ("line 1999", "line 2000")


@pytest.mark.parametrize(
    ("path", "start", "end", "error", "reason"),
    [
        ("crlf.txt", 3, 4, LineRangeError, "has 3 lines; lines 3-4 do not exist"),
        ("crlf.txt", 0, 1, LineRangeError, "not a range"),
        ("crlf.txt", 2, 1, LineRangeError, "not a range"),
        ("dir", 1, 1, RefusedPathError, "is a directory"),
        ("nothing.txt", 1, 1, MissingPathError, "No such file"),
    ],
)
def test_read_lines_refuses_lines_that_are_not_there(
    lines_repo: Path, path: str, start: int, end: int, error: type[SandboxError], reason: str
) -> None:
    with pytest.raises(error, match=reason):
        Sandbox(lines_repo).read_lines(path, start, end)


def test_read_lines_reads_no_further_than_its_byte_limit(lines_repo: Path) -> None:
    sandbox = Sandbox(lines_repo)
    assert sandbox.read_lines("big.txt", 1, 2, max_bytes=100) == ("line 1", "line 2")
    with pytest.raises(FileTooLargeError, match="beyond its first 100 bytes"):
        sandbox.read_lines("big.txt", 1_000, 1_000, max_bytes=100)


def test_a_nul_byte_past_the_sniff_is_text(tmp_path: Path) -> None:
    write(tmp_path / "log.txt", ("x" * BINARY_SNIFF_BYTES + "\n").encode() + b"\x00\n")
    sandbox = Sandbox(tmp_path)
    assert not sandbox.is_binary(sandbox.resolve("log.txt"))
    write(tmp_path / "blob.txt", b"x" * (BINARY_SNIFF_BYTES - 1) + b"\x00")
    with pytest.raises(BinaryFileError):
        sandbox.read_lines("blob.txt", 1, 1)


# ------------------------------------------------------------------- walks


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for rel in ("a/deep/x.txt", "a/y.txt", "b.txt", "c/z.txt", ".hidden/h.txt"):
        write(tmp_path / rel, "text\n")
    return tmp_path


def _walked(root: Path, **options: object) -> list[str]:
    sandbox = Sandbox(root)
    budget = Budget(1_000)
    return [found.rel for found in sandbox.walk(sandbox.resolve("."), budget, **options)]  # type: ignore[arg-type]


def test_a_walk_is_depth_first_in_name_order_unless_asked_breadth_first(tree: Path) -> None:
    assert _walked(tree) == [".hidden/h.txt", "a/deep/x.txt", "a/y.txt", "b.txt", "c/z.txt"]
    assert _walked(tree, breadth_first=True) == [
        "b.txt",
        ".hidden/h.txt",
        "a/y.txt",
        "c/z.txt",
        "a/deep/x.txt",
    ]


def test_a_walk_can_be_narrowed_but_never_widened(tree: Path) -> None:
    hidden = _walked(tree, pass_over=lambda name: name.startswith("."))
    assert hidden == ["a/deep/x.txt", "a/y.txt", "b.txt", "c/z.txt"]
    assert _walked(tree, max_depth=2) == [".hidden/h.txt", "a/y.txt", "b.txt", "c/z.txt"]
    assert _walked(tree, max_depth=1) == ["b.txt"]


def test_a_walk_stops_at_its_budget(tree: Path) -> None:
    sandbox = Sandbox(tree)
    budget = Budget(3)
    listed = [found.rel for found in sandbox.walk(sandbox.resolve("."), budget)]
    assert listed == [".hidden/h.txt"]  # .hidden, its file, a; then the budget is spent
    assert budget.stopped == "entries"
    late = Budget.lasting(-1.0, 1_000)
    assert list(sandbox.walk(sandbox.resolve("."), late)) == []
    assert late.stopped == "time"


def test_a_walk_never_enters_a_symlinked_directory(tree: Path) -> None:
    (tree / "loop").symlink_to(".", target_is_directory=True)
    (tree / "a/y-link.txt").symlink_to("y.txt")
    sandbox = Sandbox(tree)
    found = {f.rel: f for f in sandbox.walk(sandbox.resolve("."), Budget(1_000))}
    assert not any(rel.startswith("loop/") for rel in found)
    assert found["a/y-link.txt"].linked and not found["a/y.txt"].linked
