"""Users' custom agents, kept in SQL: a SQLite file by default, PostgreSQL by URL.

The engine is SQLAlchemy's synchronous one; every call runs in a worker thread
(``asyncio.to_thread``) so the event loop never waits on the database. The schema is
versioned in a ``schema_version`` table and brought up to date by ``start()``, under a lock,
so several processes may start against one database at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import StaticPool

from .agent.profile import AgentProfile
from .config import ConfigurationError
from .errors import StoreUnavailableError

__all__ = ["SCHEMA_VERSION", "AgentStore"]

SCHEMA_VERSION = 1
"""The schema this code reads and writes; ``start()`` migrates older databases up to it."""

_SETTING = "FEATURE_PLANNER_DATABASE_URL"
_UNAVAILABLE = "The custom-agent database is unreachable; try again shortly"
_CONNECT_TIMEOUT_S = 5
_SQLITE_BUSY_TIMEOUT_S = 5
# Any constant will do: it serialises migrations of this app across processes (PostgreSQL).
_MIGRATION_LOCK_KEY = 0x46504147  # "FPAG"

_metadata = MetaData()

schema_version = Table(
    "schema_version",
    _metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

custom_agents = Table(
    "custom_agents",
    _metadata,
    Column("user_id", String(255), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("role", String(500), nullable=False),
    Column("focus", String(500), nullable=False),
    Column("system_prompt", Text, nullable=False),
    Column("temperature", Float, nullable=False),
    Column("tools", JSON, nullable=False),
    Column("is_active", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


def _create_custom_agents(conn: Connection) -> None:
    custom_agents.create(conn, checkfirst=True)


# Migration n (1-based) brings a database from version n-1 to n. Append; never edit one.
_MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_create_custom_agents,)
assert len(_MIGRATIONS) == SCHEMA_VERSION

_P = ParamSpec("_P")
_T = TypeVar("_T")


class AgentStore:
    """``get`` / ``put`` / ``delete`` a user's one custom agent; ``active`` for a run."""

    def __init__(self, database_url: str) -> None:
        self._url = _driver_url(database_url)
        self._engine: Engine | None = None
        self._serial = threading.Lock()

    @property
    def url(self) -> str:
        """The database URL in use, password hidden: safe to log."""
        return self._url.render_as_string(hide_password=True)

    async def start(self) -> None:
        """Connect, and create or migrate the schema; ``ConfigurationError`` if that fails."""
        engine: Engine | None = None
        try:
            engine = await asyncio.to_thread(_create_engine, self._url)
            await asyncio.to_thread(_migrate, engine)
        except BaseException as exc:
            if engine is not None:
                engine.dispose()
            if isinstance(exc, SQLAlchemyError | OSError):
                raise ConfigurationError(
                    f"{_SETTING}: cannot use the custom-agent database {self.url}: {_reason(exc)}"
                ) from exc
            raise
        self._engine = engine

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.dispose)

    async def get(self, user_id: str) -> AgentProfile | None:
        return await self._run(_get, user_id)

    async def active(self, user_id: str) -> AgentProfile | None:
        """The user's agent if they have one and it is active: what a run should use."""
        profile = await self.get(user_id)
        return profile if profile is not None and profile.is_active else None

    async def put(self, user_id: str, profile: AgentProfile) -> AgentProfile:
        """Store ``profile`` as the user's agent, replacing any they had."""
        await self._run(_put, user_id, profile)
        return profile

    async def delete(self, user_id: str) -> bool:
        """Remove the user's agent; ``False`` if they had none."""
        return await self._run(_delete, user_id)

    async def _run(
        self, call: Callable[Concatenate[Engine, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        engine = self._engine
        if engine is None:
            raise RuntimeError("AgentStore is not started (or already closed)")
        # One in-memory SQLite connection: sqlite3 must not run it in two threads at once.
        serial = self._serial if isinstance(engine.pool, StaticPool) else contextlib.nullcontext()

        def run() -> _T:
            with serial:
                return call(engine, *args, **kwargs)

        try:
            return await asyncio.to_thread(run)
        except (OperationalError, InterfaceError, PoolTimeoutError) as exc:
            raise StoreUnavailableError(_UNAVAILABLE) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise StoreUnavailableError(_UNAVAILABLE) from exc
            raise


# -- engine ----------------------------------------------------------------------------


def _driver_url(database_url: str) -> URL:
    """Parse the URL; plain ``postgresql://`` means psycopg 3, whatever SQLAlchemy's default."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ConfigurationError(
            f"{_SETTING} is not a database URL (expected sqlite:///path/to/file.db or "
            "postgresql://user@host/database)"
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            f"{_SETTING} must be a sqlite:// or postgresql:// URL, not {url.drivername}://"
        )
    try:
        url.get_dialect()
    except NoSuchModuleError:
        raise ConfigurationError(
            f"{_SETTING}: SQLAlchemy has no driver {url.drivername!r}; use sqlite:// or "
            "postgresql+psycopg:// (pip install 'psycopg[binary]')"
        ) from None
    return url


def _create_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = _CONNECT_TIMEOUT_S
    # pre_ping: a connection the server dropped (restart, failover) is replaced, not used.
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in database
    connect_args: dict[str, Any] = {
        "check_same_thread": False,  # connections move between worker threads
        "timeout": _SQLITE_BUSY_TIMEOUT_S,
    }
    if in_memory:
        # One connection shared by every thread: each new one would be a new, empty database.
        engine = create_engine(url, poolclass=StaticPool, connect_args=connect_args)
    else:
        if not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # The sqlite3 module's own transaction handling skips BEGIN before DDL and SELECT;
        # turn it off and let SQLAlchemy emit BEGIN itself (``_on_begin``).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                # WAL: readers never wait for the writer; NORMAL is durable enough with WAL.
                _use_wal(cursor)
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_S * 1000}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A migration reads the version and then writes: take the write lock up front.
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (it stays so); retried, as the switch ignores the busy timeout."""
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _reason(exc: BaseException) -> str:
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


# -- the calls, each run in a worker thread --------------------------------------------


def _migrate(engine: Engine) -> None:
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            schema_version.create(conn, checkfirst=True)
            current = conn.scalar(select(func.max(schema_version.c.version))) or 0
            if current > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"{_SETTING}: the database's schema is at version {current}, newer than "
                    f"this release knows ({SCHEMA_VERSION}); upgrade Feature Planner"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[version - 1](conn)
                conn.execute(insert(schema_version).values(version=version, applied_at=_now()))


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
