"""No user can see, start, stop or starve another user's work, whatever credential they hold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from feature_planner.auth import hash_api_key, new_api_key
from tests.auth.conftest import oidc_settings
from tests.conftest import ALICE, API, BOB, VALID_BODY, LiveServer, ServerFactory
from tests.identity import JwksServer, TokenMinter

AGENT = "/api/feature-planner/agent"
AGENT_BODY = {"name": "Alice's agent", "role": "r", "focus": "f", "systemPrompt": "s"}


@dataclass
class Caller:
    """How one user's requests are sent: headers, and query parameters for a stream token."""

    headers: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)

    def request(self, server: LiveServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return server.http.request(method, path, headers=headers, params=self.params, **kwargs)


@dataclass
class Setup:
    server: LiveServer
    alice: Caller
    bob: Caller


def _local(make_server: ServerFactory, kind: str) -> Setup:
    server = make_server()
    if kind == "cookie":
        alice = Caller({**server.login_cookie("alice"), "origin": server.url})
        bob = Caller({**server.login_cookie("bob"), "origin": server.url})
    else:
        alice, bob = Caller(server.auth(ALICE)), Caller(server.auth(BOB))
    return Setup(server, alice, bob)


def _oidc(make_server: ServerFactory, jwks: JwksServer, minter: TokenMinter, kind: str) -> Setup:
    server = make_server(**oidc_settings(jwks))
    tokens = minter.mint("user_alice"), minter.mint("user_bob")
    if kind == "cookie":
        alice, bob = (
            Caller({"cookie": f"__session={token}", "origin": server.url}) for token in tokens
        )
    else:
        alice, bob = (Caller({"authorization": f"Bearer {token}"}) for token in tokens)
    return Setup(server, alice, bob)


def _api_key(make_server: ServerFactory) -> Setup:
    alice_key, bob_key = new_api_key(), new_api_key()
    setting = f"{hash_api_key(alice_key)}=alice,{hash_api_key(bob_key)}=bob"
    server = make_server(auth="api-key", api_keys=setting)
    return Setup(
        server,
        Caller({"authorization": f"Bearer {alice_key}"}),
        Caller({"authorization": f"Bearer {bob_key}"}),
    )


KINDS = ["local bearer", "local cookie", "oidc bearer", "oidc cookie", "api key"]


@pytest.fixture(params=KINDS)
def setup(
    request: pytest.FixtureRequest,
    make_server: ServerFactory,
    jwks: JwksServer,
    minter: TokenMinter,
) -> Setup:
    mode, _, kind = str(request.param).partition(" ")
    if mode == "local":
        return _local(make_server, kind)
    if mode == "oidc":
        return _oidc(make_server, jwks, minter, kind)
    return _api_key(make_server)


def _create(setup: Setup, caller: Caller) -> dict[str, Any]:
    response = caller.request(setup.server, "POST", API, json=VALID_BODY)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_another_user_can_neither_follow_nor_cancel_a_job(setup: Setup) -> None:
    server, alice, bob = setup.server, setup.alice, setup.bob
    job = _create(setup, alice)
    path = f"{API}/{job['jobId']}"
    assert bob.request(server, "GET", path).status_code == 403
    assert bob.request(server, "GET", path, headers={"last-event-id": "0"}).status_code == 403
    assert bob.request(server, "DELETE", path).status_code == 403
    # Bob's own stream token is for Bob's own job only.
    bobs_token = _create(setup, bob)["streamToken"]
    for method in ("GET", "DELETE"):
        response = server.http.request(method, path, params={"token": bobs_token})
        assert response.status_code == 401
    # Alice's job ran untouched, to the end.
    stream = alice.request(server, "GET", path)
    assert stream.status_code == 200
    assert "event: complete" in stream.text and "CANCELLED" not in stream.text


def test_each_user_has_their_own_custom_agent(setup: Setup) -> None:
    server, alice, bob = setup.server, setup.alice, setup.bob
    assert alice.request(server, "PUT", AGENT, json=AGENT_BODY).status_code == 200
    assert bob.request(server, "GET", AGENT).json() == {"success": True, "data": None}
    assert bob.request(server, "DELETE", AGENT).status_code == 404
    bobs = {**AGENT_BODY, "name": "Bob's agent"}
    assert bob.request(server, "PUT", AGENT, json=bobs).status_code == 200
    assert alice.request(server, "GET", AGENT).json()["data"]["name"] == "Alice's agent"


def test_one_user_using_up_their_limits_does_not_starve_another(
    make_server: ServerFactory,
) -> None:
    server = make_server(create_limit=3, max_streams_per_user=1, scripted_interval_ms=200)
    bob_jobs = [server.create_job(token=BOB) for _ in range(3)]
    assert server.create(token=BOB).status_code == 429
    with server.http.stream("GET", f"{API}/{bob_jobs[0]}", headers=server.auth(BOB)) as held:
        assert held.status_code == 200
        assert server.stream(bob_jobs[1], token=BOB).status == 429
        job_id = server.create_job(token=ALICE)
        assert server.stream(job_id, token=ALICE).names[-1] == "complete"
