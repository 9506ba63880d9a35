"""What a new user gets: the wheel, a plain install with no extras, and `scripts/serve` on a
fresh copy of the checkout.

The test venv holds every extra and every test tool, so a runtime import that only an extra
or a test tool brings in would pass everywhere else in the suite; here the package is built
and installed alone, into an empty venv, twice: at the versions uv.lock pins (as constraints
only: a dependency the package does not declare is not installed), and at the lowest versions
that pyproject.toml's bounds allow, so that those bounds stay true for people who
`pip install` the package.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from feature_planner.serving import free_port

pytestmark = pytest.mark.timeout(300)

CHECKOUT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).parent / "uv"  # the lock's uv, from the "test" group
# The lowest versions are resolved as the registry stood on this day, so that a later
# release of a dependency's dependency cannot change what this test installs.
LOWER_BOUNDS_AS_OF = "2026-12-01T00:00:00Z"
LOGIN_LINK = re.compile(r"^Open (http://\S+/auth/login\?token=\S+) to log in as (\S+)$", re.M)


def _run(command: Sequence[str | Path], cwd: Path, **env: str) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _copy_checkout(target: Path) -> Path:
    """The checkout's files as a fresh clone has them (committed or not, nothing ignored):
    no .venv, no .cache, no build output."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=CHECKOUT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = CHECKOUT / os.fsdecode(name)
        if source.is_file():  # a file deleted but not yet committed is still listed
            (target / source.relative_to(CHECKOUT)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / source.relative_to(CHECKOUT))
    return target


def _clean_environment(home: Path) -> dict[str, str]:
    """No settings of the developer's, no venv of the suite's; user data in ``home``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FEATURE_PLANNER_", "SENTRY_", "OTEL_", "VIRTUAL_ENV"))
    }
    env["XDG_DATA_HOME"] = str(home)
    return env


@dataclass
class Installed:
    versions: str
    wheel: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the checkout; the lock's versions as constraints."""
    root = tmp_path_factory.mktemp("build")
    source = _copy_checkout(root / "source")
    _run([UV, "build", "--wheel", "--out-dir", root / "dist", source], root)
    _run(
        [
            UV,
            "export",
            "--locked",
            "--all-extras",
            "--all-groups",
            "--no-hashes",
            "--no-emit-project",
            "--no-header",
            "--output-file",
            root / "constraints.txt",
        ],
        source,
    )
    (built,) = (root / "dist").glob("feature_planner-*.whl")
    return built


@pytest.fixture(scope="module", params=["locked", "lower-bounds"])
def installed(
    request: pytest.FixtureRequest, wheel: Path, tmp_path_factory: pytest.TempPathFactory
) -> Installed:
    """The wheel installed with no extras into a new venv, at the lock's versions or at the
    lowest ones pyproject.toml allows."""
    venv = tmp_path_factory.mktemp(request.param) / "venv"
    _run([UV, "venv", "--quiet", "--python", sys.executable, venv], venv.parent)
    versions = (
        ["--constraints", wheel.parent.parent / "constraints.txt"]
        if request.param == "locked"
        else ["--resolution", "lowest-direct", "--exclude-newer", LOWER_BOUNDS_AS_OF]
    )
    python = venv / "bin" / "python"
    _run([UV, "pip", "install", "--quiet", "--python", python, *versions, wheel], venv.parent)
    return Installed(request.param, wheel, venv)


