"""Export (DESIGN.md, "Act on a run"): a completed job as a Markdown or JSON file, against a
real server, in memory with SQLite and with Redis and PostgreSQL. The scripted provider
submits suggestions whose evidence the repository bears out, one of them quoting a Markdown
file's own code fence, one titled with Markdown and HTML that must stay text."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from feature_planner.agent.providers import ScriptedProvider, scripted_text
from feature_planner.config import load_settings
from feature_planner.models import Effort, Evidence, Impact, Suggestion
from feature_planner.serving import BackgroundServer
from feature_planner.web.app import create_app
from tests.conftest import ALICE, API, BOB, VALID_BODY, LiveServer
from tests.redis_server import RedisServer
from tests.test_agent_store import postgres_url  # noqa: F401 - a fixture
from tests.test_export import FORBIDDEN, PARSER, every_token, headings

JSON = {"accept": "application/json"}

PAGE_FILE = "src/app/collections/page.tsx"
PAGE_SOURCE = """export default function CollectionsPage() {
  const items = useCollections()
  return <Grid items={items} />
}
"""
NOTES_FILE = "docs/notes.md"
NOTES_SOURCE = """# Notes

```ts
fetch('/api/collections')
```
"""
FENCED = "```ts\nfetch('/api/collections')\n```"
HOSTILE_TITLE = "Page it # heading <script>alert(1)</script> [link](javascript:alert(1))"

SUGGESTIONS = [
    Suggestion(
        title=HOSTILE_TITLE,
        rationale="All items load at once.",
        description="Load the collections page by page.",
        implementation_considerations=["Keep the cursor in the URL", "Show a *loading* row"],
        evidence=[
            Evidence(
                path=PAGE_FILE, start_line=2, end_line=2, quote="const items = useCollections()"
            )
        ],
        effort=Effort.MEDIUM,
        impact=Impact.HIGH,
    ),
    Suggestion(
        title="Check the fetch",
        rationale="A failed request shows nothing.",
        description="Handle errors of `fetch`.",
        evidence=[Evidence(path=NOTES_FILE, start_line=3, end_line=5, quote=FENCED)],
    ),
    Suggestion(title="Add filters", rationale="Long lists.", description="Filter by tag."),
]

# The document of a run of ``SUGGESTIONS`` for ``BODY``; <…> are the run's own values.
GOLDEN = """\
# Feature suggestions: Collections page

- **Feature type:** enhancement
- **Priority:** high
- **Additional context:** Keep it \\*small\\* \\& fast
- **Provider:** scripted
- **Model:** scripted
- **Requested:** <CREATED>
- **Completed:** <FINISHED>
- **Job:** `<JOB>`

Played by the scripted provider; no AI model was used.

## 1. Page it \\# heading \\<script>alert(1)\\</script> \\[link\\](javascript:alert(1))

Load the collections page by page.

### Rationale

All items load at once.

### Implementation considerations

- Keep the cursor in the URL
- Show a \\*loading\\* row

**Effort:** medium · **Impact:** high

### Evidence

`src/app/collections/page.tsx:2-2`

```tsx
const items = useCollections()
```

## 2. Check the fetch

Handle errors of \\`fetch\\`.

### Rationale

A failed request shows nothing.

### Evidence

`docs/notes.md:3-5`

````md
```ts
fetch('/api/collections')
```
````

## 3. Add filters

Filter by tag.

### Rationale

Long lists.

## Context

Scripted run of 4 chunks for Collections page

## Evidence and token usage

