"""The ``feature-planner`` command, run as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from feature_planner.client import FeaturePlannerClient
from feature_planner.config import load_settings
from feature_planner.models import ConnectedEvent, ErrorEvent
from feature_planner.serving import BackgroundServer, free_port
from feature_planner.web.app import create_app

CONSOLE_SCRIPT = Path(sys.executable).with_name("feature-planner")
SUGGEST = ["suggest", "Collections page", "--type", "enhancement", "--priority", "high"]


def cli_env(**variables: str) -> dict[str, str]:
    """The test's environment without any FEATURE_PLANNER_* setting, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURE_PLANNER_")}
    env.update(variables)
    return env


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 40
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feature_planner.cli", *args],
        cwd=cwd,
        env=env or cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "src" / "app" / "collections").mkdir(parents=True)
    (repo / "src" / "app" / "collections" / "page.tsx").write_text(
        "export default function CollectionsPage() {\n  return <CollectionGrid />;\n}\n"
    )
    (repo / "README.md").write_text("# Shop\n\nA small shop with collections and a cart.\n")
    (repo / "package.json").write_text('{"name": "shop", "dependencies": {"next": "15"}}\n')
    return repo


def scripted_server(repository: Path, **overrides: Any) -> BackgroundServer:
    settings: dict[str, Any] = {
        "provider": "scripted",
        "users": "alice=tok-a,bob=tok-b",
        "scripted_chunks": 30,
        "scripted_chunk_size": 7,
        "scripted_interval_ms": 2,
        "throttle_ms": 0,
        "repository": str(repository),
    }
    settings.update(overrides)
    return BackgroundServer(create_app(load_settings(**settings)))


@pytest.fixture
def server(repository: Path) -> Iterator[str]:
    with scripted_server(repository) as background:
        yield background.url


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_suggest_in_process_prints_the_suggestions(repository: Path) -> None:
    env = cli_env(FEATURE_PLANNER_OFFLINE_INTERVAL_MS="0")
    result = run_cli(*SUGGEST, "--repository", str(repository), cwd=repository, env=env)

    assert result.returncode == 0, result.stderr
    assert "1. " in result.stdout
    assert "•" in result.stdout
    assert "offline" in result.stdout  # the provider line
    assert "Traceback" not in result.stderr


def test_suggest_json_prints_only_json_lines_ending_with_complete(repository: Path) -> None:
    env = cli_env(
        FEATURE_PLANNER_OFFLINE_INTERVAL_MS="0", FEATURE_PLANNER_REPOSITORY=str(repository)
    )
    result = run_cli(*SUGGEST, "--json", cwd=repository, env=env)

    assert result.returncode == 0, result.stderr
    events = json_lines(result.stdout)
    assert events[0]["event"] == "connected"
    assert events[0]["id"] == 0
    assert events[-1]["event"] == "complete"
    assert events[-1]["data"]["suggestions"]
    ids = [e["id"] for e in events[1:]]
    assert ids == list(range(1, len(ids) + 1))
    names = {"connected", "delta", "activity", "suggestion", "progress", "complete"}
    assert {e["event"] for e in events} <= names
    # Each suggestion as its own line too, as the server sent it: the same as in complete.
    sent = [e["data"] for e in events if e["event"] == "suggestion"]
    if sent:
        assert [s["index"] for s in sent] == list(range(len(sent)))
        assert [s["suggestion"] for s in sent] == events[-1]["data"]["suggestions"]
    assert any(e["event"] == "delta" and e["data"]["text"] for e in events)


def test_suggest_against_a_server_with_a_token(server: str, repository: Path) -> None:
    result = run_cli(*SUGGEST, "--server", server, "--token", "tok-a", cwd=repository)

    assert result.returncode == 0, result.stderr
    assert "1. " in result.stdout
    assert "scripted" in result.stdout
    assert "no AI model was used" in result.stdout  # the complete event's notice


def test_suggest_reads_the_token_from_the_environment(server: str, repository: Path) -> None:
    env = cli_env(FEATURE_PLANNER_TOKEN="tok-b")
    result = run_cli(*SUGGEST, "--server", server, "--json", cwd=repository, env=env)

    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["event"] == "complete"


def test_suggest_with_a_bad_token_exits_3_naming_the_option(server: str, repository: Path) -> None:
    result = run_cli(*SUGGEST, "--server", server, "--token", "wrong", cwd=repository)

    assert result.returncode == 3
    line = result.stderr.strip()
    assert "\n" not in line
    assert "UNAUTHORIZED" in line
    assert "--token" in line
    assert "FEATURE_PLANNER_TOKEN" in line
    assert result.stdout == ""


