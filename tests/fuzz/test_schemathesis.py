"""Schemathesis against the service's own OpenAPI document, in-process.

Every operation of ``/openapi.json`` is fuzzed with schema-valid and schema-invalid
requests, authenticated as alice, under all of Schemathesis's checks: no 5xx, statuses,
headers and bodies as documented, invalid data refused, valid data accepted, and
credentials really required (``ignored_auth`` repeats each successful call without, and
with wrong, credentials). A second pass sends valid requests, with no credentials or with
made-up ones, to every authenticated operation: each must answer 401.

Each test gets an app of its own, run in this process on Schemathesis's ASGI transport,
which runs the app's lifespan (job service, agent database) on first use; Schemathesis's
pytest plugin ends every lifespan after each test, and an app's lifespan runs only once.
The ``scripted`` provider plays 3 chunks with no pause, so a stream opened on a real job
ends at once.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi

from feature_planner.config import load_settings
from feature_planner.jobs.service import is_uuid4
from feature_planner.web.app import create_app
from feature_planner.web.application import PlannerApp
from tests.github_server import OWNER_REPO, FakeGitHub, serve_github
from tests.github_server import TOKEN as GITHUB_TOKEN

TOKEN = "token-alice"
AUTH = {"authorization": f"Bearer {TOKEN}"}
EXAMPLES = 200  # generated cases per operation, at least (see ``count_cases``)
CREATE_PATH = "/api/feature-planner/suggest-feature"
JOB_PATH = CREATE_PATH + "/{job_id}"
SHARE_PATH = JOB_PATH + "/share"
ISSUE_PATH = JOB_PATH + "/suggestions/{index}/issue"
HISTORY_PATH = "/api/feature-planner/jobs"
HISTORY_JOB_PATH = HISTORY_PATH + "/{job_id}"
AGENT_PATH = "/api/feature-planner/agent"
PUBLIC_PATHS = ("/healthz", "/readyz", "/metrics")
VALID_BODY = {"pageOrComponent": "Cart", "featureType": "enhancement", "priorityLevel": "low"}

PROFILE = {"name": "Fuzzer", "role": "r", "focus": "f", "systemPrompt": "p", "isActive": False}


def build_app(
    repository: Path, database_url: str = "sqlite://", github_api_url: str | None = None
) -> PlannerApp:
    """With ``github_api_url`` (the local fake's), suggestions are filed as issues there."""
    github = (
        {
            "github_token": GITHUB_TOKEN,
            "github_repository": OWNER_REPO,
            "github_api_url": github_api_url,
        }
        if github_api_url
        else {}
    )
    return create_app(
        load_settings(
            **github,
            provider="scripted",
            users=f"alice={TOKEN}",
            scripted_chunks=3,
            scripted_interval_ms=0,
            throttle_ms=0,
            create_limit=1_000_000,
            max_streams_per_user=1_000,
            repository=str(repository),
            database_url=database_url,
            log_level="warning",
        )
    )


# ``parametrize`` needs the document when tests are collected: from an app that never
# starts. Its Python modules are also where Schemathesis looks for constants to try.
DOCUMENT_APP = build_app(Path(__file__).parent)
DOCUMENT: dict[str, Any] = json.loads(json.dumps(DOCUMENT_APP.openapi()))


def _config(*, authenticated: bool) -> SchemathesisConfig:
    config: dict[str, Any] = {
        "generation": {
            "mode": "all" if authenticated else "positive",
            "max-examples": EXAMPLES,
            "database": "none",  # nothing written into the working tree
            # The request guard answers a NUL byte with 400 before authentication runs.
            "allow-x00": authenticated,
        },
        "suppress-health-check": ["all"],
        "checks": {
            # Valid requests on a finished job: 410 Gone is its documented answer.
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "410", "429", "5xx"]
            },
            "negative_data_rejection": {
                # The defaults, and what the README lists as refused before any route runs
                # (413 body, 414 path or query, 431 headers) or a finished job's 410.
                "expected-statuses": [
                    *("400", "401", "403", "404", "405", "406", "409", "410", "413", "414"),
                    *("415", "422", "428", "429", "431"),
                ]
            },
        },
    }
    if authenticated:
        config["auth"] = {"openapi": {"bearerAuth": {"bearer": TOKEN}}}
    return SchemathesisConfig.from_dict(config)


