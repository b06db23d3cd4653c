"""docs/resilience/database.md, against a real PostgreSQL this module starts and stops.

The module's own PostgreSQL (the kit's server with a small `max_connections`) can be
stopped and started under a running db_service.py. A client thread writes notes the
whole time, each with its own id, and records every answer: while the server is
down the answers are 503, none hangs, a 201 comes back after the restart without
touching the service, and every acknowledged id is in the table afterwards.

No outcome depends on the machine's speed: waits are bounds on reaching a state,
and the serial/concurrent claim is read from the server's own timestamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from kit.examples import RunningExample, StartExample
from kit.process import ROOT, free_port, wait_until
from kit.services.postgresql import PostgresServer
from psycopg_pool import AsyncConnectionPool

SERVICE = "resilience/db_service.py"
PAGE = ROOT / "docs" / "resilience" / "database.md"
CANARY = "s3cret-Pa55word"  # a password that must never be shown
BOUND = 20.0  # seconds: a bound on reaching a state, never a pass/fail threshold
MAX_CONNECTIONS = 10
RESERVED = 3  # superuser_reserved_connections, PostgreSQL's default
APP_SLOTS = MAX_CONNECTIONS - RESERVED  # what every non-superuser client shares
# PostgreSQL 15's words, as the page quotes them
REFUSED_APP = (
    "FATAL:  remaining connection slots are reserved for non-replication superuser connections"
)
REFUSED_ALL = "FATAL:  sorry, too many clients already"

# --8<-- [start:setup_sql]
SETUP_SQL = [
    "CREATE ROLE app LOGIN",  # not a superuser: the reserved slots stay the operator's
    "CREATE DATABASE notes OWNER app",  # its owner may create the table
]
# --8<-- [end:setup_sql]


class DatabaseServer(PostgresServer):
    """The kit's PostgreSQL with few connection slots, and an `app` role and database."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.process.argv += [
            "-c", f"max_connections={MAX_CONNECTIONS}",
            "-c", f"superuser_reserved_connections={RESERVED}",
        ]  # fmt: skip
        self.app_url = self.url.replace("postgres@", "app@").rsplit("/", 1)[0] + "/notes"

    def setup(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as admin:
            for statement in SETUP_SQL:
                admin.execute(statement)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """As the superuser: a reserved slot, so it works even when the app's are full."""
        with psycopg.connect(self.url, autocommit=True, dbname="notes") as admin:
            return admin.execute(sql, params).fetchall()

    def other_clients(self) -> int:
        """Client connections besides the one asking (a superuser's count too: they take
        ordinary slots first, and the reserved ones only when those are full)."""
        rows = self.query(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        return rows[0][0]

    def service_backends(self) -> set[int]:
        rows = self.query("SELECT pid FROM pg_stat_activity WHERE application_name = 'db-service'")
        return {pid for (pid,) in rows}

    def stored_ids(self) -> set[str]:
        return {str(note_id) for (note_id,) in self.query("SELECT id FROM notes")}


@contextlib.contextmanager
def database_server() -> Iterator[DatabaseServer]:
    workdir = Path(tempfile.mkdtemp(prefix="distributed-python-pg-resilience-"))
    server = DatabaseServer(workdir)
    try:
        server.init()
        server.start()
        server.setup()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def database() -> Iterator[DatabaseServer]:
    """This module's PostgreSQL: its tests stop and start it, and count its slots."""
    with database_server() as server:
        yield server


def start_service(
    run_example: StartExample, database: DatabaseServer, **env: str
) -> RunningExample:
    # DB_TIMEOUT=1: a request waits 1 s for a connection while PostgreSQL is down (2 s
    # by default), so the outage tests see their 503s sooner; the claims are the same.
    env = {
        "DATABASE_URL": database.app_url,
        "POOL_MIN_SIZE": "2",
        "POOL_MAX_SIZE": "4",
        "DB_TIMEOUT": "1",
        **env,
    }
    return run_example(SERVICE, env=env)


# --- serial queries on one connection, concurrent ones on a pool -----------------------

# --8<-- [start:two_sleeps]
SLEEP = """SELECT pg_backend_pid(), statement_timestamp(), clock_timestamp()
           FROM pg_sleep(%s)"""  # the server's clocks: when it began, when it ended


async def sleep_on(connection: psycopg.AsyncConnection, seconds: float) -> tuple:
    cursor = await connection.execute(SLEEP, (seconds,))
    return await cursor.fetchone()


async def two_sleeps_on_one_connection(url: str, seconds: float) -> list[tuple]:
    async with await psycopg.AsyncConnection.connect(url) as connection:
        # Two queries at once, one connection: the second waits for the first.
        return await asyncio.gather(sleep_on(connection, seconds), sleep_on(connection, seconds))


async def two_sleeps_on_a_pool(url: str, seconds: float) -> list[tuple]:
    async with AsyncConnectionPool(url, min_size=2, max_size=2, open=False) as pool:
        await pool.wait()  # both connections made before the clock starts

        async def pooled() -> tuple:
            async with pool.connection() as connection:  # one each
                return await sleep_on(connection, seconds)

        return await asyncio.gather(pooled(), pooled())


# --8<-- [end:two_sleeps]


def test_one_connection_runs_two_queries_one_after_the_other(database: DatabaseServer) -> None:
    first, second = sorted(
        asyncio.run(two_sleeps_on_one_connection(database.app_url, 0.5)), key=lambda r: r[1]
    )
    assert first[0] == second[0]  # one backend
    assert second[1] >= first[2]  # the second began once the first had ended


def test_a_pool_runs_two_queries_at_once(database: DatabaseServer) -> None:
    first, second = sorted(
        asyncio.run(two_sleeps_on_a_pool(database.app_url, 0.5)), key=lambda r: r[1]
    )
    assert first[0] != second[0]  # two backends
    assert second[1] < first[2]  # the second began while the first was still sleeping


# --- a check before lending: the pool's answer to connections that died ------------------


async def query_after_kill(database: DatabaseServer, check: object) -> tuple[int, str]:
    """(pid before, outcome) of one query through a one-connection pool whose
    connection PostgreSQL killed while it sat idle in the pool."""
    async with AsyncConnectionPool(
        database.app_url, min_size=1, max_size=1, check=check, timeout=5, open=False
    ) as pool:
        async with pool.connection() as connection:
            pid = connection.info.backend_pid
        database.query("SELECT pg_terminate_backend(%s)", (pid,))
        wait_until(
            lambda: not database.query("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)),
            BOUND,
            "the killed backend to exit",
        )
        try:
            async with pool.connection() as connection:
                cursor = await connection.execute("SELECT pg_backend_pid()")
                (new_pid,) = await cursor.fetchone()
        except psycopg.OperationalError as error:  # AdminShutdown: "terminating connection..."
            return pid, type(error).__name__
        return pid, f"served by {'another' if new_pid != pid else 'the same'} backend"


def test_without_a_check_the_pool_lends_a_dead_connection(database: DatabaseServer) -> None:
    _, outcome = asyncio.run(query_after_kill(database, None))
    assert outcome == "AdminShutdown"


def test_with_a_check_the_pool_replaces_a_dead_connection(database: DatabaseServer) -> None:
    _, outcome = asyncio.run(query_after_kill(database, AsyncConnectionPool.check_connection))
    assert outcome == "served by another backend"


# --- a write load through outages ----------------------------------------------------------


@dataclass
class Answer:
    sent: float
    received: float
    note_id: str
    outcome: int | str  # a status code, or the class of a client error ("ReadTimeout")


def unavailable(response: httpx.Response) -> bool:
    return (
        response.headers.get("Retry-After") == "1"
        and response.json().get("error") == "database unavailable"
    )


@dataclass
class Writer:
    """One client POSTing notes back to back, each with a fresh id; every answer kept."""

    url: str
    answers: list[Answer] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        # The read timeout is far above DB_TIMEOUT: a hang shows as ReadTimeout.
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.done.is_set():
                note_id = str(uuid.uuid4())
                sent = time.monotonic()
                try:
                    response = client.post("/notes", json={"id": note_id, "text": "hello"})
                    outcome: int | str = response.status_code
                    if outcome == 503 and not unavailable(response):
                        outcome = "503 without its JSON error"
                except httpx.HTTPError as error:
                    outcome = type(error).__name__
                self.answers.append(Answer(sent, time.monotonic(), note_id, outcome))
                time.sleep(0.01)

    def count(self, outcome: int | str, after: float = 0.0) -> int:
        return sum(1 for a in self.answers if a.outcome == outcome and a.sent >= after)

    def acknowledged(self) -> set[str]:
        return {a.note_id for a in self.answers if a.outcome == 201}

    def outcomes(self) -> set[int | str]:
        return {a.outcome for a in self.answers}


@contextlib.contextmanager
def writing(url: str) -> Iterator[Writer]:
    writer = Writer(url)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        yield writer
    finally:
        writer.done.set()
        thread.join(30)
        assert not thread.is_alive(), "the writer hung"


def until(check: Callable[[], object], what: str) -> None:
    wait_until(check, BOUND, what)


def test_postgres_restart_503_while_down_recovers_and_loses_no_write(
    run_example: StartExample, database: DatabaseServer
) -> None:
    # The server trusts loopback: the password is ignored by it, and must be by the log.
    url = database.app_url.replace("app@", f"app:{CANARY}@")
    service = start_service(run_example, database, DATABASE_URL=url)
    with writing(service.url) as writer:
        until(lambda: writer.count(201) >= 5, "notes written before the outage")
        database.stop()  # fast shutdown: committed transactions are kept
        stopped = time.monotonic()
        until(lambda: writer.count(503, after=stopped) >= 2, "503s while PostgreSQL is down")
        health = httpx.get(f"{service.url}/health", timeout=10)
        restarting = time.monotonic()
        database.start()
        until(lambda: writer.count(201, after=restarting) >= 3, "201s after the restart")

    down = [a for a in writer.answers if a.sent >= stopped and a.received <= restarting]
    assert down
    assert {a.outcome for a in down} == {503}  # every answer while down
    assert writer.outcomes() <= {201, 503}  # no 500, no timeout, no transport error
    assert health.status_code == 503
    assert health.json()["status"] == "DOWN"
    assert service.alive()
    assert httpx.get(f"{service.url}/health", timeout=10).json()["status"] == "UP"
    acknowledged, stored = writer.acknowledged(), database.stored_ids()
    assert acknowledged <= stored  # no acknowledged write lost
    assert len(stored) >= len(acknowledged)
    assert httpx.get(f"{service.url}/notes/count", timeout=10).json() == {"count": len(stored)}
    assert service.stop() == 0
    assert "error connecting in 'notes'" in service.output()  # the pool's own warnings
    assert CANARY not in service.output()


def test_starts_without_postgres_and_answers_503(run_example: StartExample) -> None:
    nowhere = f"postgresql://app@127.0.0.1:{free_port()}/notes"  # nothing listens there
    service = run_example(
        SERVICE, env={"DATABASE_URL": nowhere, "DB_TIMEOUT": "1"}, ready="started"
    )
    health = httpx.get(f"{service.url}/health", timeout=10)
    assert health.status_code == 503
    assert health.json()["status"] == "DOWN"
    assert health.json()["error"] == "PoolTimeout"
    note = httpx.post(f"{service.url}/notes", json={"id": str(uuid.uuid4()), "text": "x"})
    assert note.status_code == 503
    assert unavailable(note)


def test_killed_connections_are_replaced_and_lose_no_write(
    run_example: StartExample, database: DatabaseServer
) -> None:
    service = start_service(run_example, database)
    with writing(service.url) as writer:
        until(lambda: writer.count(201) >= 5, "notes written before the kill")
        killed = {
            pid
            for (pid, _) in database.query(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'db-service'"
            )
        }
        terminated = time.monotonic()
        until(lambda: writer.count(201, after=terminated) >= 10, "201s after the kill")

    assert killed
    assert writer.outcomes() <= {201, 503}
    assert database.service_backends()  # connected again...
    assert not database.service_backends() & killed  # ...with new backends
    acknowledged, stored = writer.acknowledged(), database.stored_ids()
    assert acknowledged <= stored
    assert len(stored) >= len(acknowledged)


def test_a_retried_note_is_written_once_and_a_bad_note_gets_422(
    run_example: StartExample, database: DatabaseServer
) -> None:
    service = start_service(run_example, database)
    note = {"id": str(uuid.uuid4()), "text": "once"}
    first = httpx.post(f"{service.url}/notes", json=note)
    again = httpx.post(f"{service.url}/notes", json=note)
    assert (first.status_code, again.status_code) == (201, 200)
    rows = database.query("SELECT count(*) FROM notes WHERE id = %s", (note["id"],))
    assert rows == [(1,)]
    secret = "do-not-echo-" + "x" * 2000  # too long, and never sent back
    bad = httpx.post(f"{service.url}/notes", json={"id": "nope", "text": secret, "extra": 1})
    assert bad.status_code == 422
    assert bad.json()["error"] == "not a note"
    assert {p["loc"][0] for p in bad.json()["problems"]} == {"id", "text", "extra"}
    assert "do-not-echo" not in bad.text
    assert httpx.post(f"{service.url}/notes", content=b"{not json").status_code == 400


# --- pool size against max_connections ---------------------------------------------------


def test_pools_over_max_connections_are_refused_and_reserved_slots_stay_free(
    run_example: StartExample, database: DatabaseServer
) -> None:
    # Every slot free, not only the services': any connection still closing from an
    # earlier test (a superuser's included) would take one the first pool needs.
    until(lambda: database.other_clients() == 0, "earlier connections to close")
    pools = {"POOL_MIN_SIZE": "4", "POOL_MAX_SIZE": "4"}
    first = start_service(run_example, database, **pools)
    until(lambda: len(database.service_backends()) == 4, "the first pool to fill")
    second = start_service(run_example, database, **pools)  # 4 + 4 > 7 slots
    until(lambda: REFUSED_APP in second.output(), "the second pool to be refused a connection")
    assert len(database.service_backends()) == APP_SLOTS
    assert REFUSED_APP not in first.output()
    assert httpx.get(f"{second.url}/health", timeout=10).status_code == 200  # it looks fine

    # The reserved slots let the superuser in, until they are full too.
    held = [psycopg.connect(database.url) for _ in range(RESERVED)]
    try:
        with pytest.raises(psycopg.OperationalError) as refused:
            psycopg.connect(database.url)
        assert REFUSED_ALL in str(refused.value)
    finally:
        for connection in held:
            connection.close()

    assert second.stop() == 0
    until(lambda: len(database.service_backends()) == 4, "the second pool's connections to close")
    third = start_service(run_example, database, POOL_MIN_SIZE="3", POOL_MAX_SIZE="3")
    until(lambda: len(database.service_backends()) == APP_SLOTS, "4 + 3 connections")
    assert REFUSED_APP not in third.output()


def test_the_page_shows_what_the_tests_run() -> None:
    page = PAGE.read_text()
    for include in [
        "tests/resilience/test_database.py:two_sleeps",
        "tests/resilience/test_database.py:setup_sql",
        "examples/resilience/db_service.py:pool",
        "snippets/resilience/db_pool.md",
    ]:
        assert f'--8<-- "{include}"' in page
    assert REFUSED_APP in page  # the refusal the tests saw, word for word
    assert REFUSED_ALL.removeprefix("FATAL:  ") in page
