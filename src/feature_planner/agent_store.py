"""Users' custom agents, kept in the SQL database (``database.Database``): one per user."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from .agent.profile import AgentProfile
from .database import Database
from .tables import custom_agents

__all__ = ["AgentStore"]

_UNAVAILABLE = "The custom-agent database is unreachable; try again shortly"


class AgentStore:
    """``get`` / ``put`` / ``delete`` a user's one custom agent; ``active`` for a run.

    The ``database`` is started and closed by its owner, before and after the store is used.
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, user_id: str) -> AgentProfile | None:
        return await self._database.run(_get, user_id, unavailable=_UNAVAILABLE)

    async def active(self, user_id: str) -> AgentProfile | None:
        """The user's agent if they have one and it is active: what a run should use."""
        profile = await self.get(user_id)
        return profile if profile is not None and profile.is_active else None

    async def put(self, user_id: str, profile: AgentProfile) -> AgentProfile:
        """Store ``profile`` as the user's agent, replacing any they had."""
        await self._database.run(_put, user_id, profile, unavailable=_UNAVAILABLE)
        return profile

    async def delete(self, user_id: str) -> bool:
        """Remove the user's agent; ``False`` if they had none."""
        return await self._database.run(_delete, user_id, unavailable=_UNAVAILABLE)


# -- the calls, each run in a worker thread --------------------------------------------


def _get(engine: Engine, user_id: str) -> AgentProfile | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(custom_agents).where(custom_agents.c.user_id == user_id)
        ).one_or_none()
    if row is None:
        return None
    return AgentProfile(
        name=row.name,
        role=row.role,
        focus=row.focus,
        system_prompt=row.system_prompt,
        temperature=row.temperature,
        tools=row.tools,
        is_active=row.is_active,
    )


def _put(engine: Engine, user_id: str, profile: AgentProfile) -> None:
    now = _now()
    values = {
        "name": profile.name,
        "role": profile.role,
        "focus": profile.focus,
        "system_prompt": profile.system_prompt,
        "temperature": profile.temperature,
        "tools": list(profile.tools),
        "is_active": profile.is_active,
        "updated_at": now,
    }
    # Both dialects spell an upsert the same way; created_at is kept on a replace.
    upsert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    statement = upsert(custom_agents).values(user_id=user_id, created_at=now, **values)
    statement = statement.on_conflict_do_update(index_elements=["user_id"], set_=values)
    with engine.begin() as conn:
        conn.execute(statement)


def _delete(engine: Engine, user_id: str) -> bool:
    with engine.begin() as conn:
        result = conn.execute(delete(custom_agents).where(custom_agents.c.user_id == user_id))
    return result.rowcount > 0


def _now() -> datetime:
    return datetime.now(UTC)
