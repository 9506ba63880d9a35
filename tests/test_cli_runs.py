"""``feature-planner runs`` and ``show``, run as real subprocesses against a real server."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from feature_planner.client import EventEnvelope, FeaturePlannerClient
from feature_planner.models import (
    CompleteEvent,
    ConnectedEvent,
    DeltaEvent,
    FeatureType,
    SuggestionRequest,
)
from feature_planner.serving import BackgroundServer, free_port
from tests.test_cli import cli_env, run_cli, scripted_server
from tests.test_client import REQUEST


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("# Shop\n\nA small shop with collections and a cart.\n")
    page = repo / "app" / "collections" / "page.tsx"
    page.parent.mkdir(parents=True)
    # Something the offline engine can ground a suggestion on (a note left in the code).
    page.write_text(
        "export default function CollectionsPage() {\n"
        "  // TODO: let people sort the collections\n"
        "  return <ul />\n"
        "}\n"
    )
    return repo


def history_server(repository: Path, **overrides: Any) -> BackgroundServer:
    return scripted_server(
        repository,
        database_url=f"sqlite:///{repository.parent}/history.db",
        create_limit=1000,
        **overrides,
    )


@pytest.fixture
def server(repository: Path) -> Iterator[str]:
    with history_server(repository) as background:
        yield background.url


def as_alice(url: str) -> list[str]:
    return ["--server", url, "--token", "tok-a"]


def finished_job(url: str, request: SuggestionRequest = REQUEST) -> list[EventEnvelope]:
    with FeaturePlannerClient(url, "tok-a") as client:
        return list(client.stream_envelopes(client.create_job(request)))


def job_id_of(envelopes: list[EventEnvelope]) -> str:
    connected = envelopes[0].event
    assert isinstance(connected, ConnectedEvent)
    return connected.job_id


def text_of(envelopes: list[EventEnvelope]) -> str:
    return "".join(e.event.text for e in envelopes if isinstance(e.event, DeltaEvent))


# --- runs -------------------------------------------------------------------------------------


def test_runs_lists_the_jobs_newest_first(server: str, repository: Path) -> None:
    older_id = job_id_of(finished_job(server))
    with FeaturePlannerClient(server, "tok-a") as client:
        newer = client.create_job(
            REQUEST.model_copy(
                update={"page_or_component": "Checkout", "feature_type": FeatureType.INTEGRATION}
            )
        )
    result = run_cli("runs", *as_alice(server), cwd=repository)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = "JOB STATE PAGE OR COMPONENT TYPE CREATED SUGGESTIONS"
    assert lines[0].split() == header.split()
    rows = [line.split() for line in lines[1:] if line.strip()]
    assert [row[0] for row in rows] == [newer.job_id, older_id]
    assert rows[0][1:4] == ["pending", "Checkout", "integration"]
    assert rows[0][-1] == "-"
    assert rows[1][1:5] == ["completed", "Collections", "page", "enhancement"]
    assert int(rows[1][-1]) > 0  # the number of suggestions
    assert "Traceback" not in result.stderr


def test_runs_json_filters_by_status_and_limit(server: str, repository: Path) -> None:
    done = [finished_job(server)[-1] for _ in range(2)]
    with FeaturePlannerClient(server, "tok-a") as client:
        client.create_job(REQUEST)
    result = run_cli(
        "runs", *as_alice(server), "--status", "completed", "--limit", "1", "--json", cwd=repository
    )

    assert result.returncode == 0, result.stderr
    page = json.loads(result.stdout)
    assert set(page) == {"jobs", "nextCursor"}
    assert len(page["jobs"]) == 1
    assert page["jobs"][0]["status"] == "completed"
    assert page["jobs"][0]["input"] == REQUEST.to_wire()
    assert page["nextCursor"]
    complete = done[-1].event
    assert isinstance(complete, CompleteEvent)
    assert page["jobs"][0]["suggestionsCount"] == len(complete.suggestions)

    rest = run_cli(
        "runs",
        *as_alice(server),
        "--status",
        "completed",
        "--cursor",
        page["nextCursor"],
        "--json",
        cwd=repository,
    )
    assert rest.returncode == 0, rest.stderr
    second = json.loads(rest.stdout)
    assert len(second["jobs"]) == 1 and second["nextCursor"] is None
    assert second["jobs"][0]["jobId"] != page["jobs"][0]["jobId"]


def test_runs_with_nothing_to_list(server: str, repository: Path) -> None:
    result = run_cli("runs", "--server", server, "--token", "tok-b", cwd=repository)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "No runs."


def test_runs_errors_exit_3_with_one_line(server: str, repository: Path) -> None:
    bad_token = run_cli("runs", "--server", server, "--token", "wrong", cwd=repository)
    url = f"http://127.0.0.1:{free_port()}"
    unreachable = run_cli("runs", "--server", url, "--token", "tok", cwd=repository)
    bad_status = run_cli("runs", *as_alice(server), "--status", "bogus", cwd=repository)

    assert bad_token.returncode == 3
    assert "UNAUTHORIZED" in bad_token.stderr and "--token" in bad_token.stderr
    assert unreachable.returncode == 3
    assert f"cannot reach {url}" in unreachable.stderr and "--server" in unreachable.stderr
    assert bad_status.returncode == 2
    assert "completed" in bad_status.stderr  # the choices are listed
    for result in (bad_token, unreachable, bad_status):
        assert result.stdout == ""
        assert "Traceback" not in result.stderr


def test_runs_and_show_in_process_see_the_runs_of_suggest(repository: Path) -> None:
    """Without --server: the service in-process, whose history keeps the ``cli`` user's runs."""
    env = cli_env(
        FEATURE_PLANNER_OFFLINE_INTERVAL_MS="0",
        FEATURE_PLANNER_REPOSITORY=str(repository),
        FEATURE_PLANNER_DATABASE_URL=f"sqlite:///{repository.parent}/in-process.db",
    )
    suggested = run_cli("suggest", "Collections page", "--json", cwd=repository, env=env)
    assert suggested.returncode == 0, suggested.stderr
    job_id = json.loads(suggested.stdout.splitlines()[0])["data"]["jobId"]

    listed = run_cli("runs", "--json", cwd=repository, env=env)
    shown = run_cli("show", job_id, cwd=repository, env=env)

    assert listed.returncode == 0, listed.stderr
    assert [job["jobId"] for job in json.loads(listed.stdout)["jobs"]] == [job_id]
    assert shown.returncode == 0, shown.stderr
    assert "1. " in shown.stdout


