"""Glob and Grep at scale: complete on 100,000 files, truthful when cut short, and the Sandbox
still the one gate when git lists and searches the files (bench/scale.py measures speed)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from bench.scale import RARE_WORD, expected_python_files, generate

from feature_planner.agent.tools import RepositoryTools
from tests.agent.conftest import write

FILES = 100_000
ENGINES = ["git", "python"]  # git ls-files / git grep, or the Python walk (use_git=False)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100,000 small files (12,000 .py), a git checkout with them untracked, plus an ignored
    build/ and debug.log, a .env, and a secret and an ignored file that are tracked (forced)."""
    root = tmp_path_factory.mktemp("scale") / "repo"
    generate(root, FILES, git=False)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    write(root / "config" / "credentials.json", f'{{"token": "{RARE_WORD}"}}\n')
    write(root / "build" / "tracked.py", f"{RARE_WORD} tracked but ignored\n")
    subprocess.run(
        ["git", "-C", str(root), "add", "-f", ".env", "config", "build/tracked.py"], check=True
    )
    return root


def tools(root: Path, engine: str, **limits: float) -> RepositoryTools:
    return RepositoryTools(root, use_git=engine == "git", **limits)  # type: ignore[arg-type]


async def text_of(tools: RepositoryTools, name: str, **arguments: object) -> str:
    result = await tools.call(name, arguments)
    assert not result.is_error, result.text
    return result.text


@pytest.mark.timeout(300)
@pytest.mark.parametrize("engine", ENGINES)
async def test_grep_finds_a_rare_word_among_100000_files(big: Path, engine: str) -> None:
    text = await text_of(tools(big, engine, time_limit=60), "Grep", pattern=RARE_WORD)
    assert text.splitlines() == [
        f"pkg033/mod0333/file033333.md:5: // the {RARE_WORD} lives here",
        f"pkg066/mod0666/file066667.ts:5: // the {RARE_WORD} lives here",
    ]  # never the ignored build/ and debug.log, the .env or credentials.json, tracked or not
    regex = await text_of(tools(big, engine, time_limit=60), "Grep", pattern=r"zebra\w+ka\b")
    assert regex == text


@pytest.mark.timeout(300)
@pytest.mark.parametrize("engine", ENGINES)
async def test_glob_lists_all_12000_python_files_among_100000(big: Path, engine: str) -> None:
    expected = expected_python_files(FILES)
    assert expected == 12_000
    every = await text_of(
        tools(big, engine, time_limit=60, max_results=20_000), "Glob", pattern="**/*.py"
    )
    listed = every.splitlines()
    assert len(listed) == expected
    assert listed == sorted(listed)
    assert all(line.startswith("pkg") for line in listed)  # not build/bundle.py, tracked or not
    capped = await text_of(tools(big, engine, time_limit=60), "Glob", pattern="**/*.py")
    assert capped.splitlines()[0] == (
        "[truncated: showing 200 of 12,000 matches; narrow the pattern or path]"
    )
    assert capped.splitlines()[1:] == listed[:200]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("engine", ENGINES)
async def test_a_search_cut_short_by_time_says_so_first_and_never_no_match(
    big: Path, engine: str
) -> None:
    hasty = tools(big, engine, time_limit=0.05)
    grepped = await text_of(hasty, "Grep", pattern="no-such-word-anywhere")
    assert grepped.startswith("[truncated: "), grepped
    assert "No matches" not in grepped
    assert re.search(r"(searched [\d,]+ (of [\d,]+ )?files|git grep stopped|listed)", grepped)
    globbed = await text_of(hasty, "Glob", pattern="**/*.py")
    assert globbed.startswith("[truncated: "), globbed
    assert "No files match" not in globbed


# ------------------------------------------------------------------------ git, small repositories


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    files = {
        ".gitignore": "dist/\n*.log\n",
        "src/app.py": "def café():\n    return 'NEEDLE'\n",
        "src/api.ts": "export const url = 'NEEDLE';\r\n",
        "dist/app.js": "NEEDLE in build output\n",
        "trace.log": "NEEDLE in a log\n",
        ".env": "NEEDLE=secret\n",
        "keys/server.pem": "NEEDLE\n",
        "node_modules/x/index.js": "NEEDLE vendored\n",
        "data.bin": b"\x00\x01NEEDLE\n",
    }
    for rel, content in files.items():
        write(root / rel, content)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-f", "."], check=True)  # even the ignored
    (root / "linked").symlink_to(Path("src"), target_is_directory=True)
    return root


async def test_git_results_pass_through_the_sandbox(checkout: Path) -> None:
    repo_tools = RepositoryTools(checkout)
    grepped = await text_of(repo_tools, "Grep", pattern="NEEDLE")
    assert grepped.splitlines() == [
        "src/api.ts:1: export const url = 'NEEDLE';",
        "src/app.py:2:     return 'NEEDLE'",
    ]  # tracked but ignored, secret, vendored and binary files never show
    listed = await text_of(repo_tools, "Glob", pattern="**")
    assert listed.splitlines() == [".gitignore", "src/api.ts", "src/app.py"]


async def test_git_grep_regex_flavour_matches_python(checkout: Path) -> None:
    repo_tools = RepositoryTools(checkout)
    # \w is Unicode-aware as in Python ((*UCP)); {,2} is read as Python does (searched in
    # Python over git's list); a "\r" before the line end stays part of the line, as in Python.
    assert await text_of(repo_tools, "Grep", pattern=r"caf\w\(") == "src/app.py:1: def café():"
    assert await text_of(repo_tools, "Grep", pattern=r"NEE{,2}DLE'$") == (
        "src/app.py:2:     return 'NEEDLE'"
    )
    assert await text_of(repo_tools, "Grep", pattern="needle", case_insensitive=True) == (
        "src/api.ts:1: export const url = 'NEEDLE';\nsrc/app.py:2:     return 'NEEDLE'"
    )


async def test_git_paths_through_a_symlinked_folder_keep_its_name(checkout: Path) -> None:
    repo_tools = RepositoryTools(checkout)
    assert await text_of(repo_tools, "Grep", pattern="NEEDLE", path="linked", glob="*.py") == (
        "linked/app.py:2:     return 'NEEDLE'"
    )
    assert await text_of(repo_tools, "Glob", pattern="*.ts", path="linked") == "linked/api.ts"


async def test_a_folder_inside_a_checkout_is_searched_by_the_walk(checkout: Path) -> None:
    inner = RepositoryTools(checkout / "src")  # not the top of the working tree: no git
    assert await text_of(inner, "Grep", pattern="NEEDLE", glob="*.py") == (
        "app.py:2:     return 'NEEDLE'"
    )
