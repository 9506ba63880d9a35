"""What the routes share: built once by ``create_app`` and kept on ``app.state.planner``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from ..agents import AgentStore
from ..auth import Identity, LocalAuthenticator, check_same_origin
from ..config import Settings
from ..jobs.service import JobService

__all__ = ["AppState"]


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    auth: LocalAuthenticator
    service: JobService
    agents: AgentStore
    trusted_origins: frozenset[str]

    def authenticate(self, conn: HTTPConnection, *, state_changing: bool) -> Identity:
        """The caller; a cookie-authenticated state change must come from our own origin."""
        identity = self.auth.authenticate(conn)
        if state_changing:
            check_same_origin(conn, identity, self.trusted_origins)
        return identity
