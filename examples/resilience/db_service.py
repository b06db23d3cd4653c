"""A notes service that writes to PostgreSQL through a connection pool, and rides out outages.

`POST /notes` with `{"id": "<uuid>", "text": "..."}` writes one row and
answers 201 only once the transaction is committed (200 if that id was
already written: the client's id makes a retry safe). `GET /notes/count`
counts the rows. `GET /health` borrows a connection from the pool and runs
`SELECT 1`: 200 `UP`, or 503 `DOWN` when no working connection comes within
`DB_TIMEOUT`; both give the pool's size, idle and waiting counts.

While PostgreSQL is unreachable (stopped, restarting, its connections killed)
every database route answers 503 with a JSON error and `Retry-After: 1`
within `DB_TIMEOUT` seconds, never hangs, and the process keeps running. The
pool tests each connection before lending it and reconnects in the background,
so the service recovers by itself within seconds of PostgreSQL coming back.

Run it (with a PostgreSQL at `DATABASE_URL`; a role that owns its database
is enough, the table is created when missing):

    python examples/resilience/db_service.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4200`).
- `DATABASE_URL`: PostgreSQL URL (default `postgresql://app@127.0.0.1:5432/notes`).
- `POOL_MIN_SIZE`: connections the pool keeps open (default `2`).
- `POOL_MAX_SIZE`: connections it may open at most, at least `POOL_MIN_SIZE` (default `10`).
- `DB_TIMEOUT`: seconds a request waits for a connection, and a statement may run (default `2`).
- `RECONNECT_TIMEOUT`: seconds one series of reconnection attempts lasts before the
  pool gives up on it and logs so; the next request starts a new one (default `5`).

A bad setting (`PORT=abc`, `POOL_MIN_SIZE=-1`, `POOL_MAX_SIZE=0`,
`DB_TIMEOUT=abc`, `DATABASE_URL=mysql://db`) stops it at start with exit code 2
and one line naming the variable and what it accepts. `DATABASE_URL` is a
secret (it can hold a password): never printed, not even in that line.

Bad input gets a 4xx with a JSON body: malformed JSON 400, a body that is not a
note 422, a body over 16 KiB 413, an unknown route 404, a wrong method 405. It
stops cleanly on SIGTERM or Ctrl-C: requests in flight finish, then the pool
closes its connections.
"""

from __future__ import annotations

import logging
import sys
import uuid
from urllib.parse import urlsplit

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PostgresDsn,
    Secret,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest
from sanic.handlers import ErrorHandler
from sanic.log import logger as log
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, DATABASE_URL, POOL_*, *_TIMEOUT."""

    host: str = "127.0.0.1"
    port: int = Field(4200, ge=1, le=65535)
    database_url: Secret[PostgresDsn] = Secret(PostgresDsn("postgresql://app@127.0.0.1:5432/notes"))
    pool_min_size: int = Field(2, ge=0)
    pool_max_size: int = Field(10, ge=1)
    db_timeout: PositiveFloat = 2.0
    reconnect_timeout: PositiveFloat = 5.0

    @field_validator("pool_max_size")
    @classmethod
    def not_below_min(cls, value: int, info: ValidationInfo) -> int:
        if value < info.data.get("pool_min_size", 0):
            raise ValueError("must be at least POOL_MIN_SIZE")
        return value


def load_settings() -> Settings:
    """The settings, or exit code 2 with one line per bad variable and no traceback."""
    try:
        return Settings()
    except ValidationError as error:
        for problem in error.errors():
            name = str(problem["loc"][0]).upper()
            print(f"configuration error: {name}: {problem['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


settings = load_settings()
# --8<-- [end:settings]

DATABASE_URL = str(settings.database_url.get_secret_value())  # the driver needs the password

app = Sanic("db-service", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 16 * 1024  # a note is small: larger bodies get 413
app.config.MOTD = False

# The pool's own warnings (a connection refused, a reconnection given up) in our log.
# psycopg's messages name the host, port and user, never the password.
pool_log = logging.getLogger("psycopg.pool")
pool_log.addHandler(logging.StreamHandler())
pool_log.setLevel(logging.WARNING)


def redacted(url: str) -> str:
    """scheme://host:port/path: what is safe to log. No user, no password."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}{parts.path}"


# --8<-- [start:table]
TABLE = """
CREATE TABLE IF NOT EXISTS notes (
    id uuid PRIMARY KEY,
    text text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)"""