def _schema(*, authenticated: bool) -> Any:
    schema = schemathesis.openapi.from_dict(DOCUMENT, config=_config(authenticated=authenticated))
    schema.app = DOCUMENT_APP  # each test sends its requests to its own app instead
    return schema


authenticated = _schema(authenticated=True)
anonymous = _schema(authenticated=False).exclude(path=list(PUBLIC_PATHS))

SETTINGS = settings(
    max_examples=EXAMPLES,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def github_api_url() -> Iterator[str]:
    with serve_github(FakeGitHub()) as api_url:
        yield api_url


@pytest.fixture
def app(tmp_path: Path, github_api_url: str) -> Iterator[PlannerApp]:
    """A new app per test, with its own agent database and job store."""
    yield build_app(tmp_path, f"sqlite:///{tmp_path}/agents.db", github_api_url)
    asgi.shutdown_lifespans()  # Schemathesis's plugin does it too; no lifespan outlives its test


@pytest.fixture
def count_cases(request: pytest.FixtureRequest) -> Iterator[Counter[str]]:
    """Counts the cases of one operation's test (Hypothesis calls it once per case), and
    fails a passing test that ran fewer than ``EXAMPLES``. Every ``/api/`` operation takes
    credentials, so its cases never run out; the public routes take no input at all, and
    Hypothesis stops once it has tried everything there is."""
    counter: Counter[str] = Counter()
    yield counter
    report = getattr(request.node, "rep_call", None)
    for label, count in counter.items():
        if report is not None and report.passed and " /api/" in label:
            assert count >= EXAMPLES, f"{label}: only {count} cases ran"


def _prepare(case: schemathesis.Case, app: PlannerApp) -> None:
    """Give some valid cases something real to act on. A job route gets a job of alice's,
    in the state that the generated id's first digit picks (or keeps the random id: 404);
    GET and DELETE of the agent find an agent half the time. Invalid cases are left alone:
    the routes' leniencies (an empty ``Last-Event-ID`` counts as none) are no schema
    violation worth an alarm."""
    if case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE:
        return
    with asgi.get_client(app) as client:
        if case.operation.path == AGENT_PATH and case.method in ("GET", "DELETE"):
            if zlib.crc32(repr((case.headers, case.cookies, case.query)).encode()) % 2:
                assert client.put(AGENT_PATH, json=PROFILE, headers=AUTH).status_code == 200
            else:
                assert client.delete(AGENT_PATH, headers=AUTH).status_code in (204, 404)
            return
        if (
            case.operation.path == CREATE_PATH
            and case.headers
            and "Idempotency-Key" in case.headers
        ):
            # One key per case: a key reused with another body is rightly refused (422).
            key = case.headers["Idempotency-Key"]
            case.headers["Idempotency-Key"] = f"{key[:200]}-{uuid.uuid4()}"
            return
        if case.operation.path == HISTORY_PATH and case.query and "cursor" in case.query:
            # A cursor is opaque: only the server makes them (any other is rightly 422).
            for _ in range(2):
                assert client.post(CREATE_PATH, json=VALID_BODY, headers=AUTH).status_code == 201
            listed = client.get(HISTORY_PATH, params={"limit": 1}, headers=AUTH)
            case.query["cursor"] = listed.json()["data"]["nextCursor"]
            return
        job_routes = (JOB_PATH, SHARE_PATH, HISTORY_JOB_PATH, ISSUE_PATH)
        on_a_job = case.operation.path in job_routes
        job_id = case.path_parameters.get("job_id") if on_a_job else None
        if not isinstance(job_id, str) or not is_uuid4(job_id):
            return
        state = ("random", "pending", "completed", "cancelled")[int(job_id[0], 16) % 4]
        if state == "random":
            return
        created = client.post(CREATE_PATH, json=VALID_BODY, headers=AUTH)
        assert created.status_code == 201, created.text
        job_id = created.json()["data"]["jobId"]
        if state == "completed":
            streamed = client.get(f"{CREATE_PATH}/{job_id}", headers=AUTH)
            assert "event: complete" in streamed.text, streamed.text
        elif state == "cancelled":
            assert client.delete(f"{CREATE_PATH}/{job_id}", headers=AUTH).status_code == 202
    case.path_parameters["job_id"] = job_id


def test_the_served_document_is_the_fuzzed_one(app: PlannerApp) -> None:
    with asgi.get_client(app) as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == DOCUMENT
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert set(schemes) == {"bearerAuth", "sessionCookie", "streamToken"}
    assert schemes["sessionCookie"] == {**schemes["sessionCookie"], "in": "cookie"}
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            if path in PUBLIC_PATHS:
                assert operation["security"] == [], (method, path)
            else:
                assert {"bearerAuth": []} in operation["security"], (method, path)
                token = {"streamToken": []} in operation["security"]
                assert token == (path == JOB_PATH), (method, path)


def test_no_check_is_switched_off() -> None:
    checked = (
        *("not_a_server_error", "ignored_auth", "negative_data_rejection"),
        *("positive_data_acceptance", "status_code_conformance", "response_schema_conformance"),
        *("content_type_conformance", "response_headers_conformance", "allow_header_conformance"),
        *("unsupported_method", "missing_required_header"),
    )
    for result in authenticated.get_all_operations():
        operation = result.ok()
        checks = authenticated.config.checks_config_for(operation=operation, phase=None)
        assert [name for name in checked if not getattr(checks, name).enabled] == []


@authenticated.parametrize()
@SETTINGS
@pytest.mark.timeout(120)
def test_every_operation_keeps_its_contract(
    case: schemathesis.Case, app: PlannerApp, count_cases: Counter[str]
) -> None:
    count_cases[case.operation.label] += 1
    _prepare(case, app)
    case.call_and_validate(app=app)


@anonymous.parametrize()
@SETTINGS
@pytest.mark.timeout(120)
def test_every_api_operation_refuses_anonymous_callers(
    case: schemathesis.Case, app: PlannerApp, count_cases: Counter[str]
) -> None:
    count_cases[case.operation.label] += 1
    response = case.call_and_validate(app=app)
    assert response.status_code == 401, (response.status_code, response.text[:300])
    assert response.headers.get("www-authenticate") == ["Bearer"]
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


# -- bugs the fuzzing found, kept as regression tests ------------------------------------


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        (CREATE_PATH + "/00000000-0000-4000-8000-000000000000", {"GET", "DELETE"}),
        (AGENT_PATH, {"GET", "PUT", "DELETE"}),
    ],
)
def test_405_lists_every_method_of_the_resource(
    app: PlannerApp, path: str, methods: set[str]
) -> None:
    with asgi.get_client(app) as client:
        response = client.patch(path, headers=AUTH)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} == methods


