"""Phase 2 runs with the user's active custom agent, and with the default one otherwise."""

from __future__ import annotations

from tests.conftest import ALICE, BOB, LiveServer

AGENT = {
    "name": "Accessibility reviewer",
    "role": "Accessibility specialist",
    "focus": "Keyboard and screen-reader use",
    "systemPrompt": "Look for accessibility gaps first.",
    "temperature": 0.2,
    "tools": ["Read"],
    "isActive": True,
}


def put_agent(server: LiveServer, body: dict[str, object], token: str = ALICE) -> None:
    response = server.http.put("/api/feature-planner/agent", json=body, headers=server.auth(token))
    assert response.status_code == 200, response.text


def test_an_active_custom_agent_runs_the_job(server: LiveServer) -> None:
    put_agent(server, AGENT)
    context = server.stream(server.create_job()).last.json()["context"]
    assert "by the agent Accessibility reviewer" in context
    # Bob has no agent of his own: his job runs with the default one.
    bob_context = server.stream(server.create_job(token=BOB), token=BOB).last.json()["context"]
    assert "by the agent" not in bob_context


def test_an_inactive_custom_agent_is_not_used(server: LiveServer) -> None:
    put_agent(server, {**AGENT, "isActive": False})
    context = server.stream(server.create_job()).last.json()["context"]
    assert "by the agent" not in context
