"""recipe-api that honours its caller's deadline, down to the database query.

`GET /recipes/<id>` looks a recipe up with a query that takes `QUERY_SECONDS`
(a `pg_sleep`, standing in for a slow join). The caller says how long it will
still wait in the `Request-Timeout-Ms` header: milliseconds left, relative, so
no two machines' clocks need to agree. The service turns that into a deadline
on its own monotonic clock and spends no more than that:

- waiting for a pool connection: at most the time left;
- the query: `statement_timeout` set to the time left for this transaction
  only, so PostgreSQL itself stops the query when the caller has gone;
- with less than `MIN_WORK_MS` left on arrival, it answers 504 at once and
  does no work at all.

A missed deadline answers 504 with a JSON error; the work stops with it.
Without the header, the service's own `REQUEST_TIMEOUT` is the budget.
`GET /health` answers 200 with how many requests expired on arrival, how
many were stopped mid-query and how many were served.

Run it (with a PostgreSQL at `DATABASE_URL`; `QUERY_SECONDS=0.6` in front shows
the effects the page describes):

    python examples/resilience/deadline_recipe_api.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `DATABASE_URL`: PostgreSQL URL (default `postgresql://app@127.0.0.1:5432/app`).
- `REQUEST_TIMEOUT`: seconds a request may take when its caller sends no
  deadline (default `5`).
- `MIN_WORK_MS`: below this many milliseconds left, refuse at once (default `10`).
- `QUERY_SECONDS`: seconds the lookup query takes (default `0`).

A bad setting (`PORT=abc`, `REQUEST_TIMEOUT=0`, `DATABASE_URL=mysql://db`)
stops it at start with exit code 2 and one line naming the variable;
`DATABASE_URL` is a secret and never printed. A `Request-Timeout-Ms` that is
not a whole number from 1 to 600000 gets 400; PostgreSQL unreachable gets 503;
an unknown route 404, a wrong method 405, each with a JSON body. It stops
cleanly on SIGTERM or Ctrl-C, after the requests in flight.
"""

from __future__ import annotations

import sys
import time

import orjson
import psycopg
from psycopg import errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import Field, NonNegativeFloat, PositiveFloat, PostgresDsn, Secret, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest
from sanic.handlers import ErrorHandler
from sanic.log import logger as log
from sanic.response import HTTPResponse, json


class Settings(BaseSettings):
    """Read once at start from the environment."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=1, le=65535)
    database_url: Secret[PostgresDsn] = Secret(PostgresDsn("postgresql://app@127.0.0.1:5432/app"))
    request_timeout: PositiveFloat = 5.0
    min_work_ms: int = Field(10, ge=0)
    query_seconds: NonNegativeFloat = 0.0


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

app = Sanic(
    "deadline-recipe-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer)
)
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 16 * 1024
app.config.MOTD = False


@app.before_server_start
async def open_pool(app: Sanic) -> None:
    app.ctx.pool = AsyncConnectionPool(
        str(settings.database_url.get_secret_value()),
        min_size=1,
        max_size=4,
        check=AsyncConnectionPool.check_connection,
        kwargs={"connect_timeout": 2, "application_name": "deadline-recipe-api"},
        open=False,
    )
    await app.ctx.pool.open(wait=False)
    app.ctx.expired_on_arrival = app.ctx.stopped_mid_query = app.ctx.served = 0


@app.after_server_stop
async def close_pool(app: Sanic) -> None:
    await app.ctx.pool.close()


# --8<-- [start:deadline]
HEADER = "Request-Timeout-Ms"
MAX_MS = 600_000


class DeadlineExceeded(Exception):
    """The caller's time ran out here: answer 504, do no more work for it."""


def deadline_of(request: Request) -> float:
    """The request's deadline on this process's monotonic clock."""
    value = request.headers.get(HEADER)
    if value is None:
        return time.monotonic() + settings.request_timeout
    if not value.isdigit() or not 1 <= int(value) <= MAX_MS:
        raise BadRequest(f"{HEADER} must be a whole number of milliseconds, 1 to {MAX_MS}")
    return time.monotonic() + int(value) / 1000


def time_left(deadline: float) -> float:
    """Seconds left before `deadline`; DeadlineExceeded when too few to start anything."""
    left = deadline - time.monotonic()
    if left * 1000 < max(settings.min_work_ms, 1):
        raise DeadlineExceeded
    return left


# --8<-- [end:deadline]


# --8<-- [start:lookup]
async def find_recipe(recipe_id: int, deadline: float) -> dict[str, object]:
    pool: AsyncConnectionPool = app.ctx.pool
    async with (
        pool.connection(timeout=time_left(deadline)) as connection,  # else PoolTimeout
        connection.transaction(),
    ):
        # For this transaction only: PostgreSQL cancels the query when the time is up.
        milliseconds = max(1, int(time_left(deadline) * 1000))
        await connection.execute(
            "SELECT set_config('statement_timeout', %s, true)", (str(milliseconds),)
        )
        cursor = await connection.execute(
            "SELECT %s::int, 'Chicken Tikka Masala', pg_sleep(%s)",
            (recipe_id, settings.query_seconds),
        )
        row = await cursor.fetchone()
    assert row is not None  # nosec B101  # narrows the type: SELECT ... always returns a row
    return {"id": row[0], "name": row[1]}


@app.get("/recipes/<recipe_id:int>")
async def recipe(request: Request, recipe_id: int) -> HTTPResponse:
    deadline = deadline_of(request)
    try:
        time_left(deadline)  # too late already: no connection, no query
    except DeadlineExceeded:
        app.ctx.expired_on_arrival += 1
        return json({"error": "deadline exceeded", "where": "on arrival"}, status=504)
    try:
        found = await find_recipe(recipe_id, deadline)
    except (DeadlineExceeded, PoolTimeout, errors.QueryCanceled):
        app.ctx.stopped_mid_query += 1
        log.warning("recipe %d: deadline exceeded, work stopped", recipe_id)
        return json({"error": "deadline exceeded", "where": "in the database"}, status=504)
    except psycopg.OperationalError as error:
        log.warning("recipe %d: database unavailable: %s", recipe_id, type(error).__name__)
        return json({"error": "database unavailable"}, status=503, headers={"Retry-After": "1"})
    app.ctx.served += 1
    return json({"recipe": found})


# --8<-- [end:lookup]


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json(
        {
            "status": "ok",
            "expired_on_arrival": app.ctx.expired_on_arrival,
            "stopped_mid_query": app.ctx.stopped_mid_query,
            "served": app.ctx.served,
        }
    )


def main() -> None:
    app.run(host=settings.host, port=settings.port, single_process=True, access_log=False)


if __name__ == "__main__":
    main()