- **Evidence cited:** 2
- **Evidence verified:** 2
- **Evidence dropped:** 0
- **Input tokens:** 16
- **Output tokens:** 4
- **Execution time:** <EXECUTION> ms
- **Retries:** 0
"""

BODY = {**VALID_BODY, "additionalContext": "Keep it *small* & fast"}

ExportServer = Callable[..., LiveServer]


@pytest.fixture
def export_server(
    repo: Path, backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[ExportServer]:
    """``export_server(**settings)``: a real server whose scripted provider submits
    ``SUGGESTIONS``. The servers of one test share their history database (SQLite in
    memory mode, PostgreSQL with Redis) and, with Redis, their job store: replicas."""
    for name, source in ((PAGE_FILE, PAGE_SOURCE), (NOTES_FILE, NOTES_SOURCE)):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(source)
    shared: dict[str, Any] = {"database_url": f"sqlite:///{tmp_path}/history.db"}
    if backend == "redis":
        redis: RedisServer = request.getfixturevalue("redis_server")
        redis.flush()
        shared = {"database_url": request.getfixturevalue("postgres_url"), "redis_url": redis.url}
    started: list[tuple[BackgroundServer, LiveServer]] = []

    def start(
        *, fail_at: int | None = None, interval_s: float = 0.0, **overrides: Any
    ) -> LiveServer:
        settings = load_settings(
            provider="scripted",
            users=f"alice={ALICE},bob={BOB}",
            repository=str(repo),
            throttle_ms=0,
            log_level="warning",
            **{**shared, **overrides},
        )
        provider = ScriptedProvider(
            scripted_text(4, 8), interval_s=interval_s, fail_at=fail_at, suggestions=SUGGESTIONS
        )
        app = create_app(settings, provider=provider)
        background = BackgroundServer(app, log_level="info").start()
        live = LiveServer(background, settings, app.state.planner)
        started.append((background, live))
        return live

    yield start
    for background, live in started:
        live.close()
        background.stop()


def export(
    server: LiveServer,
    job_id: str,
    export_format: str | None = "markdown",
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    query = {**({"format": export_format} if export_format is not None else {}), **(params or {})}
    chosen = server.auth() if headers is None else headers
    return server.http.get(f"{API}/{job_id}/export", params=query, headers=chosen)


def completed_job(server: LiveServer) -> str:
    job_id = server.create_job(BODY)
    assert server.stream(job_id).last.event == "complete"
    return job_id


def status_of(server: LiveServer, job_id: str) -> dict[str, Any]:
    response = server.http.get(f"{API}/{job_id}", headers={**server.auth(), **JSON})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def utc(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def golden(status: dict[str, Any]) -> bytes:
    values = {
        "<JOB>": status["jobId"],
        "<CREATED>": utc(status["createdAt"]),
        "<FINISHED>": utc(status["finishedAt"]),
        "<EXECUTION>": str(status["result"]["executionTimeMs"]),
    }
    text = GOLDEN
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text.encode()


def refusal(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


# -- the documents ----------------------------------------------------------------------------


def test_the_markdown_is_the_golden_document_with_its_headers(export_server: ExportServer) -> None:
    server = export_server()
    job_id = completed_job(server)
    response = export(server, job_id)
    assert response.status_code == 200, response.text
    assert response.content == golden(status_of(server, job_id))
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="collections-page-{job_id[:8]}.md"'
    )
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert export(server, job_id, None).content == response.content  # markdown by default


def test_the_markdown_is_exactly_its_headings_whatever_the_model_wrote(
    export_server: ExportServer,
) -> None:
    server = export_server()
    markdown = export(server, completed_job(server)).text
    assert headings(markdown) == [
        ("h1", "Feature suggestions: Collections page"),
        ("h2", f"1. {HOSTILE_TITLE}"),
        *[("h3", name) for name in ("Rationale", "Implementation considerations", "Evidence")],
        ("h2", "2. Check the fetch"),
        ("h3", "Rationale"),
        ("h3", "Evidence"),
        ("h2", "3. Add filters"),
        ("h3", "Rationale"),
        ("h2", "Context"),
        ("h2", "Evidence and token usage"),
    ]
    assert [token.type for token in every_token(markdown) if token.type in FORBIDDEN] == []
    fences = [token for token in PARSER.parse(markdown) if token.type == "fence"]
    assert [(fence.info, fence.content) for fence in fences] == [
        ("tsx", "const items = useCollections()\n"),
        ("md", FENCED + "\n"),
    ]


def test_the_json_is_the_jobs_status_document(export_server: ExportServer) -> None:
    server = export_server()
    job_id = completed_job(server)
    response = export(server, job_id, "json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="collections-page-{job_id[:8]}.json"'
    )
    assert response.headers["cache-control"] == "no-store"
    document = response.json()
    assert document == status_of(server, job_id)  # the document itself, no envelope
    assert document["result"]["suggestions"][1]["evidence"][0]["quote"] == FENCED


def test_a_job_exports_the_same_on_another_replica_and_after_its_events_expired(
    export_server: ExportServer,
) -> None:
    first = export_server(completed_ttl_s=0.3)
    job_id = completed_job(first)
    markdown, document = export(first, job_id).content, export(first, job_id, "json").content
    second = export_server(completed_ttl_s=0.3)
    assert export(second, job_id).content == markdown
    assert export(second, job_id, "json").content == document
    time.sleep(0.6)
    assert first.stream(job_id, last_event_id=1).status == 404  # its events are gone
    for server in (first, second):
        assert export(server, job_id).content == markdown  # from the history alone
        assert export(server, job_id, "json").content == document


# -- who may export ---------------------------------------------------------------------------


def test_a_share_link_may_export_its_job_and_no_other(export_server: ExportServer) -> None:
    server = export_server()
    job_id, other = completed_job(server), completed_job(server)
    own = export(server, job_id).content
    shared = server.http.post(f"{API}/{job_id}/share", headers=server.auth())
    token = shared.json()["data"]["token"]
    bearer = {"authorization": f"Bearer {token}"}
    assert export(server, job_id, headers={}, params={"token": token}).content == own
    assert export(server, job_id, headers=bearer).content == own
    assert export(server, job_id, "json", headers=bearer).json() == status_of(server, job_id)
    refusal(export(server, other, headers=bearer), 403, "FORBIDDEN")


def test_the_owners_cookie_exports_and_a_stream_token_does_not(
    export_server: ExportServer,
) -> None:
    server = export_server()
    created = server.create(BODY).json()["data"]
    job_id, stream_token = created["jobId"], created["streamToken"]
    server.stream(job_id)
    assert export(server, job_id, headers=server.login_cookie()).status_code == 200
    refusal(export(server, job_id, headers={}, params={"token": stream_token}), 401, "UNAUTHORIZED")


def test_callers_and_jobs_that_are_not_theirs_are_refused(export_server: ExportServer) -> None:
    server = export_server()
    job_id = completed_job(server)
    refusal(export(server, job_id, headers={}), 401, "UNAUTHORIZED")
    refusal(export(server, job_id, headers=server.auth("nope")), 401, "UNAUTHORIZED")
    refusal(export(server, job_id, headers=server.auth(BOB)), 403, "FORBIDDEN")
    refusal(export(server, "7c3f4c1e-1b7d-4c59-9d7a-0c2b7f7f4e11"), 404, "JOB_NOT_FOUND")
    refusal(export(server, "not-a-uuid"), 400, "INVALID_JOB_ID")


# -- jobs without a result, and bad formats ---------------------------------------------------


def test_a_job_that_did_not_complete_is_409(export_server: ExportServer) -> None:
    server = export_server(interval_s=0.3)
    pending = server.create_job(BODY)
    running = server.create_job(BODY)
    server.stream(running, stop_after=lambda event: event.event == "delta")
    cancelled = server.create_job(BODY)
    assert server.delete(cancelled).status_code == 202
    failing = export_server(fail_at=0)
    failed = failing.create_job(BODY)
    assert failing.stream(failed).last.event == "error"
    for owner, job_id, state in (
        (server, pending, "pending"),
        (server, running, "in progress"),
        (server, cancelled, "cancelled"),
        (failing, failed, "failed"),
    ):
        for export_format in ("markdown", "json"):
            error = refusal(export(owner, job_id, export_format), 409, "JOB_NOT_COMPLETE")
            assert error["message"] == (f"The job is {state}; only a completed job can be exported")


def test_a_format_other_than_markdown_or_json_is_422(export_server: ExportServer) -> None:
    server = export_server()
    job_id = completed_job(server)
    for export_format in ("pdf", "", "MARKDOWN", "md", "json "):
        error = refusal(export(server, job_id, export_format), 422, "VALIDATION_ERROR")
        expected = {"field": "format", "message": "must be one of: markdown, json"}
        assert error["fields"] == [expected], export_format
