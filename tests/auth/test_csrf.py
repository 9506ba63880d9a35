"""CSRF and CORS: which state changes a browser on another site can make with our cookie."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import API, VALID_BODY, LiveServer, ServerFactory
from tests.identity import TokenMinter

AGENT = "/api/feature-planner/agent"
AGENT_BODY = {"name": "Reviewer", "role": "r", "focus": "tests", "systemPrompt": "Be careful."}
TRUSTED = "https://app.example.com"


def change(server: LiveServer, method: str, headers: dict[str, str]) -> httpx.Response:
    """One state change of each kind the API has, with the given headers."""
    if method == "POST":
        return server.http.post(API, json=VALID_BODY, headers=headers)
    if method == "PUT":
        return server.http.put(AGENT, json=AGENT_BODY, headers=headers)
    if method == "DELETE":
        return server.http.delete(f"{API}/{server.create_job()}", headers=headers)
    raise AssertionError(method)


# What the browser says about where the request comes from → accepted with the cookie?
PROVENANCE: list[tuple[dict[str, str], bool]] = [
    ({"origin": "SELF"}, True),
    ({"origin": TRUSTED}, True),
    ({"origin": "https://evil.example"}, False),
    ({"origin": "null"}, False),  # sandboxed frames, file: pages
    ({"origin": "https://app.example.com.evil.example"}, False),
    ({"origin": "SELF", "sec-fetch-site": "cross-site"}, True),  # Origin decides
    ({"origin": "https://evil.example", "sec-fetch-site": "same-origin"}, False),
    ({"sec-fetch-site": "same-origin"}, True),
    ({"sec-fetch-site": "same-site"}, False),  # a sibling subdomain is another origin
    ({"sec-fetch-site": "cross-site"}, False),
    ({"sec-fetch-site": "none"}, False),
    ({}, False),  # no provenance at all: not from a page of ours
]


@pytest.fixture
def csrf_server(make_server: ServerFactory) -> LiveServer:
    return make_server(trusted_origins=TRUSTED)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
@pytest.mark.parametrize(("provenance", "accepted"), PROVENANCE)
def test_cookie_authenticated_changes_need_a_same_or_trusted_origin(
    csrf_server: LiveServer, method: str, provenance: dict[str, str], accepted: bool
) -> None:
    headers = {
        name: csrf_server.url if value == "SELF" else value for name, value in provenance.items()
    }
    response = change(csrf_server, method, {**csrf_server.login_cookie(), **headers})
    if accepted:
        assert response.status_code in (200, 201, 202), response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "CSRF_REJECTED"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_bearer_calls_are_not_affected_by_origin(csrf_server: LiveServer, method: str) -> None:
    headers = {**csrf_server.auth(), "origin": "https://evil.example"}
    assert change(csrf_server, method, headers).status_code in (200, 201, 202)


def test_a_refused_change_leaves_the_job_and_the_agent_as_they_were(
    csrf_server: LiveServer,
) -> None:
    assert csrf_server.http.put(AGENT, json=AGENT_BODY, headers=csrf_server.auth()).is_success
    job_id = csrf_server.create_job()
    attack = {**csrf_server.login_cookie(), "origin": "https://evil.example"}
    assert csrf_server.http.delete(f"{API}/{job_id}", headers=attack).status_code == 403
    assert csrf_server.http.delete(AGENT, headers=attack).status_code == 403
    renamed = {**AGENT_BODY, "name": "Attacker"}
    assert csrf_server.http.put(AGENT, json=renamed, headers=attack).status_code == 403
    assert csrf_server.stream(job_id).last.event == "complete"
    agent = csrf_server.http.get(AGENT, headers=csrf_server.auth()).json()["data"]
    assert agent["name"] == "Reviewer"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_bodies_that_are_not_json_are_415(
    server: LiveServer, method: str, content_type: str | None
) -> None:
    """What an HTML form on another site can send without a preflight is never accepted."""
    headers = {**server.login_cookie(), "origin": server.url}
    if content_type is not None:
        headers["content-type"] = content_type
    path = {"POST": API, "PUT": AGENT, "DELETE": f"{API}/{server.create_job()}"}[method]
    response = server.http.request(method, path, content=b'{"a": 1}', headers=headers)
    assert response.status_code == 415, response.text
    assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_logout_from_another_site_is_refused(server: LiveServer) -> None:
    cookie = server.login_cookie()
    attack = server.http.post("/auth/logout", headers={**cookie, "origin": "https://evil.example"})
    assert attack.status_code == 403
    own = server.http.post("/auth/logout", headers={**cookie, "origin": server.url})
    assert own.status_code == 204


def _preflight(server: LiveServer, origin: str) -> httpx.Response:
    return server.http.options(
        API,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )


def test_cors_is_off_by_default(server: LiveServer) -> None:
    preflight = _preflight(server, "https://app.example.com")
    assert "access-control-allow-origin" not in preflight.headers
    created = server.http.post(
        API, json=VALID_BODY, headers={**server.auth(), "origin": "https://app.example.com"}
    )
    assert "access-control-allow-origin" not in created.headers


def test_cors_lists_its_origins_and_never_allows_credentials(make_server: ServerFactory) -> None:
    server = make_server(cors_origins="https://app.example.com,https://admin.example.com")
    preflight = _preflight(server, "https://app.example.com")
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in preflight.headers
    assert "access-control-allow-origin" not in _preflight(server, "https://evil.example").headers
    job = server.http.post(
        API, json=VALID_BODY, headers={**server.auth(), "origin": "https://admin.example.com"}
    )
    assert job.headers["access-control-allow-origin"] == "https://admin.example.com"
    stream = server.http.get(
        job.headers["location"],
        params={"token": job.json()["data"]["streamToken"]},
        headers={"origin": "https://admin.example.com"},
    )
    assert stream.status_code == 200
    assert stream.headers["access-control-allow-origin"] == "https://admin.example.com"


def test_the_oidc_session_cookie_follows_the_same_rules(
    make_server: ServerFactory, minter: TokenMinter, jwks: Any
) -> None:
    from tests.auth.conftest import oidc_settings

    server = make_server(**oidc_settings(jwks))
    cookie = {"cookie": f"__session={minter.mint()}"}
    foreign = server.http.post(
        API, json=VALID_BODY, headers={**cookie, "origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    own = server.http.post(API, json=VALID_BODY, headers={**cookie, "origin": server.url})
    assert own.status_code == 201
