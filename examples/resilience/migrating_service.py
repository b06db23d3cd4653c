"""A recipes service whose code follows a live rename of a column, one STAGE at a time.

The column `recipes.name` becomes `title` without a moment of downtime: each
schema change (examples/resilience/migrations/live/) is applied while a
version of this code that works with the schema before *and* after it is
serving. `STAGE` picks which SQL this process runs:

- `1`: reads and writes `name` (the code before the rename).
- `2`: writes `name` and `title`, reads `name` (dual-write).
- `3`: writes both, reads `title` (after the backfill).
- `4`: writes and reads `title` only (before `name` is dropped).

The HTTP API does not change: `POST /recipes` with `{"name": "..."}` answers
201 with `{"id": ..., "name": ...}`; `GET /recipes/<id>` answers the recipe, or
404. `GET /health` runs `SELECT 1`.

Run it (with a PostgreSQL at `DATABASE_URL` migrated with
examples/resilience/migrations/):

    python examples/resilience/migrating_service.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4300`).
- `DATABASE_URL`: PostgreSQL URL (default `postgresql://postgres@127.0.0.1:5432/postgres`).
- `STAGE`: which code path of the rename, 1 to 4 (default `1`).
- `DB_TIMEOUT`: seconds a request waits for a connection (default `2`).

A bad setting (`PORT=abc`, `STAGE=5`, `DB_TIMEOUT=-1`, `DATABASE_URL=mysql://db`)
stops it at start with exit code 2 and one line naming the variable.
`DATABASE_URL` is a secret: never printed. Bad input gets a 4xx with a JSON
body (malformed JSON 400, a body that is not a recipe 422, over 16 KiB 413).
PostgreSQL unreachable: 503 with a JSON error. It stops cleanly on SIGTERM or
Ctrl-C: requests in flight finish, then the pool closes.
"""

from __future__ import annotations

import sys

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
)
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest, NotFound
from sanic.handlers import ErrorHandler
from sanic.log import logger as log
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, DATABASE_URL, STAGE, DB_TIMEOUT."""

    host: str = "127.0.0.1"
    port: int = Field(4300, ge=1, le=65535)
    database_url: Secret[PostgresDsn] = Secret(
        PostgresDsn("postgresql://postgres@127.0.0.1:5432/postgres")
    )
    stage: int = Field(1, ge=1, le=4)
    db_timeout: PositiveFloat = 2.0


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

# --8<-- [start:stages]
# The SQL of each stage. The API keeps saying "name"; only the column changes.
WRITE = {
    1: "INSERT INTO recipes (name) VALUES (%(name)s) RETURNING id",
    2: "INSERT INTO recipes (name, title) VALUES (%(name)s, %(name)s) RETURNING id",
    3: "INSERT INTO recipes (name, title) VALUES (%(name)s, %(name)s) RETURNING id",
    4: "INSERT INTO recipes (title) VALUES (%(name)s) RETURNING id",
}
READ = {
    1: "SELECT name FROM recipes WHERE id = %(id)s",
    2: "SELECT name FROM recipes WHERE id = %(id)s",
    3: "SELECT title FROM recipes WHERE id = %(id)s",
    4: "SELECT title FROM recipes WHERE id = %(id)s",
}
WRITE_SQL, READ_SQL = WRITE[settings.stage], READ[settings.stage]
# --8<-- [end:stages]

app = Sanic("migrating-service", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 16 * 1024
app.config.MOTD = False


@app.before_server_start
async def open_pool(app: Sanic) -> None:
    app.ctx.pool = AsyncConnectionPool(
        str(settings.database_url.get_secret_value()),
        name="recipes",
        min_size=2,
        max_size=10,
        timeout=settings.db_timeout,
        check=AsyncConnectionPool.check_connection,
        kwargs={"connect_timeout": max(2, round(settings.db_timeout))},
        open=False,
    )
    await app.ctx.pool.open(wait=False)
    log.info("stage %d: writes %r, reads %r", settings.stage, WRITE_SQL, READ_SQL)


@app.after_server_stop
async def close_pool(app: Sanic) -> None:
    await app.ctx.pool.close()


@app.exception(psycopg.OperationalError)
async def database_unavailable(request: Request, error: Exception) -> HTTPResponse:
    log.warning("%s %s: database unavailable: %s", request.method, request.path,
                type(error).__name__)  # fmt: skip
    return json({"error": "database unavailable"}, status=503, headers={"Retry-After": "1"})


@app.exception(psycopg.Error)
async def database_error(request: Request, error: psycopg.Error) -> HTTPResponse:
    # The schema and the code disagree (a column missing, a NOT NULL violated):
    # a bug on our side, so a 500, and the log says which.
    log.error("%s %s: %s: %s", request.method, request.path, type(error).__name__,
              error.diag.message_primary)  # fmt: skip
    return json({"error": "database error", "reason": type(error).__name__}, status=500)


# --8<-- [start:routes]
class NewRecipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)


@app.post("/recipes")
async def add_recipe(request: Request) -> HTTPResponse:
    try:
        recipe = NewRecipe.model_validate(orjson.loads(request.body))
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not JSON") from None
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False, include_context=False)
        return json({"error": "not a recipe", "problems": problems}, status=422)
    async with request.app.ctx.pool.connection() as connection:
        cursor = await connection.execute(WRITE_SQL, {"name": recipe.name})
        (recipe_id,) = await cursor.fetchone()
    return json({"id": recipe_id, "name": recipe.name}, status=201)


@app.get("/recipes/<recipe_id:int>")
async def get_recipe(request: Request, recipe_id: int) -> HTTPResponse:
    if not 0 < recipe_id < 2**63:  # beyond bigint: no such recipe, not a database error
        raise NotFound(f"no recipe {recipe_id}")
    async with request.app.ctx.pool.connection() as connection:
        cursor = await connection.execute(READ_SQL, {"id": recipe_id})
        row = await cursor.fetchone()
    if row is None:
        raise NotFound(f"no recipe {recipe_id}")
    return json({"id": recipe_id, "name": row[0]})


# --8<-- [end:routes]


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    try:
        async with request.app.ctx.pool.connection() as connection:
            await connection.execute("SELECT 1")
    except psycopg.OperationalError as error:
        return json({"status": "DOWN", "error": type(error).__name__}, status=503)
    return json({"status": "UP", "stage": settings.stage})


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
