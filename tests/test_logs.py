"""No credential reaches a log line."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from feature_planner.config import load_settings
from feature_planner.logs import configure_logging, redact
from feature_planner.serving import BackgroundServer
from feature_planner.web.app import create_app
from tests.conftest import API


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_access_log_never_shows_the_login_token(tmp_path: object) -> None:
    app = create_app(load_settings(users="alice=bearer-secret", repository=str(tmp_path)))
    collect = Collect()
    access = logging.getLogger("uvicorn.access")
    with BackgroundServer(app, log_level="info") as server:
        access.addHandler(collect)
        try:
            link = app.state.planner.auth.login_links(server.url)["alice"]
            token = link.split("token=", 1)[1]
            assert httpx.get(link).status_code == 303
            httpx.get(server.url + "/healthz", headers={"authorization": "Bearer bearer-secret"})
        finally:
            access.removeHandler(collect)
    joined = "\n".join(collect.lines)
    assert "/auth/login?[redacted]" in joined
    assert token not in joined
    assert "bearer-secret" not in joined


@pytest.fixture
def json_log(tmp_path: Path) -> Iterator[tuple[BackgroundServer, io.StringIO]]:
    """A real server whose every log line goes, as JSON, to the returned buffer."""
    settings = load_settings(
        users="alice=bearer-secret",
        repository=str(tmp_path),
        provider="scripted",
        scripted_chunks=3,
        scripted_interval_ms=0,
        database_url=f"sqlite:///{tmp_path}/agents.db",
    )
    server = BackgroundServer(create_app(settings), log_level="info")
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    configure_logging("info", "json", stream=buffer)  # after uvicorn set up its loggers
    try:
        with server:
            yield server, buffer
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_lines_tell_what_every_job_did_with_the_request_id(
    json_log: tuple[BackgroundServer, io.StringIO],
) -> None:
    server, buffer = json_log
    auth = {"authorization": "Bearer bearer-secret"}
    body = {"pageOrComponent": "Cart", "featureType": "enhancement", "priorityLevel": "low"}
    created = httpx.post(f"{server.url}{API}", json=body, headers=auth)
    job_id = created.json()["data"]["jobId"]
    token = created.json()["data"]["streamToken"]
    stream = httpx.get(f"{server.url}{API}/{job_id}", params={"token": token})
    assert "event: complete" in stream.text
    lines = _lines(buffer)

    def job_line(transition: str) -> dict[str, Any]:
        [line] = [x for x in lines if x.get("transition") == transition]
        return line

    assert job_line("created")["request_id"] == created.headers["x-request-id"]
    assert job_line("created")["user_id"] == "alice"
    assert job_line("started")["request_id"] == stream.headers["x-request-id"]
    finished = job_line("finished")
    assert finished["job_id"] == job_id and finished["user_id"] == "alice"
    assert finished["outcome"] == "completed"
    assert finished["request_id"] == stream.headers["x-request-id"]
    assert finished["duration_ms"] >= 0 and finished["output_tokens"] > 0
    access = [x for x in lines if x["logger"] == "uvicorn.access"]
    assert {(x["method"], x["status"]) for x in access} >= {("POST", 201), ("GET", 200)}
    assert all("?" not in x["path"] or x["path"].endswith("?[redacted]") for x in access)
    assert token not in buffer.getvalue() and "bearer-secret" not in buffer.getvalue()


def test_a_proxys_request_id_is_kept_and_a_malformed_one_replaced(
    json_log: tuple[BackgroundServer, io.StringIO],
) -> None:
    server, _ = json_log
    kept = httpx.get(f"{server.url}/healthz", headers={"x-request-id": "lb-1234.abc"})
    assert kept.headers["x-request-id"] == "lb-1234.abc"
    replaced = httpx.get(f"{server.url}/healthz", headers={"x-request-id": "a b" * 40})
    assert re.fullmatch(r"[0-9a-f]{16}", replaced.headers["x-request-id"])


def test_text_lines_are_readable_and_carry_the_fields() -> None:
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    configure_logging("info", "text", stream=buffer)
    try:
        logging.getLogger("feature_planner.jobs").info(
            "job completed", extra={"job_id": "j-1", "outcome": "completed"}
        )
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]
    line = buffer.getvalue().strip()
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d INFO  feature_planner\.jobs: job completed  job_id=j-1 outcome=completed",
        line,
    ), line


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "GET http://x/a?token=eyJ.abc.def&lastEventId=3",
            "GET http://x/a?token=[redacted]&lastEventId=3",
        ),
        ("retrying with Bearer sk-123 now", "retrying with Bearer [redacted] now"),
        ("GET /auth/login?code=abc HTTP/1.1", "GET /auth/login?code=[redacted] HTTP/1.1"),
        ("job completed", "job completed"),
    ],
)
def test_credentials_other_libraries_log_are_redacted(message: str, expected: str) -> None:
    assert redact(message) == expected
