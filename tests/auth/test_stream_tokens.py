"""Job-scoped stream tokens: good for one job's stream and cancel, nothing else."""

from __future__ import annotations

import time

import jwt
import pytest

from feature_planner.auth import StreamTokens
from tests.conftest import API, BOB, VALID_BODY, LiveServer, ServerFactory

CONFIG = "/api/feature-planner/config"
SECRET = "a-secret-key-that-the-replicas-all-share"


def create(server: LiveServer) -> tuple[str, str]:
    response = server.create()
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    return data["jobId"], data["streamToken"]


def test_phase_one_returns_a_token_that_streams_the_job_without_other_credentials(
    server: LiveServer,
) -> None:
    job_id, token = create(server)
    response = server.http.get(f"{API}/{job_id}", params={"token": token})
    assert response.status_code == 200
    assert "event: complete" in response.text


def test_the_token_cancels_its_job(server: LiveServer) -> None:
    job_id, token = create(server)
    response = server.http.delete(f"{API}/{job_id}", params={"token": token})
    assert response.status_code == 202
    assert server.stream(job_id, last_event_id=0).last.json()["code"] == "CANCELLED"


def test_a_token_for_one_job_is_refused_on_another(server: LiveServer) -> None:
    _, token = create(server)
    second, _ = create(server)
    for method in ("GET", "DELETE"):
        response = server.http.request(method, f"{API}/{second}", params={"token": token})
        assert response.status_code == 401, (method, response.text)
        assert token not in response.text
    assert server.stream(second).names[-1] == "complete"  # the other job is unaffected


def test_a_token_is_not_a_credential_anywhere_else(server: LiveServer) -> None:
    _, token = create(server)
    assert server.http.get(CONFIG, params={"token": token}).status_code == 401
    assert server.http.post(API, json=VALID_BODY, params={"token": token}).status_code == 401
    agent = "/api/feature-planner/agent"
    assert server.http.get(agent, params={"token": token}).status_code == 401
    # Nor as a bearer token.
    headers = {"authorization": f"Bearer {token}"}
    assert server.http.get(CONFIG, headers=headers).status_code == 401


def test_another_users_token_cannot_open_a_job_it_was_not_issued_for(
    server: LiveServer,
) -> None:
    alice_job, _ = create(server)
    bob = server.http.post(API, json=VALID_BODY, headers=server.auth(BOB)).json()["data"]
    response = server.http.get(f"{API}/{alice_job}", params={"token": bob["streamToken"]})
    assert response.status_code == 401


def test_an_authorization_header_wins_over_the_query_token(server: LiveServer) -> None:
    job_id, token = create(server)
    response = server.http.get(f"{API}/{job_id}", params={"token": token}, headers=server.auth(BOB))
    assert response.status_code == 403  # Bob is who is calling, and not the owner


@pytest.mark.parametrize("kind", ["expired", "tampered", "other key", "garbage", "huge"])
def test_a_bad_stream_token_is_401(make_server: ServerFactory, kind: str) -> None:
    server = make_server(secret_key=SECRET)
    job_id, token = create(server)
    if kind == "expired":
        token = StreamTokens(SECRET, ttl_s=-10).issue("alice", job_id)
    elif kind == "tampered":
        header, _, signature = token.split(".")
        forged = jwt.encode({"sub": "alice", "jid": job_id, "exp": 2**40}, "y" * 32).split(".")[1]
        token = f"{header}.{forged}.{signature}"
    elif kind == "other key":
        token = StreamTokens("another-servers-secret-key-of-32-chars", ttl_s=900).issue(
            "alice", job_id
        )
    elif kind == "garbage":
        token = "not-a-token"
    else:
        token = "x" * 8100  # just under the query limit (414 above it)
    response = server.http.get(f"{API}/{job_id}", params={"token": token})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_the_token_expires_after_the_configured_lifetime(make_server: ServerFactory) -> None:
    server = make_server(stream_token_ttl_s=1)
    job_id, token = create(server)
    time.sleep(2.1)
    assert server.http.get(f"{API}/{job_id}", params={"token": token}).status_code == 401


@pytest.mark.parametrize("backend", ["redis"])
def test_replicas_sharing_the_secret_key_accept_each_others_tokens(
    make_server: ServerFactory,
) -> None:
    first, second = make_server(secret_key=SECRET), make_server(secret_key=SECRET)
    job_id, token = create(first)
    response = second.http.get(f"{API}/{job_id}", params={"token": token})
    assert response.status_code == 200
    assert "event: complete" in response.text


def test_an_issued_token_is_a_standard_hs256_jwt() -> None:
    token = StreamTokens(SECRET, ttl_s=900).issue("alice", "job-1")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="feature-planner-stream")
    assert claims["sub"] == "alice" and claims["jid"] == "job-1"
    assert claims["exp"] - claims["iat"] == 900
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
