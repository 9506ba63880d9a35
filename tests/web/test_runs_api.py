"""Runs are kept (DESIGN.md part two): status without a stream, the user's list, removal,
idempotent create, watch-only share links and the 403 warning — against a real server, in
memory with SQLite and with Redis and PostgreSQL."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import ALICE, API, BOB, VALID_BODY, LiveServer, ServerFactory
from tests.test_agent_store import TcpProxy, postgres_url  # noqa: F401 - a fixture

JOBS = "/api/feature-planner/jobs"
JSON = {"accept": "application/json"}


@pytest.fixture
def runs_server(make_server: ServerFactory, backend: str, request: Any) -> ServerFactory:
    """In memory the history is a SQLite file; with Redis it is PostgreSQL."""
    if backend == "memory":
        return make_server
    url = request.getfixturevalue("postgres_url")

    def start(**overrides: Any) -> LiveServer:
        return make_server(**{"database_url": url, **overrides})

    return start


def status(server: LiveServer, job_id: str, token: str = ALICE, **params: Any) -> httpx.Response:
    return server.http.get(f"{API}/{job_id}", headers={**server.auth(token), **JSON}, params=params)


def jobs(server: LiveServer, token: str = ALICE, **params: Any) -> httpx.Response:
    return server.http.get(JOBS, headers=server.auth(token), params=params)


def body(page: str) -> dict[str, Any]:
    return {**VALID_BODY, "pageOrComponent": page}


# -- status without a stream ------------------------------------------------------------------


def test_reading_a_pending_job_as_json_never_starts_it(runs_server: ServerFactory) -> None:
    server = runs_server()
    job_id = server.create_job()
    response = status(server, job_id)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["jobId"] == job_id
    assert data["status"] == "pending"
    assert data["input"] == VALID_BODY
    assert data["lastEventId"] == 0
    assert data["parentJobId"] is None
    assert "result" not in data and "finishedAt" not in data
    time.sleep(0.2)
    assert server.service.executions == 0


def test_wait_holds_the_answer_until_the_job_is_final(runs_server: ServerFactory) -> None:
    server = runs_server(scripted_interval_ms=20)  # about 0.4 s of run
    job_id = server.create_job()
    server.stream(job_id, stop_after=lambda event: event.event == "delta")  # start it
    running = status(server, job_id).json()["data"]
    assert running["status"] == "in_progress"
    assert running["startedAt"] >= running["createdAt"]
    data = status(server, job_id, wait=10).json()["data"]
    assert data["status"] == "completed"
    assert data["result"]["suggestions"]
    assert data["finishedAt"] >= data["startedAt"]
    assert str(data["lastEventId"]) == server.stream(job_id, last_event_id=0).job_events[-1].id


def test_wait_gives_up_after_its_seconds_with_the_job_as_it_is(runs_server: ServerFactory) -> None:
    server = runs_server()
    job_id = server.create_job()
    started = time.monotonic()
    data = status(server, job_id, wait=0.5).json()["data"]
    assert 0.4 < time.monotonic() - started < 5
    assert data["status"] == "pending"  # and still never started
    assert server.service.executions == 0


def test_a_completed_job_is_read_back_after_its_event_log_expired(
    runs_server: ServerFactory,
) -> None:
    server = runs_server(completed_ttl_s=0.3)
    job_id = server.create_job()
    streamed = server.stream(job_id)
    complete = streamed.last.json()
    time.sleep(0.6)
    assert server.stream(job_id, last_event_id=1).status == 404  # the events are gone
    data = status(server, job_id).json()["data"]
    assert data["status"] == "completed"
    assert data["result"] == complete
    assert str(data["lastEventId"]) == streamed.last.id
    assert data["provider"] == "scripted"


def test_a_cancelled_and_a_failed_job_say_why(runs_server: ServerFactory) -> None:
    server = runs_server(scripted_fail_at=0)
    failed = server.create_job()
    assert server.stream(failed).last.event == "error"
    data = status(server, failed).json()["data"]
    assert data["status"] == "failed"
    assert data["error"]["code"] == "PROVIDER_ERROR"
    cancelled = server.create_job()
    assert server.delete(cancelled).status_code == 202
    data = status(server, cancelled).json()["data"]
    assert (data["status"], data["error"]["code"]) == ("cancelled", "CANCELLED")


def test_a_pending_job_nobody_opened_is_kept_as_cancelled(runs_server: ServerFactory) -> None:
    server = runs_server(pending_ttl_s=0.3)
    job_id = server.create_job()
    time.sleep(0.5)
    assert jobs(server, status="pending").json()["data"]["jobs"] == []
    assert server.stream(job_id).status == 404  # gone from the store, as part one says
    data = status(server, job_id).json()["data"]
    assert (data["status"], data["error"]["code"]) == ("cancelled", "CANCELLED")
    assert "never ran" in data["error"]["message"]
    listed = jobs(server, status="cancelled").json()["data"]["jobs"]
    assert [job["jobId"] for job in listed] == [job_id]


@pytest.mark.parametrize("wait", ["-1", "31", "nan", "soon"])
def test_a_wait_out_of_range_is_422(server: LiveServer, wait: str) -> None:
    response = status(server, server.create_job(), wait=wait)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "wait"


def test_status_refusals_are_those_of_the_stream(server: LiveServer) -> None:
    job_id = server.create_job()
    assert status(server, "not-a-uuid").status_code == 400
    assert status(server, "7c3f4c1e-1b7d-4c59-9d7a-0c2b7f7f4e11").status_code == 404
    assert status(server, job_id, token=BOB).status_code == 403
    assert status(server, job_id, token="nope").status_code == 401


# -- the user's list ------------------------------------------------------------------------


def test_the_list_is_the_callers_own_newest_first_page_by_page(
    runs_server: ServerFactory,
) -> None:
    server = runs_server(create_limit=100)
    mine = [server.create_job(body(f"page {n}")) for n in range(7)]
    server.create_job(body("bob's page"), token=BOB)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        response = jobs(server, **params)
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        seen += [job["jobId"] for job in data["jobs"]]
        pages += 1
        cursor = data["nextCursor"]
        if cursor is None:
            break
    assert seen == mine[::-1]
    assert pages == 3
    first = jobs(server).json()["data"]["jobs"][0]
    assert first["streamUrl"] == f"{API}/{mine[-1]}"
    assert first["input"]["pageOrComponent"] == "page 6"
    assert first["status"] == "pending" and first["parentJobId"] is None
    bobs = jobs(server, token=BOB).json()["data"]["jobs"]
    assert [job["input"]["pageOrComponent"] for job in bobs] == ["bob's page"]


def test_the_list_filters_by_state_and_shows_the_outcome(runs_server: ServerFactory) -> None:
    server = runs_server()
    done = server.create_job(body("done"))
    server.stream(done)
    waiting = server.create_job(body("waiting"))
    completed = jobs(server, status="completed").json()["data"]["jobs"]
    assert [job["jobId"] for job in completed] == [done]
    assert completed[0]["suggestionsCount"] >= 1
    assert completed[0]["finishedAt"] >= completed[0]["createdAt"]
    pending = jobs(server, status="pending").json()["data"]["jobs"]
    assert [job["jobId"] for job in pending] == [waiting]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"status": "done"}, "status"),
        ({"cursor": "!!not-a-cursor!!"}, "cursor"),
    ],
)
def test_list_parameters_out_of_range_are_422(
    server: LiveServer, params: dict[str, str], field: str
) -> None:
    response = jobs(server, **params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == field


# -- removal --------------------------------------------------------------------------------


def test_a_finished_job_is_removed_an_active_one_is_409(runs_server: ServerFactory) -> None:
    server = runs_server()
    active = server.create_job()
    response = server.http.delete(f"{JOBS}/{active}", headers=server.auth())
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "JOB_ACTIVE"
    done = server.create_job()
    server.stream(done)
    assert server.http.delete(f"{JOBS}/{done}", headers=server.auth(BOB)).status_code == 403
    assert server.http.delete(f"{JOBS}/{done}", headers=server.auth()).status_code == 204
    listed = [job["jobId"] for job in jobs(server).json()["data"]["jobs"]]
    assert listed == [active]
    assert status(server, done).status_code == 404  # though its event log is still kept
    assert server.http.delete(f"{JOBS}/{done}", headers=server.auth()).status_code == 404


# -- idempotent create --------------------------------------------------------------------


def create(
    server: LiveServer, key: str, payload: dict[str, Any] | None = None, token: str = ALICE
) -> httpx.Response:
    headers = {**server.auth(token), "idempotency-key": key}
    return server.http.post(API, json=payload or VALID_BODY, headers=headers)


def test_the_same_key_gives_the_same_job_without_a_limit_hit(runs_server: ServerFactory) -> None:
    server = runs_server(create_limit=2)
    first = create(server, "order-42")
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    for _ in range(3):
        again = create(server, "order-42")
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["data"]["jobId"] == first.json()["data"]["jobId"]
    assert create(server, "order-43").status_code == 201  # the second of the limit of 2
    assert len(jobs(server).json()["data"]["jobs"]) == 2


def test_the_same_key_with_another_body_is_422(server: LiveServer) -> None:
    assert create(server, "k1").status_code == 201
    response = create(server, "k1", body("another page"))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_keys_are_per_user(server: LiveServer) -> None:
    alice = create(server, "shared-key").json()["data"]["jobId"]
    bob = create(server, "shared-key", token=BOB)
    assert bob.status_code == 201
    assert bob.json()["data"]["jobId"] != alice
    assert "idempotent-replayed" not in bob.headers


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_a_malformed_key_is_422(server: LiveServer, key: str) -> None:
    headers = {**server.auth(), "idempotency-key": key.encode()}
    response = server.http.post(API, json=VALID_BODY, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == "Idempotency-Key"


def test_fifty_concurrent_creates_with_one_key_make_one_job(runs_server: ServerFactory) -> None:
    server = runs_server(create_limit=100)
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: create(server, "burst"), range(50)))
    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.json()["data"]["jobId"] for answer in answers}) == 1
    assert sum("idempotent-replayed" not in answer.headers for answer in answers) == 1
    assert len(jobs(server).json()["data"]["jobs"]) == 1


# -- watch-only share links ----------------------------------------------------------------


def share(server: LiveServer, job_id: str, token: str = ALICE) -> httpx.Response:
    return server.http.post(f"{API}/{job_id}/share", headers=server.auth(token))


def test_a_share_token_reads_and_streams_its_job_and_nothing_else(
    runs_server: ServerFactory,
) -> None:
    server = runs_server()
    job_id = server.create_job()
    server.stream(job_id)
    other = server.create_job()
    answer = share(server, job_id)
    assert answer.status_code == 201, answer.text
    link = answer.json()["data"]
    assert link["url"] == f"/?job={job_id}&share={link['token']}"
    assert link["expiresAt"] > time.time() * 1000 + 6 * 24 * 3600 * 1000
    token = link["token"]
    bearer = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, timeout=10) as anonymous:
        # What it may do: the job's status and its stream, by query or by bearer.
        read = anonymous.get(f"{API}/{job_id}", params={"token": token}, headers=JSON)
        assert read.status_code == 200 and read.json()["data"]["status"] == "completed"
        assert anonymous.get(f"{API}/{job_id}", headers={**bearer, **JSON}).status_code == 200
        replay = server.stream(job_id, token=token, last_event_id=0)
        assert replay.last.event == "complete"
        # What it may not.
        refused = [
            anonymous.delete(f"{API}/{job_id}", headers=bearer),
            anonymous.delete(f"{JOBS}/{job_id}", headers=bearer),
            anonymous.post(f"{API}/{job_id}/share", headers=bearer),
            anonymous.get(JOBS, headers=bearer),
            anonymous.get(JOBS, params={"token": token}),
            anonymous.post(API, json=VALID_BODY, headers=bearer),
            anonymous.get("/api/feature-planner/agent", headers=bearer),
        ]
        for response in refused:
            assert response.status_code == 403, (response.request.url, response.text)
            assert response.json()["error"]["code"] == "SHARE_READ_ONLY"
        assert anonymous.get(f"{API}/{other}", headers={**bearer, **JSON}).status_code == 403
        assert anonymous.get(f"{API}/{job_id}", headers=JSON).status_code == 401


def test_only_a_completed_job_can_be_shared(server: LiveServer) -> None:
    job_id = server.create_job()
    response = share(server, job_id)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "JOB_NOT_COMPLETE"
    server.stream(job_id)
    assert share(server, job_id, token=BOB).status_code == 403


def test_a_revoked_or_expired_share_is_refused(make_server: ServerFactory) -> None:
    server = make_server(share_ttl_s=1)
    job_id = server.create_job()
    server.stream(job_id)
    revoked = share(server, job_id).json()["data"]["token"]
    assert status(server, job_id, token=revoked).status_code == 200
    response = server.http.delete(f"{API}/{job_id}/share", headers=server.auth())
    assert response.status_code == 204
    assert status(server, job_id, token=revoked).status_code == 401
    fresh = share(server, job_id).json()["data"]["token"]  # a new share after the revocation
    assert status(server, job_id, token=fresh).status_code == 200
    time.sleep(2.1)
    expired = status(server, job_id, token=fresh)
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]


# -- logged -----------------------------------------------------------------------------------


def test_a_403_on_another_users_job_logs_both_users_the_job_and_the_route(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = server.create_job()
    with caplog.at_level(logging.WARNING, logger="feature_planner"):
        assert status(server, job_id, token=BOB).status_code == 403
        assert server.delete(job_id, token=BOB).status_code == 403
    lines = [record.getMessage() for record in caplog.records if "refused job" in record.message]
    assert lines == [
        f"user bob was refused job {job_id} of user alice on GET {API}/{job_id}",
        f"user bob was refused job {job_id} of user alice on DELETE {API}/{job_id}",
    ]


# -- a database that goes away --------------------------------------------------------------


def test_a_run_completes_while_the_database_is_down_and_its_history_catches_up(
    make_server: ServerFactory, request: pytest.FixtureRequest
) -> None:
    """A history write that fails never fails the run: it is retried, logged and counted.
    While the store has the job, its status reads without the database."""
    url = make_url(request.getfixturevalue("postgres_url"))
    assert url.host is not None
    with TcpProxy(url.host, url.port or 5432) as proxy:
        proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
        server = make_server(database_url=proxied, scripted_interval_ms=20)
        job_id = server.create_job()
        first = server.stream(job_id, stop_after=lambda event: event.event == "delta")
        proxy.cut()  # once the run has started (it reads the user's custom agent first)
        streamed = server.stream(job_id, last_event_id=first.last.id)
        assert streamed.last.event == "complete"  # the run did not notice
        read = status(server, job_id)
        assert read.status_code == 200, read.text  # the store still has the job
        assert read.json()["data"]["result"] == streamed.last.json()
        assert jobs(server).status_code == 503  # the list is the history's alone
        metrics = server.http.get("/metrics").text
        assert _metric(metrics, "feature_planner_history_write_failures_total") >= 1
        proxy.restore()
        deadline = time.monotonic() + 30
        while not _completed_jobs(server):
            assert time.monotonic() < deadline, "the history never caught up"
            time.sleep(0.2)
        assert _completed_jobs(server) == [job_id]
        assert status(server, job_id).json()["data"]["result"] == streamed.last.json()


def _metric(text: str, name: str) -> float:
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)]
    return sum(values)


def _completed_jobs(server: LiveServer) -> list[str]:
    answer = jobs(server, status="completed")
    return [job["jobId"] for job in answer.json()["data"]["jobs"]] if answer.is_success else []
