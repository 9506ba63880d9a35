"""A first run that explains itself: ``serve`` refuses what would fail, in one line, before it
prints anything; the signing key survives restarts; ``login-link`` prints a link on demand.

Everything here runs ``feature-planner`` as a real process, on real ports, with a data
directory (``XDG_DATA_HOME``) of the test's own.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from feature_planner.config import ConfigurationError, load_settings
from feature_planner.secret_key import load_or_create_secret_key, signing_key
from feature_planner.serving import free_port
from tests.redis_server import RedisServer
from tests.test_cli import cli_env, run_cli, wait_until_healthy

LOGIN_LINE = re.compile(
    r"^Open (?P<link>http://\S+/auth/login\?token=\S+) to log in as (?P<user>\S+)$"
)
AGENT = "/api/feature-planner/agent"  # any route that needs a login answers 401 without one


@pytest.fixture
def data_home(tmp_path: Path) -> Path:
    home = tmp_path / "data"
    home.mkdir()
    return home


@pytest.fixture
def env(data_home: Path, repo: Path) -> dict[str, str]:
    """No FEATURE_PLANNER_* setting but the repository: the embedded defaults."""
    return cli_env(XDG_DATA_HOME=str(data_home), FEATURE_PLANNER_REPOSITORY=str(repo))


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


# -- serve refuses, in one line, before it prints anything ----------------------------------


@contextmanager
def busy_port() -> Iterator[int]:
    """A port that another program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_serve_on_a_port_in_use_exits_2_naming_the_port_and_the_fix(
    env: dict[str, str], tmp_path: Path
) -> None:
    with busy_port() as port:
        result = run_cli("serve", "--port", str(port), cwd=tmp_path, env=env)

    assert result.returncode == 2
    assert result.stdout == ""  # no banner, no login link
    line = one_line(result.stderr)
    assert f"port {port} is in use" in line
    assert "--port" in line
    assert "FEATURE_PLANNER_PORT" in line


def test_serve_on_a_port_from_the_environment_that_is_in_use_exits_2(
    env: dict[str, str], tmp_path: Path
) -> None:
    with busy_port() as port:
        result = run_cli("serve", cwd=tmp_path, env={**env, "FEATURE_PLANNER_PORT": str(port)})

    assert result.returncode == 2
    assert result.stdout == ""
    assert f"port {port} is in use" in one_line(result.stderr)


def test_serve_with_workers_and_no_redis_exits_2_before_printing(
    env: dict[str, str], tmp_path: Path
) -> None:
    result = run_cli("serve", "--port", str(free_port()), "--workers", "2", cwd=tmp_path, env=env)

    assert result.returncode == 2
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert "--workers needs Redis" in line
    assert "--redis-url" in line


def test_serve_with_a_redis_nobody_answers_at_exits_2_with_the_url_redacted(
    env: dict[str, str], tmp_path: Path
) -> None:
    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    result = run_cli(
        "serve", "--port", str(free_port()), "--redis-url", url, cwd=tmp_path, env=env, timeout=30
    )

    assert result.returncode == 2
    assert time.monotonic() - started < 20  # refused at once, not served and retried
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert "hunter2-secret" not in line
    assert url.replace("hunter2-secret", "***") in line
    assert "does not answer" in line
    assert "--redis-url" in line


