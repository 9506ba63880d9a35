"""The SQL database the stores share: a SQLite file by default, PostgreSQL by URL.

The engine is SQLAlchemy's synchronous one; every call runs in a worker thread
(``asyncio.to_thread``) so the event loop never waits on the database. ``start()`` brings the
schema to the newest migration (``migrations/``, Alembic) in one transaction that holds a
lock, so several processes may start against one database at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, TypeVarTuple

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
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

from .config import ConfigurationError
from .errors import StoreUnavailableError

__all__ = ["UNAVAILABLE", "Database", "reason"]

UNAVAILABLE = "The database is unreachable; try again shortly"
"""``run``'s message when the database cannot be reached and the caller names none."""

_SETTING = "FEATURE_PLANNER_DATABASE_URL"
_MIGRATIONS = Path(__file__).parent / "migrations"
_CONNECT_TIMEOUT_S = 5
_SQLITE_BUSY_TIMEOUT_S = 5
# Any constant will do: it serialises migrations of this app across processes (PostgreSQL).
_MIGRATION_LOCK_KEY = 0x46504147  # "FPAG"

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")


class Database:
    """One engine for the process; ``run(call, ...)`` calls ``call(engine, ...)`` in a thread."""

    def __init__(self, url: str) -> None:
        self._url = _driver_url(url)
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
                    f"{_SETTING}: cannot use the database {self.url}: {reason(exc)}"
                ) from exc
            raise
        self._engine = engine

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await asyncio.to_thread(engine.dispose)

    async def run(
        self,
        call: Callable[[Engine, *_Ts], _T],
        *args: *_Ts,
        unavailable: str = UNAVAILABLE,
    ) -> _T:
        """``call(engine, *args)`` in a worker thread; ``StoreUnavailableError(unavailable)``
        when the database cannot be reached (down, connection lost, pool exhausted)."""
        engine = self._engine
        if engine is None:
            raise RuntimeError("Database is not started (or already closed)")
        # One in-memory SQLite connection: sqlite3 must not run it in two threads at once.
        serial = self._serial if isinstance(engine.pool, StaticPool) else contextlib.nullcontext()

        def run() -> _T:
            with serial:
                return call(engine, *args)

        call_in_thread = asyncio.ensure_future(asyncio.to_thread(run))
        try:
            return await asyncio.shield(call_in_thread)
        except asyncio.CancelledError:
            # A thread cannot be stopped: the caller ends when the call has, so that nothing
            # uses a connection once the caller is gone (``close()`` may dispose the engine).
            await asyncio.wait([call_in_thread])
            if not call_in_thread.cancelled():
                call_in_thread.exception()  # retrieved: its outcome no longer matters
            raise
        except (OperationalError, InterfaceError, PoolTimeoutError) as exc:
            raise StoreUnavailableError(unavailable) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise StoreUnavailableError(unavailable) from exc
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


def reason(exc: BaseException) -> str:
    """The first line of the driver's message (for ``StoreUnavailableError``, of its cause):
    says why, without the URL and so without its password."""
    if isinstance(exc, StoreUnavailableError) and exc.__cause__ is not None:
        exc = exc.__cause__
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


# -- migrations ------------------------------------------------------------------------


def _alembic_config(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def _migrate(engine: Engine) -> None:
    """Bring the schema to head in one transaction that holds the migration lock first.

    PostgreSQL: ``pg_advisory_xact_lock``, released at commit; SQLite: ``BEGIN IMMEDIATE``,
    the write lock. The process that waited then finds the schema at head and does nothing.
    Alembic sees the connection already in a transaction and opens none of its own.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            config = _alembic_config(conn)
            script = ScriptDirectory.from_config(config)
            known = {revision.revision for revision in script.walk_revisions()}
            current = MigrationContext.configure(conn).get_current_heads()
            unknown = sorted(set(current) - known)
            if unknown:
                raise ConfigurationError(
                    f"{_SETTING}: the database's schema is at revision {', '.join(unknown)}, "
                    f"newer than this release knows ({script.get_current_head()}); upgrade "
                    "Feature Planner"
                )
            command.upgrade(config, "head")