def test_the_wheel_carries_the_page_the_migrations_and_the_type_marker(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    package = CHECKOUT / "src" / "feature_planner"
    static = package / "web" / "static"
    expected = {f"feature_planner/web/static/{f.name}" for f in static.iterdir() if f.is_file()}
    assert expected, "the page has no static files"
    migrations = {
        path.relative_to(package.parent).as_posix()
        for pattern in ("*.py", "*.mako", "versions/*.py")
        for path in (package / "migrations").glob(pattern)
    }
    assert "feature_planner/migrations/versions/0001_custom_agents.py" in migrations
    assert expected | migrations | {"feature_planner/py.typed"} <= names


def test_the_install_brings_no_optional_extra(installed: Installed) -> None:
    listed = _run([UV, "pip", "list", "--python", installed.python], installed.venv)
    for distribution in ("claude-agent-sdk", "sentry-sdk", "opentelemetry-sdk", "pytest"):
        assert distribution not in listed


def test_every_module_imports_alone_in_a_fresh_interpreter(installed: Installed) -> None:
    package = Path(
        _run(
            [installed.python, "-c", "import feature_planner; print(feature_planner.__file__)"],
            installed.venv,
        ).strip()
    ).parent
    modules = sorted(
        ".".join(path.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in package.rglob("*.py")
        if path.name != "__main__.py"  # runs the command: tested by the serve tests
        # Alembic's scripts, which Alembic loads (the serve tests migrate a new database)
        and (path.parent.name, path.name) != ("migrations", "env.py")
        and path.parent.name != "versions"
    )
    assert len(modules) > 40
    # Import cycles do not depend on versions: at the lower bounds, one interpreter that
    # imports everything shows that each API the code uses is there.
    groups = [[module] for module in modules] if installed.versions == "locked" else [modules]

    def imports(group: list[str]) -> tuple[str, subprocess.CompletedProcess[str]]:
        command = [str(installed.python), "-c", "".join(f"import {m}\n" for m in group)]
        run = subprocess.run(command, capture_output=True, text=True, timeout=60)
        return ", ".join(group) if len(group) == 1 else installed.versions, run

    with ThreadPoolExecutor(max_workers=4) as pool:
        failed = {
            module: result.stderr.strip().splitlines()[-1]
            for module, result in pool.map(imports, groups)
            if result.returncode != 0
        }
    assert not failed, failed


@contextlib.contextmanager
def _serving(
    command: Sequence[str | Path], cwd: Path, env: dict[str, str], startup_s: float
) -> Iterator[tuple[str, str]]:
    """Start ``command`` (a ``serve`` on a free port); the base URL and what it printed by
    the time ``/healthz`` answered."""
    port = free_port()
    log = cwd / f"serve-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*map(str, command), "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            assert process.poll() is None, f"it exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no /healthz in {startup_s} s:\n{log.read_text()}"
            time.sleep(0.1)
        yield url, log.read_text()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def _assert_serves_the_page_after_login(url: str, printed: str) -> None:
    links = LOGIN_LINK.findall(printed)
    assert links, f"no login link printed:\n{printed}"
    link, _user = links[0]
    assert link.startswith(url)
    with httpx.Client(base_url=url) as browser:
        login = browser.get(link.removeprefix(url))
        assert login.is_redirect, login.text
        assert browser.cookies, "the login link set no session cookie"
        page = browser.get("/")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        scripts = re.findall(r'<script[^>]+src="([^"]+)"', page.text)
        styles = re.findall(r'<link[^>]+rel="stylesheet"[^>]+href="([^"]+)"', page.text)
        assert scripts and styles, page.text
        for asset in scripts + styles:
            assert browser.get(asset).status_code == 200, asset


@pytest.mark.parametrize("launcher", ["feature-planner", "python -m feature_planner"])
def test_the_installed_package_serves_the_page(
    installed: Installed, launcher: str, tmp_path: Path
) -> None:
    command: list[str | Path] = (
        [installed.venv / "bin" / "feature-planner", "serve"]
        if launcher == "feature-planner"
        else [installed.python, "-m", "feature_planner", "serve"]
    )
    repository = tmp_path / "shop"
    repository.mkdir()
    (repository / "README.md").write_text("# Shop\n")
    env = _clean_environment(tmp_path / "data")
    with _serving([*command, "--repository", repository], tmp_path, env, 30) as (url, printed):
        _assert_serves_the_page_after_login(url, printed)


def test_a_missing_extra_is_named_in_one_line(installed: Installed, tmp_path: Path) -> None:
    env = _clean_environment(tmp_path / "data")
    claude = subprocess.run(
        [installed.venv / "bin" / "feature-planner", "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env={**env, "FEATURE_PLANNER_PROVIDER": "claude-agent-sdk", "ANTHROPIC_API_KEY": "k"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert claude.returncode == 2
    assert "pip install 'feature-planner[claude]'" in claude.stderr
    assert len(claude.stderr.strip().splitlines()) == 1, claude.stderr
    assert "Traceback" not in claude.stdout + claude.stderr

    observed = {
        **env,
        "SENTRY_DSN": "http://public@127.0.0.1:9/1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
    }
    with _serving(
        [installed.venv / "bin" / "feature-planner", "serve"], tmp_path, observed, 30
    ) as (_url, printed):
        assert "pip install 'feature-planner[sentry]'" in printed
        assert "pip install 'feature-planner[otel]'" in printed


def test_a_suggestion_streams_to_the_end_from_the_terminal(
    installed: Installed, tmp_path: Path
) -> None:
    """Phase 1, Phase 2 and the client, through the installed command alone."""
    page = tmp_path / "src" / "app" / "collections" / "page.tsx"
    page.parent.mkdir(parents=True)
    page.write_text("export default function CollectionsPage() { return null }\n")
    (tmp_path / "README.md").write_text("# Shop\n")
    result = subprocess.run(
        [installed.venv / "bin" / "feature-planner", "suggest", "Collections page", "--json"],
        cwd=tmp_path,
        env=_clean_environment(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["event"] == "connected"
    assert events[-1]["event"] == "complete"
    assert events[-1]["data"]["suggestions"]


def test_scripts_serve_sets_up_a_fresh_clone_and_serves(tmp_path: Path) -> None:
    """The README's first command, as a new user runs it: no .venv, uv's cache may be warm."""
    clone = _copy_checkout(tmp_path / "clone")
    env = _clean_environment(tmp_path / "data")
    env.pop("PYTHON", None)
    with _serving([clone / "scripts" / "serve"], clone, env, 240) as (url, printed):
        assert (clone / ".venv" / "bin" / "feature-planner").exists()
        _assert_serves_the_page_after_login(url, printed)
