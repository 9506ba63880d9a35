"""The custom-agent store and the database's migrations, on SQLite and this machine's PostgreSQL.

PostgreSQL tests run in a schema of their own (dropped after), reached through the URL's
``search_path``. ``FEATURE_PLANNER_TEST_POSTGRES_URL`` says which server; when it cannot be
reached the tests skip locally and fail in CI (``CI`` set).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from feature_planner.agent.profile import DEFAULT_AGENT, AgentProfile
from feature_planner.agent_store import AgentStore
from feature_planner.config import ConfigurationError
from feature_planner.database import Database
from feature_planner.errors import StoreUnavailableError
from feature_planner.serving import free_port

POSTGRES_URL = os.environ.get(
    "FEATURE_PLANNER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

REVIEWER = AgentProfile(
    name="Accessibility reviewer",
    role="Accessibility specialist",
    focus="Keyboard navigation and screen readers",
    system_prompt="Propose accessibility features.\nName the files.",
    temperature=0.25,
    tools=["Read", "Grep"],
    is_active=True,
)


def _unreachable(reason: str) -> None:
    pytest.fail(
        f"PostgreSQL at {make_url(POSTGRES_URL)!r} is unreachable ({reason}); scripts/test "
        "starts one (scripts/ensure-postgres), or set FEATURE_PLANNER_TEST_POSTGRES_URL"
    )


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL whose connections live in a fresh schema, dropped after the test."""
    admin = create_engine(
        POSTGRES_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    schema = f"fp_test_{uuid.uuid4().hex[:16]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        _unreachable(str(exc.orig).strip().splitlines()[0])
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    # The store is given plain postgresql://, so the switch to psycopg is exercised too.
    yield url.set(drivername="postgresql").render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'feature-planner.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[AgentStore]:
    database = Database(database_url)
    await database.start()
    yield AgentStore(database)
    await database.close()


HEAD = ScriptDirectory(
    str(Path(__file__).parent.parent / "src" / "feature_planner" / "migrations")
).get_current_head()


def raw_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url.set(drivername=_driver(database_url)))


def _revisions(database_url: str) -> list[str]:
    engine = raw_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


def _tables(database_url: str) -> set[str]:
    engine = raw_engine(database_url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _driver(database_url: str) -> str:
    return "postgresql+psycopg" if database_url.startswith("postgresql:") else "sqlite"


async def test_a_user_without_an_agent_gets_none(store: AgentStore) -> None:
    assert await store.get("alice") is None
    assert await store.active("alice") is None
    assert await store.delete("alice") is False


async def test_put_then_get_returns_the_same_profile(store: AgentStore) -> None:
    assert await store.put("alice", REVIEWER) == REVIEWER
    assert await store.get("alice") == REVIEWER
    assert await store.active("alice") == REVIEWER


async def test_put_replaces_the_whole_profile(store: AgentStore) -> None:
    await store.put("alice", REVIEWER)
    replacement = DEFAULT_AGENT.model_copy(update={"tools": ["Glob"], "temperature": 1.0})
    await store.put("alice", replacement)
    assert await store.get("alice") == replacement


async def test_delete_removes_the_agent_once(store: AgentStore) -> None:
    await store.put("alice", REVIEWER)
    assert await store.delete("alice") is True
    assert await store.get("alice") is None
    assert await store.delete("alice") is False


async def test_an_inactive_agent_is_stored_but_not_active(store: AgentStore) -> None:
    paused = REVIEWER.model_copy(update={"is_active": False})
    await store.put("alice", paused)
    assert await store.get("alice") == paused
    assert await store.active("alice") is None


async def test_each_user_has_their_own_agent(store: AgentStore) -> None:
    await store.put("alice", REVIEWER)
    assert await store.get("bob") is None
    await store.put("bob", DEFAULT_AGENT)
    await store.delete("bob")
    assert await store.get("alice") == REVIEWER
    assert await store.get("bob") is None


async def test_an_empty_tool_list_round_trips(store: AgentStore) -> None:
    no_tools = REVIEWER.model_copy(update={"tools": []})
    await store.put("alice", no_tools)
    assert await store.get("alice") == no_tools


async def test_concurrent_calls_do_not_interfere(store: AgentStore) -> None:
    users = [f"user-{n}" for n in range(20)]
    await asyncio.gather(*(store.put(user, REVIEWER) for user in users))
    profiles = await asyncio.gather(*(store.get(user) for user in users))
    assert profiles == [REVIEWER] * len(users)


async def test_start_creates_the_schema_and_reopening_migrates_nothing(database_url: str) -> None:
    first = Database(database_url)
    await first.start()
    await AgentStore(first).put("alice", REVIEWER)
    await first.close()
    assert _revisions(database_url) == [HEAD]
    assert {"custom_agents", "job_history", "alembic_version"} <= _tables(database_url)

    again = Database(database_url)
    await again.start()
    try:
        assert await AgentStore(again).get("alice") == REVIEWER
    finally:
        await again.close()
    assert _revisions(database_url) == [HEAD]


async def test_databases_starting_together_migrate_once(database_url: str) -> None:
    """Each start has its own engine and thread: they race for the migration lock."""
    databases = [Database(database_url) for _ in range(4)]
    await asyncio.gather(*(database.start() for database in databases))
    await AgentStore(databases[0]).put("alice", REVIEWER)
    assert await AgentStore(databases[3]).get("alice") == REVIEWER
    for database in databases:
        await database.close()
    assert _revisions(database_url) == [HEAD]


async def test_a_database_of_the_release_before_alembic_migrates_keeping_its_rows(
    database_url: str,
) -> None:
    engine = raw_engine(database_url)
    with engine.begin() as conn:  # what that release's start() made, in its own words
        conn.execute(
            text(
                "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                "applied_at TIMESTAMP WITH TIME ZONE NOT NULL)"
            )
        )
        conn.execute(
            text(
                "CREATE TABLE custom_agents (user_id VARCHAR(255) PRIMARY KEY, "
                "name VARCHAR(100) NOT NULL, role VARCHAR(500) NOT NULL, "
                "focus VARCHAR(500) NOT NULL, system_prompt TEXT NOT NULL, "
                "temperature FLOAT NOT NULL, tools JSON NOT NULL, is_active BOOLEAN NOT NULL, "
                "created_at TIMESTAMP WITH TIME ZONE NOT NULL, "
                "updated_at TIMESTAMP WITH TIME ZONE NOT NULL)"
            )
        )
        conn.execute(
            text("INSERT INTO schema_version (version, applied_at) VALUES (1, :t)"),
            {"t": "2025-06-01 12:00:00+00:00"},
        )
        conn.execute(
            text(
                "INSERT INTO custom_agents VALUES (:user, :name, :role, :focus, :prompt, "
                ":temperature, :tools, :active, :t, :t)"
            ),
            {
                "user": "alice",
                "name": REVIEWER.name,
                "role": REVIEWER.role,
                "focus": REVIEWER.focus,
                "prompt": REVIEWER.system_prompt,
                "temperature": REVIEWER.temperature,
                "tools": '["Read", "Grep"]',
                "active": True,
                "t": "2025-06-01 12:00:00+00:00",
            },
        )
    engine.dispose()

    databases = [Database(database_url) for _ in range(2)]
    await asyncio.gather(*(database.start() for database in databases))
    try:
        assert await AgentStore(databases[0]).get("alice") == REVIEWER
    finally:
        for database in databases:
            await database.close()
    assert _revisions(database_url) == [HEAD]
    tables = _tables(database_url)
    assert {"custom_agents", "job_history"} <= tables
    assert "schema_version" not in tables