def test_suggest_without_a_token_names_the_option(server: str, repository: Path) -> None:
    result = run_cli(*SUGGEST, "--server", server, cwd=repository)

    assert result.returncode == 3
    assert "--token" in result.stderr


def test_suggest_against_a_server_nobody_runs_names_the_url_and_the_option(
    repository: Path,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli(*SUGGEST, "--server", url, "--token", "tok", cwd=repository)

    assert result.returncode == 3
    assert result.stdout == ""
    line = result.stderr.strip()
    assert "\n" not in line
    assert f"cannot reach {url} (connection refused)" in line
    assert "--server" in line
    assert "Traceback" not in result.stderr


def test_suggest_with_a_server_that_is_not_a_url_exits_2(repository: Path) -> None:
    result = run_cli(*SUGGEST, "--server", "localhost:8000", cwd=repository)

    assert result.returncode == 2
    assert "--server localhost:8000 is not a URL" in result.stderr


def test_suggest_with_an_invalid_type_exits_2_listing_the_choices(repository: Path) -> None:
    result = run_cli("suggest", "Collections page", "--type", "bogus", cwd=repository)

    assert result.returncode == 2
    for choice in ("enhancement", "new-capability", "optimization", "ui-improvement"):
        assert choice in result.stderr


def test_suggest_exits_1_on_an_error_event(repository: Path) -> None:
    with scripted_server(repository, scripted_fail_at=5) as background:
        result = run_cli(*SUGGEST, "--server", background.url, "--token", "tok-a", cwd=repository)

    assert result.returncode == 1
    assert "PROVIDER_ERROR" in result.stderr
    assert "failed on purpose" in result.stderr


def test_ctrl_c_cancels_the_job_on_the_server(repository: Path) -> None:
    with scripted_server(repository, scripted_interval_ms=100) as background:
        server = ["--server", background.url, "--token", "tok-a"]
        process = subprocess.Popen(
            [sys.executable, "-m", "feature_planner.cli", *SUGGEST, "--json", *server],
            cwd=repository,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        job_id = json.loads(process.stdout.readline())["data"]["jobId"]
        assert json.loads(process.stdout.readline())["event"] == "delta"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)

        with FeaturePlannerClient(background.url, "tok-a") as client:
            events = list(client.stream(job_id, last_event_id=0))

    assert process.returncode == 130, stderr
    assert isinstance(events[0], ConnectedEvent)
    final = events[-1]
    assert isinstance(final, ErrorEvent)
    assert final.code == "CANCELLED"


def test_serve_with_a_bad_repository_exits_2_naming_the_flag(tmp_path: Path) -> None:
    result = run_cli("serve", "--repository", str(tmp_path / "missing"), cwd=tmp_path)

    assert result.returncode == 2
    assert "--repository: " in result.stderr
    assert "Traceback" not in result.stderr


def test_suggest_in_process_names_a_bad_repository_as_the_flag(tmp_path: Path) -> None:
    result = run_cli(*SUGGEST, "--repository", str(tmp_path / "missing"), cwd=tmp_path)

    assert result.returncode == 2
    assert "--repository: " in result.stderr


def test_serve_end_to_end_with_suggest_against_it(repository: Path, tmp_path: Path) -> None:
    port = free_port()
    env = cli_env(
        FEATURE_PLANNER_USERS="alice=tok",
        FEATURE_PLANNER_REPOSITORY=str(repository),
        FEATURE_PLANNER_OFFLINE_INTERVAL_MS="0",
    )
    stdout_path, stderr_path = tmp_path / "serve.out", tmp_path / "serve.err"
    with stdout_path.open("w") as stdout, stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [str(CONSOLE_SCRIPT), "serve", "--port", str(port), "--log-level", "warning"],
            cwd=tmp_path,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, process)
        result = run_cli(*SUGGEST, "--server", url, "--token", "tok", cwd=tmp_path)
    finally:
        process.terminate()
        process.wait(timeout=15)

    assert result.returncode == 0, result.stderr
    assert "1. " in result.stdout
    assert f"Open {url}/auth/login?token=" in stdout_path.read_text()
    assert "to log in as alice" in stdout_path.read_text()


def wait_until_healthy(url: str, process: subprocess.Popen[Any], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not become healthy")
