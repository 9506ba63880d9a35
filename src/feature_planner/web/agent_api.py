"""The caller's own custom agent: ``GET / PUT / DELETE /api/feature-planner/agent``.

Having no custom agent is the normal case, not an error: ``GET`` then answers 200 with
``data: null`` (runs use the default agent). Only ``DELETE`` of an agent that is not there
is refused (404 ``AgentNotFoundError``), since there is nothing to remove.

Parsed like the job routes (``api.py``): by hand, with the same body limits.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ..agent.profile import AgentProfile
from ..errors import AgentNotFoundError
from .bodies import parse_body, read_json_body, refuse_foreign_body
from .responses import json_response
from .state import AppState

__all__ = ["delete_agent", "get_agent", "put_agent"]

_NO_STORE = {"cache-control": "no-store"}  # one user's settings: never cached on the way


async def get_agent(state: AppState, request: Request) -> Response:
    identity = await state.authenticate(request, state_changing=False)
    profile = await state.agents.get(identity.user_id)
    return json_response(None if profile is None else profile.to_wire(), headers=_NO_STORE)


async def put_agent(state: AppState, request: Request) -> Response:
    identity = await state.authenticate(request, state_changing=True)
    profile = parse_body(AgentProfile, await read_json_body(request), strict=True)
    stored = await state.agents.put(identity.user_id, profile)
    return json_response(stored.to_wire(), headers=_NO_STORE)


async def delete_agent(state: AppState, request: Request) -> Response:
    identity = await state.authenticate(request, state_changing=True)
    await refuse_foreign_body(request)
    if not await state.agents.delete(identity.user_id):
        raise AgentNotFoundError
    return Response(status_code=204)