async def test_a_schema_newer_than_this_release_is_refused(database_url: str) -> None:
    database = Database(database_url)
    await database.start()
    await database.close()
    engine = raw_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9001_from_the_future'"))
    engine.dispose()
    with pytest.raises(
        ConfigurationError, match=r"FEATURE_PLANNER_DATABASE_URL.*9001_from_the_future.*newer"
    ):
        await Database(database_url).start()
    assert _revisions(database_url) == ["9001_from_the_future"]  # left as it was


# -- SQLite specifics ------------------------------------------------------------------


async def test_sqlite_creates_the_parent_directory_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "agents.db"
    database = Database(f"sqlite:///{path}")
    await database.start()
    await database.close()
    assert path.is_file()
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.scalar(text("PRAGMA journal_mode")) == "wal"
    engine.dispose()


async def test_an_in_memory_sqlite_database_works_across_threads() -> None:
    database = Database("sqlite://")
    await database.start()
    agents = AgentStore(database)
    try:
        await asyncio.gather(*(agents.put(f"u{n}", REVIEWER) for n in range(10)))
        assert await agents.get("u9") == REVIEWER
    finally:
        await database.close()


async def test_an_unusable_sqlite_path_fails_at_start_naming_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    database = Database(f"sqlite:///{blocker / 'agents.db'}")
    with pytest.raises(ConfigurationError, match="FEATURE_PLANNER_DATABASE_URL"):
        await database.start()


# -- URLs and reachability -------------------------------------------------------------


def test_plain_postgresql_urls_use_psycopg_and_hide_the_password() -> None:
    database = Database("postgresql://fp:s3cret@db.example.com:5432/planner")
    assert database.url == "postgresql+psycopg://fp:***@db.example.com:5432/planner"


@pytest.mark.parametrize(
    "url", ["not a url", "mysql://root@localhost/db", "postgresql+nosuchdriver://h/db"]
)
def test_a_wrong_url_fails_naming_the_setting(url: str) -> None:
    with pytest.raises(ConfigurationError, match="FEATURE_PLANNER_DATABASE_URL"):
        Database(url)


async def test_an_unreachable_postgresql_fails_at_start_naming_the_setting() -> None:
    database = Database(f"postgresql://fp:s3cret@127.0.0.1:{free_port()}/planner")
    with pytest.raises(ConfigurationError) as caught:
        await database.start()
    assert "FEATURE_PLANNER_DATABASE_URL" in str(caught.value)
    assert "s3cret" not in str(caught.value)


async def test_a_database_lost_at_run_time_is_store_unavailable(postgres_url: str) -> None:
    url = make_url(postgres_url)
    assert url.host is not None
    with TcpProxy(url.host, url.port or 5432) as proxy:
        database = Database(url.set(port=proxy.port).render_as_string(hide_password=False))
        await database.start()
        agents = AgentStore(database)
        await agents.put("alice", REVIEWER)
        proxy.cut()
        with pytest.raises(StoreUnavailableError, match="custom-agent database"):
            await agents.get("alice")
        with pytest.raises(StoreUnavailableError):
            await agents.put("alice", REVIEWER)
        await database.close()


def test_calls_before_start_are_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        asyncio.run(AgentStore(Database("sqlite://")).get("alice"))


class TcpProxy:
    """Forwards a local port to a server; ``cut()`` drops every connection and refuses new
    ones until ``restore()`` (the server seems down, then back); ``close()`` stops it."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False

    def __enter__(self) -> TcpProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refused = self._cut
            if refused:
                client.close()
                continue
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