# --- show -------------------------------------------------------------------------------------


def test_show_of_a_finished_job_prints_its_suggestions(server: str, repository: Path) -> None:
    envelopes = finished_job(server)
    complete = envelopes[-1].event
    assert isinstance(complete, CompleteEvent)
    job_id = job_id_of(envelopes)

    result = run_cli("show", job_id, *as_alice(server), cwd=repository)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"1. {complete.suggestions[0].title}")  # no streamed text
    assert "•" in result.stdout
    assert "scripted" in result.stdout  # the provider line
    assert "no AI model was used" in result.stdout  # the complete event's notice


def test_show_json_of_a_finished_job_prints_its_status(server: str, repository: Path) -> None:
    envelopes = finished_job(server)
    job_id = job_id_of(envelopes)

    result = run_cli("show", job_id, *as_alice(server), "--json", cwd=repository)

    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["jobId"] == job_id
    assert status["status"] == "completed"
    assert status["lastEventId"] == envelopes[-1].id
    assert status["result"] == envelopes[-1].to_wire()["data"]
    assert status["input"] == REQUEST.to_wire()


def test_show_of_a_failed_job_exits_1_with_its_error(repository: Path) -> None:
    with history_server(repository, scripted_fail_at=5) as background:
        job_id = job_id_of(finished_job(background.url))
        result = run_cli("show", job_id, *as_alice(background.url), cwd=repository)
        as_json = run_cli("show", job_id, *as_alice(background.url), "--json", cwd=repository)

    assert result.returncode == 1
    assert "PROVIDER_ERROR" in result.stderr
    assert "failed on purpose" in result.stderr
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["error"]["code"] == "PROVIDER_ERROR"


class Watcher(threading.Thread):
    """Starts the job and watches it to its end, as a browser tab would."""

    def __init__(self, url: str, job_id: str) -> None:
        super().__init__(daemon=True)
        self.url, self.job_id = url, job_id
        self.envelopes: list[EventEnvelope] = []
        self.streaming = threading.Event()

    def run(self) -> None:
        with FeaturePlannerClient(self.url, "tok-a") as client:
            for envelope in client.stream_envelopes(self.job_id):
                self.envelopes.append(envelope)
                if envelope.name == "delta":
                    self.streaming.set()


def test_show_of_a_running_job_follows_it_live(repository: Path) -> None:
    # About 4.5 s: still running when the command, started once it streams, attaches.
    with history_server(repository, scripted_interval_ms=150) as background:
        with FeaturePlannerClient(background.url, "tok-a") as client:
            job = client.create_job(REQUEST)
        watcher = Watcher(background.url, job.job_id)
        watcher.start()
        assert watcher.streaming.wait(10)
        result = run_cli("show", job.job_id, *as_alice(background.url), cwd=repository)
        watcher.join(10)

    assert result.returncode == 0, result.stderr
    streamed, _, rest = result.stdout.partition("\n\n")
    # The live text (stdout is not a terminal: printed as it comes), from its start: a
    # finished job would show none.
    assert streamed == text_of(watcher.envelopes)
    assert rest.startswith("1. ")
    assert "scripted" in rest


def test_show_of_a_pending_job_runs_it_and_json_waits_for_the_end(
    server: str, repository: Path
) -> None:
    with FeaturePlannerClient(server, "tok-a") as client:
        live = client.create_job(REQUEST)
        quiet = client.create_job(REQUEST)
    shown = run_cli("show", live.job_id, *as_alice(server), cwd=repository)
    as_json = run_cli("show", quiet.job_id, *as_alice(server), "--json", cwd=repository)

    assert shown.returncode == 0, shown.stderr
    assert "1. " in shown.stdout
    assert as_json.returncode == 0, as_json.stderr
    status = json.loads(as_json.stdout)  # one document: only once the job has ended
    assert status["status"] == "completed"
    assert status["result"]["suggestions"]


def test_show_errors(server: str, repository: Path) -> None:
    with FeaturePlannerClient(server, "tok-b") as bob:
        bobs = bob.create_job(REQUEST).job_id
    unknown_id = str(uuid.uuid4())
    unknown = run_cli("show", unknown_id, *as_alice(server), cwd=repository)
    foreign = run_cli("show", bobs, *as_alice(server), "--json", cwd=repository)
    not_an_id = run_cli("show", "../agent", *as_alice(server), cwd=repository)
    bad_token = run_cli("show", bobs, "--server", server, "--token", "wrong", cwd=repository)

    assert unknown.returncode == 3
    line = unknown.stderr.strip()
    assert "\n" not in line
    assert "JOB_NOT_FOUND" in line and unknown_id in line
    assert foreign.returncode == 3
    assert "FORBIDDEN" in foreign.stderr
    assert not_an_id.returncode == 2
    assert "not a job id" in not_an_id.stderr
    assert bad_token.returncode == 3
    assert "--token" in bad_token.stderr
    for result in (unknown, foreign, not_an_id, bad_token):
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
