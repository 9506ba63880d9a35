"""What the routes share: built once by ``create_app`` and kept on ``app.state.planner``."""

from __future__ import annotations

from dataclasses import dataclass

from ..agents import AgentStore
from ..auth import LocalAuthenticator
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
