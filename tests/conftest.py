"""Shared fixtures: a real uvicorn server on a free port, and a small SSE reader over httpx."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from feature_planner.agent.base import Provider
from feature_planner.config import Settings, load_settings
from feature_planner.jobs.service import JobService
from feature_planner.jobs.store import JobStore
from feature_planner.serving import BackgroundServer
from feature_planner.web.app import create_app
from feature_planner.web.state import AppState
from tests.log_scan import scan_every_log_record
from tests.redis_server import RedisServer
from tests.sse_decoder import ServerSentEvent, SSEDecoder

# Every app the tests start (in this process or as a subprocess) keeps custom agents, and its
# signing key when none is configured, here: not in the user's own data directory.
os.environ.setdefault(
    "FEATURE_PLANNER_DATABASE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='fp-agents-')}/agents.db"
)
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="fp-data-")

API = "/api/feature-planner/suggest-feature"
ALICE, BOB = "token-alice", "token-bob"

VALID_BODY = {
    "pageOrComponent": "Collections page",
    "featureType": "enhancement",
    "priorityLevel": "high",
}


@pytest.fixture(scope="session", autouse=True)
def no_credential_in_any_log_line() -> Iterator[None]:
    """Over the whole session, no log record shows a token, key or credential."""
    with scan_every_log_record() as leaked:
        yield
    assert not leaked, "credentials in log lines:\n" + "\n".join(leaked[:20])


@dataclass
class Stream:
    """What one connection received."""

    status: int
    headers: httpx.Headers
    raw: bytes = b""
    events: list[ServerSentEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [event.event for event in self.events]

    @property
    def job_events(self) -> list[ServerSentEvent]:
        return [event for event in self.events if event.event != "connected"]

    @property
    def text(self) -> str:
        return "".join(event.json()["text"] for event in self.events if event.event == "delta")

    @property
    def last(self) -> ServerSentEvent:
        return self.events[-1]

    def json(self) -> Any:
        return json.loads(self.raw)


class LiveServer:
    def __init__(self, server: BackgroundServer, settings: Settings, state: AppState) -> None:
        self.url = server.url
        self.settings = settings
        self.service: JobService = state.service
        self.auth_backend = state.auth
        self.http = httpx.Client(base_url=server.url, timeout=30)

    def login_cookie(self, user: str = "alice") -> dict[str, str]:
        """Open a fresh login link as a browser would; the ``cookie`` header it earns."""
        link = self.auth_backend.login_links(self.url)[user]
        response = httpx.get(link)  # not self.http: its cookie jar would leak into other calls
        assert response.status_code == 303, response.text
        cookie = response.cookies["fp_session"]
        return {"cookie": f"fp_session={cookie}"}

    def auth(self, token: str = ALICE) -> dict[str, str]:
        return {"authorization": f"Bearer {token}"}

    def create(self, body: dict[str, Any] | None = None, token: str = ALICE) -> httpx.Response:
        return self.http.post(API, json=body or VALID_BODY, headers=self.auth(token))

    def create_job(self, body: dict[str, Any] | None = None, token: str = ALICE) -> str:
        response = self.create(body, token)
        assert response.status_code == 201, response.text
        job_id: str = response.json()["data"]["jobId"]
        return job_id

    def stream(
        self,
        job_id: str,
        *,
        token: str = ALICE,
        last_event_id: int | str | None = None,
        headers: dict[str, str] | None = None,
        stop_after: Callable[[ServerSentEvent], bool] | None = None,
        params: dict[str, str] | None = None,
    ) -> Stream:
        """Read the stream to its end, or until ``stop_after`` says so (then drop it)."""
        request_headers = {**self.auth(token), "accept": "text/event-stream", **(headers or {})}
        if last_event_id is not None:
            request_headers["last-event-id"] = str(last_event_id)
        with self.http.stream(
            "GET", f"{API}/{job_id}", headers=request_headers, params=params
        ) as response:
            result = Stream(response.status_code, response.headers)
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                decoder = SSEDecoder()
                for chunk in response.iter_raw():
                    result.raw += chunk
                    for event in decoder.feed(chunk):
                        result.events.append(event)
                        if stop_after is not None and stop_after(event):
                            result.comments = decoder.comments
                            return result
                result.comments = decoder.comments
            else:
                result.raw = response.read()
            return result

    def delete(self, job_id: str, token: str = ALICE) -> httpx.Response:
        return self.http.delete(f"{API}/{job_id}", headers=self.auth(token))

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "README.md").write_text("# Demo shop\n\nA small shop.\n")
    pages = tmp_path / "src" / "app" / "collections"
    pages.mkdir(parents=True)
    (pages / "page.tsx").write_text("export default function CollectionsPage() { return null }\n")
    return tmp_path


ServerFactory = Callable[..., LiveServer]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server of the test session's own, on a free port."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    """The behavioural suite runs against both job stores."""
    return str(request.param)


@pytest.fixture
def make_server(
    repo: Path,
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerFactory]:
    """Start a real server with the scripted provider (or the given ``engine``, a provider
    object) and the given setting overrides.

    On the ``redis`` backend every server of a test shares the session's redis-server,
    flushed first. A test that passes its own ``store`` runs on that store alone.
    """
    started: list[tuple[BackgroundServer, LiveServer]] = []
    redis: RedisServer | None = None
    if backend == "redis":
        redis = request.getfixturevalue("redis_server")
        redis.flush()

    def start(
        store: JobStore | None = None, engine: Provider | None = None, **overrides: Any
    ) -> LiveServer:
        options: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path_factory.mktemp('agents')}/agents.db",
            "provider": "scripted",
            "users": f"alice={ALICE},bob={BOB}",
            "repository": str(repo),
            "scripted_chunks": 20,
            "scripted_chunk_size": 8,
            "scripted_interval_ms": 2,
            "throttle_ms": 0,
            "log_level": "warning",
        }
        if redis is not None and store is None:
            options["redis_url"] = redis.url
        options.update(overrides)
        settings = load_settings(**options)
        app = create_app(settings, store=store, provider=engine)
        # At info, so the access log is written, and scanned for credentials.
        server = BackgroundServer(app, log_level="info").start()
        live = LiveServer(server, settings, app.state.planner)
        started.append((server, live))
        return live

    yield start
    for server, live in started:
        live.close()
        server.stop()


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    return make_server()
