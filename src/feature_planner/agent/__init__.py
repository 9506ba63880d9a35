"""The agent side: what a run asks for, what it produces, and the providers that do it.

Nothing here knows about HTTP or SSE: a provider reports its text and activity through a
``RunSink`` and returns a ``PlanResult``.
"""

from .base import PlanRequest, PlanResult, Provider, RunSink
from .profile import DEFAULT_AGENT, AgentProfile
from .sandbox import Sandbox, SandboxError
from .tools import RepositoryTools, ToolDefinition, ToolResult

__all__ = [
    "DEFAULT_AGENT",
    "AgentProfile",
    "PlanRequest",
    "PlanResult",
    "Provider",
    "RepositoryTools",
    "RunSink",
    "Sandbox",
    "SandboxError",
    "ToolDefinition",
    "ToolResult",
]