async def create_table(connection: psycopg.AsyncConnection) -> None:
    # A migration tool's job in a real project; here every new connection makes
    # sure the table exists, and the lock makes instances starting together take turns.
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext('notes'))")
        await connection.execute(TABLE)


# --8<-- [end:table]


# --8<-- [start:pool]
async def gave_up(pool: AsyncConnectionPool) -> None:
    log.warning(
        "pool %s: reconnection failed for %gs, next request retries",
        pool.name,
        pool.reconnect_timeout,
    )


@app.before_server_start
async def open_pool(app: Sanic) -> None:
    app.ctx.pool = AsyncConnectionPool(
        DATABASE_URL,
        name="notes",
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.db_timeout,  # waiting for a connection: then PoolTimeout
        check=AsyncConnectionPool.check_connection,  # test a connection before lending it
        reconnect_timeout=settings.reconnect_timeout,
        reconnect_failed=gave_up,
        configure=create_table,
        kwargs={
            "connect_timeout": max(2, round(settings.db_timeout)),  # libpq: whole seconds, >= 2
            "application_name": "db-service",
            # The server ends a statement that runs too long; the commit waits for the
            # WAL write whatever the server's default is: a 201 means written.
            "options": f"-c statement_timeout={round(settings.db_timeout * 1000)}"
            " -c synchronous_commit=on",
        },
        open=False,
    )
    # Not waiting: the service starts even when PostgreSQL is down, the pool
    # connects in the background, and /health says DOWN until it has.
    await app.ctx.pool.open(wait=False)
    log.info("pool of %d-%d connections to %s", settings.pool_min_size,
             settings.pool_max_size, redacted(DATABASE_URL))  # fmt: skip


@app.after_server_stop
async def close_pool(app: Sanic) -> None:
    await app.ctx.pool.close()  # after the requests in flight have finished


# --8<-- [end:pool]


# --8<-- [start:unavailable]
@app.exception(psycopg.OperationalError)
async def database_unavailable(request: Request, error: Exception) -> HTTPResponse:
    # PoolTimeout (no working connection in time), a connection lost mid-query, a
    # statement timeout: all OperationalError, all "try again soon", never a hang.
    log.warning("%s %s: database unavailable: %s", request.method, request.path,
                type(error).__name__)  # fmt: skip
    return json(
        {"error": "database unavailable", "reason": type(error).__name__},
        status=503,
        headers={"Retry-After": "1"},
    )


# --8<-- [end:unavailable]


# --8<-- [start:add_note]
class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID  # chosen by the client: a retried POST writes nothing twice
    text: str = Field(min_length=1, max_length=1000)


@app.post("/notes")
async def add_note(request: Request) -> HTTPResponse:
    try:
        note = Note.model_validate(orjson.loads(request.body))
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not JSON") from None
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False, include_context=False)
        return json({"error": "not a note", "problems": problems}, status=422)
    async with request.app.ctx.pool.connection() as connection:
        cursor = await connection.execute(
            "INSERT INTO notes (id, text) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING RETURNING id",
            (note.id, note.text),
        )
        created = await cursor.fetchone() is not None
    # Leaving the block committed the transaction (or raised): only now is it safe to say so.
    return json({"id": str(note.id)}, status=201 if created else 200)


# --8<-- [end:add_note]


# --8<-- [start:other_routes]
@app.get("/notes/count")
async def count_notes(request: Request) -> HTTPResponse:
    async with request.app.ctx.pool.connection() as connection:
        cursor = await connection.execute("SELECT count(*) FROM notes")
        (count,) = await cursor.fetchone()
    return json({"count": count})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    pool: AsyncConnectionPool = request.app.ctx.pool
    try:
        async with pool.connection() as connection:
            await connection.execute("SELECT 1")
    except psycopg.OperationalError as error:
        body = {"status": "DOWN", "error": type(error).__name__, "pool": pool_state(pool)}
        return json(body, status=503)
    return json({"status": "UP", "pool": pool_state(pool)})


def pool_state(pool: AsyncConnectionPool) -> dict[str, int]:
    stats = pool.get_stats()
    return {
        "size": stats["pool_size"],
        "idle": stats["pool_available"],
        "waiting": stats["requests_waiting"],
    }


# --8<-- [end:other_routes]


def main() -> None:
    app.run(
        host=settings.host,
        port=settings.port,
        single_process=True,
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
