"""The ``api-key`` mode: keys configured by their hash, made by the CLI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from feature_planner.auth import hash_api_key, new_api_key
from tests.conftest import API, VALID_BODY, LiveServer, ServerFactory

CONFIG = "/api/feature-planner/config"


@pytest.fixture
def keys() -> dict[str, str]:
    return {"alice": new_api_key(), "alice-ci": new_api_key(), "bob": new_api_key()}


@pytest.fixture
def key_server(make_server: ServerFactory, keys: dict[str, str]) -> LiveServer:
    users = {"alice": "alice", "alice-ci": "alice", "bob": "bob"}
    setting = ",".join(f"{hash_api_key(keys[name])}={users[name]}" for name in keys)
    return make_server(auth="api-key", api_keys=setting)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_a_key_runs_the_whole_flow_and_a_user_may_have_several(
    key_server: LiveServer, keys: dict[str, str]
) -> None:
    created = key_server.http.post(API, json=VALID_BODY, headers=bearer(keys["alice"]))
    assert created.status_code == 201
    job = f"{API}/{created.json()['data']['jobId']}"
    # The CI key is alice's too: it may follow alice's job; bob's may not.
    assert key_server.http.get(job, headers=bearer(keys["bob"])).status_code == 403
    stream = key_server.http.get(job, headers=bearer(keys["alice-ci"]))
    assert stream.status_code == 200 and "event: complete" in stream.text


@pytest.mark.parametrize(
    "credential",
    [
        "fpk_not-a-key",
        "KEY-WITH-ONE-CHARACTER-CHANGED",
        "HASH-INSTEAD-OF-KEY",
        "fpk_" + "x" * 9000,
    ],
)
def test_anything_but_a_configured_key_is_401(
    key_server: LiveServer, keys: dict[str, str], credential: str
) -> None:
    if credential == "KEY-WITH-ONE-CHARACTER-CHANGED":
        credential = keys["alice"][:-1] + ("A" if keys["alice"][-1] != "A" else "B")
    elif credential == "HASH-INSTEAD-OF-KEY":
        credential = hash_api_key(keys["alice"])
    response = key_server.http.get(CONFIG, headers=bearer(credential))
    assert response.status_code == 401
    response = key_server.http.get(CONFIG, headers={"authorization": credential})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_cookies_and_login_links_do_not_exist_in_api_key_mode(key_server: LiveServer) -> None:
    assert key_server.http.get(CONFIG, headers={"cookie": "fp_session=x"}).status_code == 401
    assert key_server.http.get("/auth/login", params={"token": "x"}).status_code == 404


def test_the_cli_makes_a_key_whose_printed_setting_the_server_accepts(
    make_server: ServerFactory,
) -> None:
    result = subprocess.run(
        [Path(sys.executable).with_name("feature-planner"), "api-key", "carol"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    key = re.search(r"^\s+(fpk_\S+)$", result.stdout, re.MULTILINE)
    setting = re.search(r"FEATURE_PLANNER_API_KEYS=(\S+)$", result.stdout, re.MULTILINE)
    assert key is not None and setting is not None, result.stdout
    server = make_server(auth="api-key", api_keys=setting.group(1))
    response = server.http.post(API, json=VALID_BODY, headers=bearer(key.group(1)))
    assert response.status_code == 201
