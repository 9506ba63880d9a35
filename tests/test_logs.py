"""No credential reaches a log line."""

from __future__ import annotations

import logging

import httpx

from feature_planner.config import load_settings
from feature_planner.serving import BackgroundServer
from feature_planner.web.app import create_app


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
