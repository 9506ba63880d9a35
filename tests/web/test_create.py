"""Phase 1: every status code of the create call, against a real server."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.conftest import ALICE, API, BOB, VALID_BODY, LiveServer, ServerFactory


def test_create_returns_job_id_stream_url_and_expiry(server: LiveServer) -> None:
    before = time.time() * 1000
    response = server.create()
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    data = body["data"]
    assert uuid.UUID(data["jobId"]).version == 4
    assert data["streamUrl"] == f"{API}/{data['jobId']}"
    assert response.headers["location"] == data["streamUrl"]
    assert before + 599_000 <= data["expiresAt"] <= time.time() * 1000 + 600_000


def test_create_without_credentials_is_401(server: LiveServer) -> None:
    response = server.http.post(API, json=VALID_BODY)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "UNAUTHORIZED"


def test_create_with_a_wrong_token_is_401(server: LiveServer) -> None:
    assert server.create(token="not-a-token").status_code == 401


def test_body_over_16_kib_is_413(server: LiveServer) -> None:
    body = {**VALID_BODY, "additionalContext": "x" * 17_000}
    response = server.create(body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_body_over_16_kib_without_content_length_is_413(server: LiveServer) -> None:
    def chunks() -> object:
        for _ in range(20):
            yield b" " * 1024

    response = server.http.post(
        API,
        content=chunks(),  # type: ignore[arg-type]
        headers={**server.auth(), "content-type": "application/json"},
    )
    assert response.status_code == 413


def test_invalid_json_is_400(server: LiveServer) -> None:
    response = server.http.post(
        API,
        content=b'{"pageOrComponent": ',
        headers={**server.auth(), "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_JSON"


def test_wrong_content_type_is_415(server: LiveServer) -> None:
    response = server.http.post(
        API, content=json.dumps(VALID_BODY), headers={**server.auth(), "content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_validation_errors_list_each_field(server: LiveServer) -> None:
    response = server.create(
        {
            "pageOrComponent": "   ",
            "featureType": "rewrite-everything",
            "additionalContext": "y" * 1001,
            "page_or_component": "snake case is not the wire format",
        }
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    fields = {item["field"]: item["message"] for item in error["fields"]}
    assert set(fields) == {
        "pageOrComponent",
        "featureType",
        "priorityLevel",
        "additionalContext",
        "page_or_component",
    }
    assert fields["pageOrComponent"] == "must not be empty"
    assert "1000" in fields["additionalContext"]
    assert "enhancement" in fields["featureType"]


def test_page_or_component_limit_counts_after_trimming_and_control_characters(
    server: LiveServer,
) -> None:
    padded = "  " + "a" * 200 + "\x00\x07  "
    assert server.create({**VALID_BODY, "pageOrComponent": padded}).status_code == 201
    assert server.create({**VALID_BODY, "pageOrComponent": "a" * 201}).status_code == 422


def test_optional_fields_may_be_null(server: LiveServer) -> None:
    body = {**VALID_BODY, "additionalContext": None, "customModel": None}
    assert server.create(body).status_code == 201


@pytest.mark.parametrize(
    "body",
    [
        {**VALID_BODY, "additionalContext": 5},
        {**VALID_BODY, "pageOrComponent": None},
        {**VALID_BODY, "pageOrComponent": ["a"]},
        {**VALID_BODY, "priorityLevel": {"x": 1}},
        {**VALID_BODY, "customModel": ""},
    ],
)
def test_wrongly_typed_fields_are_422_not_500(server: LiveServer, body: dict[str, object]) -> None:
    response = server.create(body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"]


def test_body_that_is_not_an_object_is_422(server: LiveServer) -> None:
    response = server.http.post(API, json=["a"], headers=server.auth())
    assert response.status_code == 422


def test_custom_model_must_be_allowed(make_server: ServerFactory) -> None:
    server = make_server(scripted_models="model-a,model-b")
    assert server.create({**VALID_BODY, "customModel": "model-b"}).status_code == 201
    refused = server.create({**VALID_BODY, "customModel": "gpt-nonexistent"})
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["field"] == "customModel"
    assert "model-a" in refused.json()["error"]["fields"][0]["message"]


def test_custom_model_is_refused_when_the_provider_offers_none(server: LiveServer) -> None:
    response = server.create({**VALID_BODY, "customModel": "anything"})
    assert response.status_code == 422


def test_eleventh_create_in_a_minute_is_429_with_retry_after(server: LiveServer) -> None:
    for _ in range(10):
        assert server.create().status_code == 201
    refused = server.create()
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # The limit is per user: Bob is not affected by Alice's jobs.
    assert server.create(token=BOB).status_code == 201


def test_rate_limit_is_configurable_and_the_window_moves(make_server: ServerFactory) -> None:
    server = make_server(create_limit=2, create_window_s=1)
    assert server.create().status_code == 201
    assert server.create().status_code == 201
    assert server.create().status_code == 429
    time.sleep(1.1)
    assert server.create().status_code == 201


def test_invalid_requests_do_not_use_up_the_rate_limit(make_server: ServerFactory) -> None:
    server = make_server(create_limit=1)
    for _ in range(3):
        assert server.create({"pageOrComponent": ""}).status_code == 422
    assert server.create().status_code == 201


def test_cookie_authenticated_create_from_another_origin_is_403(server: LiveServer) -> None:
    cookie = server.login_cookie()
    response = server.http.post(
        API, json=VALID_BODY, headers={**cookie, "origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "CSRF_REJECTED"
    same = server.http.post(API, json=VALID_BODY, headers={**cookie, "origin": server.url})
    assert same.status_code == 201


def test_bearer_authenticated_create_ignores_origin(server: LiveServer) -> None:
    response = server.http.post(
        API, json=VALID_BODY, headers={**server.auth(ALICE), "origin": "https://elsewhere.example"}
    )
    assert response.status_code == 201
