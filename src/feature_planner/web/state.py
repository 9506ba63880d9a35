"""What the routes share: built once by ``create_app`` and kept on ``app.state.planner``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from ..agent_store import AgentStore
from ..auth import STREAM_TOKEN_PARAMETER, Authenticator, Identity, StreamTokens, check_same_origin
from ..config import Settings
from ..jobs.service import JobService

__all__ = ["AppState"]


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    auth: Authenticator
    stream_tokens: StreamTokens
    service: JobService
    agents: AgentStore
    trusted_origins: frozenset[str]

    async def authenticate(
        self, conn: HTTPConnection, *, state_changing: bool, job_id: str | None = None
    ) -> Identity:
        """The caller; a cookie-authenticated state change must come from our own origin.

        On a job's own routes (``job_id``), a stream token in the query authenticates for
        that job alone, unless an ``Authorization`` header says who the caller is.
        """
        if job_id is not None and "authorization" not in conn.headers:
            token = conn.query_params.get(STREAM_TOKEN_PARAMETER)
            if token is not None:
                return self.stream_tokens.verify(token, job_id)
        identity = await self.auth.authenticate(conn)
        if state_changing:
            check_same_origin(conn, identity, self.trusted_origins)
        return identity
