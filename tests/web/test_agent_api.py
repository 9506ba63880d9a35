"""``GET / PUT / DELETE /api/feature-planner/agent`` against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from feature_planner.config import load_settings
from feature_planner.errors import StoreUnavailableError
from feature_planner.serving import BackgroundServer
from feature_planner.web.app import create_app
from feature_planner.web.paths import AGENT_PATH
from feature_planner.web.state import AppState
from tests.conftest import ALICE, BOB, LiveServer
from tests.web.document import resolve

PROFILE: dict[str, Any] = {
    "name": "Accessibility reviewer",
    "role": "Accessibility specialist",
    "focus": "Keyboard navigation and screen readers",
    "systemPrompt": "Propose accessibility features.\nName the real files.",
    "temperature": 0.3,
    "tools": ["Read", "Grep"],
    "isActive": True,
}


@pytest.fixture
def start_server(repo: Path, tmp_path: Path) -> Iterator[Any]:
    """Start a real server whose custom agents live in a SQLite file under ``tmp_path``.

    ``unreachable=True`` makes every call of its agent store fail as an unreachable
    database does.
    """
    started: list[tuple[BackgroundServer, LiveServer]] = []

    def start(*, unreachable: bool = False, **overrides: Any) -> LiveServer:
        settings = load_settings(
            provider="scripted",
            users=f"alice={ALICE},bob={BOB}",
            repository=str(repo),
            database_url=f"sqlite:///{tmp_path / 'db' / 'feature-planner.db'}",
            log_level="warning",
            **overrides,
        )
        app = create_app(settings)
        state: AppState = app.state.planner
        if unreachable:
            for name in ("get", "put", "delete"):
                setattr(state.agents, name, _unreachable)
        server = BackgroundServer(app).start()
        live = LiveServer(server, settings, state)
        started.append((server, live))
        return live

    yield start
    for server, live in started:
        live.close()
        server.stop()


async def _unreachable(*args: Any) -> Any:
    raise StoreUnavailableError("The custom-agent database is unreachable; try again shortly")


@pytest.fixture
def server(start_server: Any) -> LiveServer:
    live: LiveServer = start_server()
    return live


def _put(server: LiveServer, body: Any, token: str = ALICE) -> httpx.Response:
    return server.http.put(AGENT_PATH, json=body, headers=server.auth(token))


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False
    error: dict[str, Any] = body["error"]
    return error


def _field_messages(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    error = _error(response)
    assert error["code"] == "VALIDATION_ERROR"
    return {item["field"]: item["message"] for item in error["fields"]}


# -- the happy path --------------------------------------------------------------------


NO_AGENT = {"success": True, "data": None}


def test_a_user_without_an_agent_gets_null_not_an_error(server: LiveServer) -> None:
    # Having no custom agent is the normal case: 200 with `data: null`, never cached.
    response = server.http.get(AGENT_PATH, headers=server.auth())
    assert response.status_code == 200, response.text
    assert response.json() == NO_AGENT
    assert response.headers["cache-control"] == "no-store"


def test_put_stores_the_agent_and_get_returns_it(server: LiveServer) -> None:
    stored = _put(server, PROFILE)
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"success": True, "data": PROFILE}
    fetched = server.http.get(AGENT_PATH, headers=server.auth())
    assert fetched.status_code == 200
    assert fetched.json() == {"success": True, "data": PROFILE}
    assert fetched.headers["cache-control"] == "no-store"


def test_put_fills_defaults_and_trims_text(server: LiveServer) -> None:
    minimal = {"name": "  Terse  ", "role": "r", "focus": "f", "systemPrompt": "s"}
    response = _put(server, minimal)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["name"] == "Terse"
    assert data["temperature"] == 0.7
    assert data["tools"] == ["Glob", "Grep", "Read"]
    assert data["isActive"] is True


def test_put_replaces_the_previous_agent(server: LiveServer) -> None:
    _put(server, PROFILE)
    replacement = {**PROFILE, "name": "Performance", "tools": [], "isActive": False}
    assert _put(server, replacement).status_code == 200
    fetched = server.http.get(AGENT_PATH, headers=server.auth())
    assert fetched.json()["data"] == replacement


def test_delete_removes_the_agent_and_a_second_delete_is_404(server: LiveServer) -> None:
    _put(server, PROFILE)
    deleted = server.http.delete(AGENT_PATH, headers=server.auth())
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert server.http.get(AGENT_PATH, headers=server.auth()).json() == NO_AGENT
    again = server.http.delete(AGENT_PATH, headers=server.auth())
    assert again.status_code == 404
    assert _error(again)["code"] == "AGENT_NOT_FOUND"


# -- validation ------------------------------------------------------------------------


def test_a_temperature_above_one_is_422(server: LiveServer) -> None:
    fields = _field_messages(_put(server, {**PROFILE, "temperature": 1.5}))
    assert fields == {"temperature": "Input should be less than or equal to 1"}


def test_an_unknown_tool_is_422(server: LiveServer) -> None:
    fields = _field_messages(_put(server, {**PROFILE, "tools": ["Read", "Bash"]}))
    assert fields == {"tools.1": "Input should be 'Glob', 'Grep' or 'Read'"}


@pytest.mark.parametrize("name", ["", "   ", "\x00\x07"])
def test_an_empty_name_is_422(server: LiveServer, name: str) -> None:
    fields = _field_messages(_put(server, {**PROFILE, "name": name}))
    assert fields == {"name": "must not be empty"}


def test_an_unknown_field_is_422(server: LiveServer) -> None:
    fields = _field_messages(_put(server, {**PROFILE, "model": "gpt-5"}))
    assert fields == {"model": "is not a field of this request"}


def test_snake_case_names_are_not_accepted(server: LiveServer) -> None:
    body = {k: v for k, v in PROFILE.items() if k != "systemPrompt"} | {"system_prompt": "s"}
    fields = _field_messages(_put(server, body))
    assert fields == {
        "systemPrompt": "is required",
        "system_prompt": "is not a field of this request",
    }


def test_every_bad_field_is_listed(server: LiveServer) -> None:
    body = {"name": "", "temperature": -1, "tools": ["Bash"], "isActive": "maybe"}
    fields = _field_messages(_put(server, body))
    assert set(fields) == {
        "name",
        "role",
        "focus",
        "systemPrompt",
        "temperature",
        "tools.0",
        "isActive",
    }
    assert fields["role"] == "is required"


def test_a_body_that_is_not_an_object_is_422(server: LiveServer) -> None:
    fields = _field_messages(_put(server, ["not", "an", "object"]))
    assert fields == {"body": "the body must be a JSON object"}


def test_invalid_json_is_400(server: LiveServer) -> None:
    response = server.http.put(
        AGENT_PATH,
        content=b'{"name": ',
        headers={**server.auth(), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert _error(response)["code"] == "INVALID_JSON"


def test_a_non_json_content_type_is_415(server: LiveServer) -> None:
    response = server.http.put(
        AGENT_PATH, content=b"name=x", headers={**server.auth(), "content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert _error(response)["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_a_body_over_16_kib_is_413(server: LiveServer) -> None:
    response = _put(server, {**PROFILE, "systemPrompt": "x" * (17 * 1024)})
    assert response.status_code == 413
    assert _error(response)["code"] == "PAYLOAD_TOO_LARGE"


def test_a_refused_put_keeps_the_stored_agent(server: LiveServer) -> None:
    _put(server, PROFILE)
    assert _put(server, {**PROFILE, "temperature": 2}).status_code == 422
    assert server.http.get(AGENT_PATH, headers=server.auth()).json()["data"] == PROFILE


# -- who may call ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_no_credentials_is_401(server: LiveServer, method: str) -> None:
    response = server.http.request(method, AGENT_PATH, json=PROFILE)
    assert response.status_code == 401
    assert _error(response)["code"] == "UNAUTHORIZED"
    bad = server.http.request(method, AGENT_PATH, json=PROFILE, headers=server.auth("guess"))
    assert bad.status_code == 401


def test_each_user_sees_and_changes_only_their_own_agent(server: LiveServer) -> None:
    assert _put(server, PROFILE, token=ALICE).status_code == 200
    assert server.http.get(AGENT_PATH, headers=server.auth(BOB)).json() == NO_AGENT
    assert server.http.delete(AGENT_PATH, headers=server.auth(BOB)).status_code == 404

    bobs = {**PROFILE, "name": "Bob's agent"}
    assert _put(server, bobs, token=BOB).status_code == 200
    assert server.http.get(AGENT_PATH, headers=server.auth(ALICE)).json()["data"] == PROFILE
    assert server.http.delete(AGENT_PATH, headers=server.auth(BOB)).status_code == 204
    assert server.http.get(AGENT_PATH, headers=server.auth(ALICE)).json()["data"] == PROFILE


def test_the_session_cookie_works_from_the_sites_own_origin(server: LiveServer) -> None:
    cookie = server.login_cookie()
    headers = {**cookie, "origin": server.url}
    assert server.http.put(AGENT_PATH, json=PROFILE, headers=headers).status_code == 200
    assert server.http.get(AGENT_PATH, headers=cookie).json()["data"] == PROFILE
    assert server.http.delete(AGENT_PATH, headers=headers).status_code == 204


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_a_cookie_change_from_another_origin_is_403(server: LiveServer, method: str) -> None:
    assert _put(server, PROFILE).status_code == 200
    cookie = server.login_cookie()
    hostile = {**PROFILE, "name": "Hijacked"}
    for extra in ({"origin": "http://attacker.test"}, {"sec-fetch-site": "cross-site"}):
        response = server.http.request(
            method, AGENT_PATH, json=hostile, headers={**cookie, **extra}
        )
        assert response.status_code == 403
        assert _error(response)["code"] == "CSRF_REJECTED"
    assert server.http.get(AGENT_PATH, headers=server.auth()).json()["data"] == PROFILE


def test_trusted_origins_may_use_the_cookie(start_server: Any) -> None:
    server: LiveServer = start_server(trusted_origins="https://app.example.com")
    headers = {**server.login_cookie(), "origin": "https://app.example.com"}
    assert server.http.put(AGENT_PATH, json=PROFILE, headers=headers).status_code == 200


def test_an_unreachable_database_is_503(start_server: Any) -> None:
    server: LiveServer = start_server(unreachable=True)
    for method in ("GET", "PUT", "DELETE"):
        response = server.http.request(method, AGENT_PATH, json=PROFILE, headers=server.auth())
        assert response.status_code == 503, method
        error = _error(response)
        assert error["code"] == "STORE_UNAVAILABLE"
        assert "custom-agent database" in error["message"]


# -- the description -------------------------------------------------------------------


def test_openapi_describes_the_three_routes(server: LiveServer) -> None:
    spec = server.http.get("/openapi.json").json()
    operations = spec["paths"][AGENT_PATH]
    assert set(operations) >= {"get", "put", "delete"}
    body = resolve(spec, operations["put"]["requestBody"]["content"]["application/json"]["schema"])
    assert body["additionalProperties"] is False
    assert set(body["properties"]) == set(PROFILE)
    assert body["properties"]["temperature"]["maximum"] == 1
    assert {"200", "401", "403", "413", "415", "422"} <= set(operations["put"]["responses"])
    assert {"200", "401", "503"} <= set(operations["get"]["responses"])
    assert "404" not in operations["get"]["responses"]  # no agent is 200 `data: null`
    data = operations["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    data = resolve(spec, data)["properties"]["data"]
    assert {"type": "null"} in data["anyOf"]
    profiles = [resolve(spec, item).get("properties", {}) for item in data["anyOf"]]
    assert any(set(PROFILE) <= set(properties) for properties in profiles)
    assert {"204", "401", "403", "404"} <= set(operations["delete"]["responses"])


def test_servers_sharing_a_database_share_the_agents(start_server: Any) -> None:
    first: LiveServer = start_server()
    second: LiveServer = start_server()
    assert _put(first, PROFILE).status_code == 200
    fetched = second.http.get(AGENT_PATH, headers=second.auth())
    assert fetched.json()["data"] == PROFILE
