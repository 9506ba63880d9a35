"""The page, the probes, the OpenAPI description, and the store-unavailable answers."""

from __future__ import annotations

import html
from html.parser import HTMLParser
from pathlib import Path

import pytest

from feature_planner.errors import StoreUnavailableError
from feature_planner.jobs.memory import MemoryJobStore
from feature_planner.jobs.store import JobRecord
from feature_planner.web.pages import render_index
from tests.conftest import API, LiveServer, ServerFactory
from tests.web.document import resolve

# A directory name that would be markup if it were not escaped (a name cannot hold "/").
HOSTILE_NAME = """<img src=x onerror="window.__xss=1"> & <script>window.__xss=2<"""


class RepositoryLine(HTMLParser):
    """The text of the page's ``#repository`` line, and whether it is hidden."""

    def __init__(self) -> None:
        super().__init__()
        self.found = False
        self.hidden = False
        self.text = ""
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._depth:
            self._depth += 1
        elif ("id", "repository") in attrs:
            self.found, self._depth = True, 1
            self.hidden = any(name == "hidden" for name, _ in attrs)

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.text += data


def repository_line(page: str) -> RepositoryLine:
    parser = RepositoryLine()
    parser.feed(page)
    assert parser.found, "the page has no #repository line"
    return parser


def test_page_is_served_with_a_strict_content_security_policy(server: LiveServer) -> None:
    response = server.http.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script" in response.text and "http" not in response.text.split("<body", 1)[
        0
    ].lower().replace("http-equiv", "")
    for asset in ("/static/app.js", "/static/style.css"):
        assert server.http.get(asset).status_code == 200


@pytest.mark.parametrize("backend", ["memory"])
def test_the_page_names_the_repository_it_plans_for_not_its_path(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    repository = tmp_path / "private" / "shop-frontend"
    repository.mkdir(parents=True)
    server = make_server(repository=str(repository))
    page = server.http.get("/").text
    line = repository_line(page)
    assert not line.hidden
    assert line.text == "Planning for shop-frontend"
    # The server's path stays on the server.
    assert str(tmp_path) not in page
    assert "private" not in page


@pytest.mark.parametrize("backend", ["memory"])
def test_the_repository_name_is_escaped(make_server: ServerFactory, tmp_path: Path) -> None:
    repository = tmp_path / HOSTILE_NAME
    repository.mkdir()
    server = make_server(repository=str(repository))
    page = server.http.get("/").text
    assert repository_line(page).text == f"Planning for {HOSTILE_NAME}"
    assert html.escape(HOSTILE_NAME) in page
    assert "<img" not in page
    assert "<script>window" not in page


@pytest.mark.parametrize("backend", ["memory"])
def test_the_static_copy_of_the_page_names_no_repository(server: LiveServer) -> None:
    # /static/index.html is the file as shipped: its repository line stays empty and hidden.
    line = repository_line(server.http.get("/static/index.html").text)
    assert (line.hidden, line.text) == (True, "")


def test_a_repository_without_a_name_is_not_mentioned() -> None:
    line = repository_line(render_index(Path("/")))
    assert (line.hidden, line.text) == (True, "")


def test_health_and_readiness(server: LiveServer) -> None:
    assert server.http.get("/healthz").json() == {"status": "ok"}
    assert server.http.get("/readyz").json() == {"status": "ready"}


def test_openapi_describes_both_phases(server: LiveServer) -> None:
    schema = server.http.get("/openapi.json").json()
    create = schema["paths"][API]["post"]
    body = resolve(schema, create["requestBody"]["content"]["application/json"]["schema"])
    assert set(body["properties"]) == {
        "pageOrComponent",
        "featureType",
        "priorityLevel",
        "additionalContext",
        "customModel",
    }
    assert {"201", "401", "413", "415", "422", "429", "503"} <= set(create["responses"])
    stream = schema["paths"][API + "/{job_id}"]["get"]
    assert {"200", "204", "400", "401", "403", "404", "410", "429"} <= set(stream["responses"])
    assert "text/event-stream" in stream["responses"]["200"]["content"]


def test_config_lists_the_choices_for_the_page(server: LiveServer) -> None:
    data = server.http.get("/api/feature-planner/config", headers=server.auth()).json()["data"]
    assert data["provider"] == "scripted"
    assert [c["value"] for c in data["priorityLevels"]] == ["low", "medium", "high", "critical"]
    assert server.http.get("/api/feature-planner/config").status_code == 401


def test_unknown_routes_answer_in_the_error_envelope(server: LiveServer) -> None:
    response = server.http.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {
        "success": False,
        "error": {"code": "NOT_FOUND", "message": "Not Found"},
    }


class UnreachableStore(MemoryJobStore):
    """The memory store with its connection cut: what a dead Redis looks like to the app."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailableError

    async def create(self, job: JobRecord) -> None:
        self._check()
        await super().create(job)

    async def get(self, job_id: str) -> JobRecord | None:
        self._check()
        return await super().get(job_id)

    async def ping(self) -> None:
        self._check()


def test_an_unreachable_store_answers_503_and_recovers(make_server: ServerFactory) -> None:
    store = UnreachableStore()
    server = make_server(store=store)
    job_id = server.create_job()
    store.down = True
    created = server.create()
    assert created.status_code == 503
    assert created.json()["error"]["code"] == "STORE_UNAVAILABLE"
    assert server.stream(job_id).status == 503
    assert server.delete(job_id).status_code == 503
    assert server.http.get("/readyz").status_code == 503
    assert len(store) == 1  # nothing half-created
    store.down = False
    assert server.stream(job_id).last.event == "complete"
    assert server.http.get("/readyz").status_code == 200
