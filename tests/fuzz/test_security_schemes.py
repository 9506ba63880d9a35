"""What ``/openapi.json`` says about credentials in each authentication mode."""

from __future__ import annotations

from pathlib import Path

from feature_planner.auth import hash_api_key
from feature_planner.config import load_settings
from feature_planner.web.app import create_app
from feature_planner.web.openapi import security_schemes

JOB_PATH = "/api/feature-planner/suggest-feature/{job_id}"


def test_the_session_cookie_is_named_as_each_mode_sets_it() -> None:
    assert security_schemes("local")["sessionCookie"]["name"] == "fp_session"
    assert security_schemes("oidc")["sessionCookie"]["name"] == "__session"  # Clerk's
    assert "sessionCookie" not in security_schemes("api-key")
    for mode in ("local", "oidc", "api-key"):
        schemes = security_schemes(mode)
        assert schemes["bearerAuth"] == {
            **schemes["bearerAuth"],
            "type": "http",
            "scheme": "bearer",
        }
        assert schemes["streamToken"] == {
            **schemes["streamToken"],
            "type": "apiKey",
            "in": "query",
            "name": "token",
        }


def test_api_key_mode_declares_bearer_keys_and_stream_tokens_only(tmp_path: Path) -> None:
    app = create_app(
        load_settings(
            auth="api-key",
            api_keys=f"{hash_api_key('fpk_test')}=alice",
            provider="scripted",
            repository=str(tmp_path),
            database_url="sqlite://",
        )
    )
    document = app.openapi()
    assert set(document["components"]["securitySchemes"]) == {"bearerAuth", "streamToken"}
    paths = document["paths"]
    assert paths[JOB_PATH]["get"]["security"] == [{"bearerAuth": []}, {"streamToken": []}]
    assert paths[JOB_PATH]["delete"]["security"] == [{"bearerAuth": []}, {"streamToken": []}]
    assert paths["/api/feature-planner/suggest-feature"]["post"]["security"] == [{"bearerAuth": []}]
    assert paths["/api/feature-planner/agent"]["put"]["security"] == [{"bearerAuth": []}]
    assert paths["/metrics"]["get"]["security"] == []
    assert app.openapi() is document  # built once