@pytest.mark.parametrize("field", [{"isActive": 0}, {"temperature": "0.5"}])
def test_agent_body_types_are_strict(app: PlannerApp, field: dict[str, Any]) -> None:
    body = {"name": "n", "role": "r", "focus": "f", "systemPrompt": "p", **field}
    with asgi.get_client(app) as client:
        response = client.put(AGENT_PATH, json=body, headers=AUTH)
    assert response.status_code == 422, response.text


def test_resuming_beyond_the_last_event_sends_nothing_older(app: PlannerApp) -> None:
    with asgi.get_client(app) as client:
        created = client.post(CREATE_PATH, json=VALID_BODY, headers=AUTH)
        job_id = created.json()["data"]["jobId"]
        response = client.get(f"{CREATE_PATH}/{job_id}", headers={**AUTH, "last-event-id": "1000"})
    assert response.status_code == 200
    ids = [int(line[4:]) for line in response.text.splitlines() if line.startswith("id: ")]
    assert ids[0] == 1000  # `connected` says where the stream resumes
    assert all(event_id > 1000 for event_id in ids[1:]), ids


def test_head_on_a_stream_does_not_start_the_job(app: PlannerApp) -> None:
    with asgi.get_client(app) as client:
        job_id = client.post(CREATE_PATH, json=VALID_BODY, headers=AUTH).json()["data"]["jobId"]
        assert client.head(f"{CREATE_PATH}/{job_id}", headers=AUTH).status_code == 405
        assert app.state.planner.service.executions == 0
        assert client.get(f"{CREATE_PATH}/{job_id}", headers=AUTH).status_code == 200
