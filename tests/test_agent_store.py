"""The custom-agent store, on SQLite and on this machine's PostgreSQL.

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
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from feature_planner.agent.profile import DEFAULT_AGENT, AgentProfile
from feature_planner.agent_store import SCHEMA_VERSION, AgentStore
from feature_planner.config import ConfigurationError
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
    agents = AgentStore(database_url)
    await agents.start()
    yield agents
    await agents.close()


def _schema_versions(database_url: str) -> list[int]:
    engine = create_engine(make_url(database_url).set(drivername=_driver(database_url)))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version FROM schema_version ORDER BY version"))
            return [row.version for row in rows]
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
    first = AgentStore(database_url)
    await first.start()
    await first.put("alice", REVIEWER)
    await first.close()
    assert _schema_versions(database_url) == [SCHEMA_VERSION]

    again = AgentStore(database_url)
    await again.start()
    try:
        assert await again.get("alice") == REVIEWER
    finally:
        await again.close()
    assert _schema_versions(database_url) == [SCHEMA_VERSION]


async def test_stores_starting_together_migrate_once(database_url: str) -> None:
    stores = [AgentStore(database_url) for _ in range(4)]
    await asyncio.gather(*(agents.start() for agents in stores))
    for agents in stores:
        await agents.close()
    assert _schema_versions(database_url) == [SCHEMA_VERSION]


async def test_a_schema_newer_than_this_release_is_refused(database_url: str) -> None:
    agents = AgentStore(database_url)
    await agents.start()
    await agents.close()
    engine = create_engine(make_url(database_url).set(drivername=_driver(database_url)))
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO schema_version (version, applied_at) VALUES (:v, :t)"),
            {"v": SCHEMA_VERSION + 1, "t": "2030-01-01 00:00:00+00:00"},
        )
    engine.dispose()
    with pytest.raises(ConfigurationError, match=r"FEATURE_PLANNER_DATABASE_URL.*newer"):
        await AgentStore(database_url).start()


# -- SQLite specifics ------------------------------------------------------------------


async def test_sqlite_creates_the_parent_directory_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "agents.db"
    agents = AgentStore(f"sqlite:///{path}")
    await agents.start()
    await agents.close()
    assert path.is_file()
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        assert conn.scalar(text("PRAGMA journal_mode")) == "wal"
    engine.dispose()


async def test_an_in_memory_sqlite_database_works_across_threads() -> None:
    agents = AgentStore("sqlite://")
    await agents.start()
    try:
        await asyncio.gather(*(agents.put(f"u{n}", REVIEWER) for n in range(10)))
        assert await agents.get("u9") == REVIEWER
    finally:
        await agents.close()


async def test_an_unusable_sqlite_path_fails_at_start_naming_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    agents = AgentStore(f"sqlite:///{blocker / 'agents.db'}")
    with pytest.raises(ConfigurationError, match="FEATURE_PLANNER_DATABASE_URL"):
        await agents.start()


# -- URLs and reachability -------------------------------------------------------------


def test_plain_postgresql_urls_use_psycopg_and_hide_the_password() -> None:
    agents = AgentStore("postgresql://fp:s3cret@db.example.com:5432/planner")
    assert agents.url == "postgresql+psycopg://fp:***@db.example.com:5432/planner"


@pytest.mark.parametrize(
    "url", ["not a url", "mysql://root@localhost/db", "postgresql+nosuchdriver://h/db"]
)
def test_a_wrong_url_fails_naming_the_setting(url: str) -> None:
    with pytest.raises(ConfigurationError, match="FEATURE_PLANNER_DATABASE_URL"):
        AgentStore(url)


async def test_an_unreachable_postgresql_fails_at_start_naming_the_setting() -> None:
    agents = AgentStore(f"postgresql://fp:s3cret@127.0.0.1:{free_port()}/planner")
    with pytest.raises(ConfigurationError) as caught:
        await agents.start()
    assert "FEATURE_PLANNER_DATABASE_URL" in str(caught.value)
    assert "s3cret" not in str(caught.value)


async def test_a_database_lost_at_run_time_is_store_unavailable(postgres_url: str) -> None:
    url = make_url(postgres_url)
    assert url.host is not None
    with _TcpProxy(url.host, url.port or 5432) as proxy:
        agents = AgentStore(url.set(port=proxy.port).render_as_string(hide_password=False))
        await agents.start()
        await agents.put("alice", REVIEWER)
        proxy.cut()
        with pytest.raises(StoreUnavailableError):
            await agents.get("alice")
        with pytest.raises(StoreUnavailableError):
            await agents.put("alice", REVIEWER)
        await agents.close()


def test_calls_before_start_are_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        asyncio.run(AgentStore("sqlite://").get("alice"))


class _TcpProxy:
    """Forwards a local port to a server until ``cut()`` closes it and every connection."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False

    def __enter__(self) -> _TcpProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            self._listener.close()
            for sock in self._sockets:
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                if self._cut:
                    client.close()
                    upstream.close()
                    return
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