def test_a_redis_url_from_the_environment_is_named_as_the_variable(
    env: dict[str, str], tmp_path: Path
) -> None:
    url = f"redis://user:pw-in-userinfo@127.0.0.1:{free_port()}/0?password=pw-in-query"
    result = run_cli(
        "serve",
        "--port",
        str(free_port()),
        cwd=tmp_path,
        env={**env, "FEATURE_PLANNER_REDIS_URL": url},
        timeout=30,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert "pw-in-userinfo" not in line
    assert "pw-in-query" not in line
    assert "redis://user:***@127.0.0.1:" in line
    assert "FEATURE_PLANNER_REDIS_URL" in line
    assert "--redis-url" not in line


def test_a_redis_that_answers_lets_serve_start(
    env: dict[str, str], tmp_path: Path, redis_server: RedisServer
) -> None:
    with serving(env, tmp_path, "--redis-url", redis_server.url) as server:
        assert httpx.get(f"{server.url}/readyz").status_code == 200


BAD_FLAGS = [
    ("--port", "99999", "FEATURE_PLANNER_PORT"),
    ("--log-level", "loud", "FEATURE_PLANNER_LOG_LEVEL"),
    ("--provider", "nope", "FEATURE_PLANNER_PROVIDER"),
    ("--repository", "/does/not/exist", "FEATURE_PLANNER_REPOSITORY"),
]


@pytest.mark.parametrize(("flag", "value", "variable"), BAD_FLAGS)
def test_a_bad_flag_is_named_as_the_flag(
    env: dict[str, str], tmp_path: Path, flag: str, value: str, variable: str
) -> None:
    result = run_cli("serve", flag, value, cwd=tmp_path, env=env)

    assert result.returncode == 2
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert f"{flag}: " in line
    assert variable not in line


@pytest.mark.parametrize(("flag", "value", "variable"), BAD_FLAGS[:2])
def test_a_bad_variable_is_named_as_the_variable(
    env: dict[str, str], tmp_path: Path, flag: str, value: str, variable: str
) -> None:
    result = run_cli("serve", cwd=tmp_path, env={**env, variable: value})

    assert result.returncode == 2
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert f"{variable}: " in line
    assert flag not in line


def test_load_settings_names_a_flag_only_for_the_settings_given_as_flags() -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_settings(flag_names={"port": "--port"}, port=99999, log_level="loud")

    message = str(raised.value)
    assert "--port: " in message
    assert "FEATURE_PLANNER_PORT" not in message
    assert "FEATURE_PLANNER_LOG_LEVEL: " in message


# -- the signing key, kept in the data directory -------------------------------------------


def test_the_key_is_made_once_with_mode_0600_and_then_read(tmp_path: Path) -> None:
    path = tmp_path / "new" / "feature-planner" / "secret-key"

    first = load_or_create_secret_key(path)

    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_secret_key(path) == first
    assert os.listdir(path.parent) == ["secret-key"]  # no temporary file left behind


def test_processes_that_start_at_once_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "feature-planner" / "secret-key"
    go = tmp_path / "go"
    program = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from feature_planner.secret_key import load_or_create_secret_key\n"
        f"while not Path({str(go)!r}).exists(): time.sleep(0.001)\n"
        f"print(load_or_create_secret_key(Path({str(path)!r})))\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, text=True)
        for _ in range(8)
    ]
    time.sleep(1.0)  # every process is importing, then waiting for the go
    go.touch()
    keys = {process.communicate(timeout=30)[0].strip() for process in processes}

    assert all(process.returncode == 0 for process in processes)
    assert keys == {path.read_text().strip()}
    assert sorted(os.listdir(path.parent)) == ["secret-key"]


def test_a_key_file_without_a_usable_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret-key"
    path.write_text("short\n")

    with pytest.raises(ValueError, match="at least 32 characters"):
        load_or_create_secret_key(path)


def test_settings_sign_with_the_kept_key_unless_one_is_configured(
    data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    monkeypatch.delenv("FEATURE_PLANNER_SECRET_KEY", raising=False)

    kept = signing_key(load_settings())

    assert (data_home / "feature-planner" / "secret-key").read_text().strip() == kept
    assert signing_key(load_settings()) == kept
    configured = "a-configured-key-that-is-long-enough-0123456789"
    assert signing_key(load_settings(secret_key=configured)) == configured


def test_a_data_directory_that_cannot_hold_the_key_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(not_a_directory))
    monkeypatch.delenv("FEATURE_PLANNER_SECRET_KEY", raising=False)

    with pytest.raises(ConfigurationError, match="set FEATURE_PLANNER_SECRET_KEY"):
        signing_key(load_settings())


def test_serve_exits_2_when_the_key_cannot_be_kept(tmp_path: Path, repo: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    env = cli_env(XDG_DATA_HOME=str(not_a_directory), FEATURE_PLANNER_REPOSITORY=str(repo))
    database = f"sqlite:///{tmp_path / 'agents.db'}"
    env["FEATURE_PLANNER_DATABASE_URL"] = database

    result = run_cli("serve", "--port", str(free_port()), cwd=tmp_path, env=env)

    assert result.returncode == 2
    assert result.stdout == ""
    assert "FEATURE_PLANNER_SECRET_KEY" in one_line(result.stderr)


# -- a running server, its login links, and restarts ---------------------------------------


@dataclass
class Served:
    """``feature-planner serve`` running as a process; what it printed is in ``output``."""

    url: str
    output: Path

    def login_links(self) -> dict[str, str]:
        lines = self.output.read_text(errors="replace").splitlines()
        matches = (LOGIN_LINE.match(line) for line in lines)
        return {match["user"]: match["link"] for match in matches if match}


@contextmanager
def serving(env: dict[str, str], cwd: Path, *args: str) -> Iterator[Served]:
    port = free_port()
    output = cwd / f"serve-{port}.out"
    command = [sys.executable, "-m", "feature_planner.cli", "serve", "--port", str(port), *args]
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "--log-level", "warning"],
            cwd=cwd,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers too are in its group
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, process)
        yield Served(url, output)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def log_in(link: str) -> tuple[httpx.Response, str]:
    """Open the link as a browser does; the page it lands on and the session cookie."""
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        page = browser.get(link)
        return page, browser.cookies["fp_session"]


def as_logged_in(url: str, session: str) -> httpx.Response:
    return httpx.get(f"{url}{AGENT}", headers={"cookie": f"fp_session={session}"}, timeout=10)


def test_a_session_from_before_a_restart_works_after_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    with serving(env, tmp_path) as first:
        page, session = log_in(first.login_links()["local"])
        assert page.status_code == 200
        assert as_logged_in(first.url, session).status_code == 200

    with serving(env, tmp_path) as restarted:
        assert as_logged_in(restarted.url, session).status_code == 200

    key = (Path(env["XDG_DATA_HOME"]) / "feature-planner" / "secret-key").read_text().strip()
    assert key not in first.output.read_text() + restarted.output.read_text()


def test_workers_sign_with_the_kept_key(
    env: dict[str, str], tmp_path: Path, redis_server: RedisServer
) -> None:
    """A session from a one-process server works on every worker of the next start."""
    with serving(env, tmp_path) as first:
        _, session = log_in(first.login_links()["local"])

    with serving(env, tmp_path, "--workers", "2", "--redis-url", redis_server.url) as workers:
        answers = {as_logged_in(workers.url, session).status_code for _ in range(12)}
        page, _ = log_in(workers.login_links()["local"])

    assert answers == {200}
    assert page.status_code == 200


def test_login_link_prints_a_link_a_running_server_accepts(
    env: dict[str, str], tmp_path: Path
) -> None:
    with serving(env, tmp_path) as server:
        port = server.url.rsplit(":", 1)[1]
        result = run_cli("login-link", "--port", port, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        match = LOGIN_LINE.match(result.stdout.strip())
        assert match is not None, result.stdout
        assert match["user"] == "local"
        assert match["link"] != server.login_links()["local"]

        with httpx.Client(follow_redirects=True, timeout=10) as browser:
            page = browser.get(match["link"])
            assert page.status_code == 200
            assert page.url == httpx.URL(f"{server.url}/")
            assert "text/html" in page.headers["content-type"]
            session = browser.cookies["fp_session"]
            assert as_logged_in(server.url, session).status_code == 200
            # The same link again, in the browser it logged in: the page, not an error.
            again = browser.get(match["link"])
            assert again.status_code == 200
            assert again.url == httpx.URL(f"{server.url}/")
        assert httpx.get(match["link"]).status_code == 401  # used, and no session


def test_login_link_for_one_user(env: dict[str, str], tmp_path: Path) -> None:
    users = {**env, "FEATURE_PLANNER_USERS": "alice=tok-a,bob=tok-b"}
    result = run_cli("login-link", "bob", "--port", "9000", cwd=tmp_path, env=users)

    assert result.returncode == 0, result.stderr
    match = LOGIN_LINE.match(result.stdout.strip())
    assert match is not None, result.stdout
    assert match["user"] == "bob"
    assert match["link"].startswith("http://127.0.0.1:9000/auth/login?token=")


def test_login_link_for_an_unknown_user_lists_the_users(
    env: dict[str, str], tmp_path: Path
) -> None:
    users = {**env, "FEATURE_PLANNER_USERS": "alice=tok-a,bob=tok-b"}
    result = run_cli("login-link", "carol", cwd=tmp_path, env=users)

    assert result.returncode == 2
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert "carol" in line
    assert "alice, bob" in line


def test_login_link_outside_local_mode_says_links_are_local_only(
    env: dict[str, str], tmp_path: Path
) -> None:
    api_keys = {
        **env,
        "FEATURE_PLANNER_AUTH": "api-key",
        "FEATURE_PLANNER_API_KEYS": f"sha256:{'a' * 64}=alice",
    }
    result = run_cli("login-link", cwd=tmp_path, env=api_keys)

    assert result.returncode == 2
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert "only in local" in line
    assert "api-key" in line
