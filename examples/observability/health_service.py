"""A service whose `GET /health` checks PostgreSQL and Redis, each with a timeout.

`GET /health` runs both checks at once, each bounded by `HEALTH_TIMEOUT`, and
answers:

- 200 `"UP"` when both answer;
- 200 `"DEGRADED"` when only Redis (a cache: the service still works, slower)
  is down;
- 500 `"DOWN"` when PostgreSQL (without it nothing can be served) is down.

The body gives each dependency's status and, when it failed, the class of the
error (`TimeoutError`, `OperationalError`, `ConnectionError`...): never the
error message, the credentials or the URL. A dependency that accepts the
connection and never answers counts as down after `HEALTH_TIMEOUT` seconds.
`GET /live` answers 200 without looking at any dependency: the process is alive.

Run it (with PostgreSQL and Redis at the addresses below, or not: it then
reports them down):

    python examples/observability/health_service.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `DATABASE_URL`: PostgreSQL URL (default `postgresql://postgres@127.0.0.1:5432/postgres`).
- `REDIS_URL`: Redis URL (default `redis://127.0.0.1:6379/0`).
- `HEALTH_TIMEOUT`: seconds each dependency gets to answer (default `1`).

A bad setting (`PORT=abc`, `HEALTH_TIMEOUT=-1`, `DATABASE_URL=mysql://db`,
`REDIS_URL=not-a-url`) stops it at start with exit code 2 and one line naming
the variable and what it accepts. Both URLs are secrets (they can hold a
password): never printed, not even in that line.

It starts whether or not its dependencies are up, and reports them DOWN until
they are. It stops cleanly on SIGTERM or Ctrl-C, closing its Redis connections. An
unknown route answers 404 and a wrong method 405, each with a JSON error
body; no route accepts a body.
"""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlsplit

import orjson
import psycopg
import redis.asyncio as redis
from pydantic import Field, PositiveFloat, PostgresDsn, RedisDsn, Secret, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.log import logger as log
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, *_URL, HEALTH_TIMEOUT."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=1, le=65535)
    # Secret: the URL is checked as a URL, and hidden from repr() and logs (a password).
    database_url: Secret[PostgresDsn] = Secret(
        PostgresDsn("postgresql://postgres@127.0.0.1:5432/postgres")
    )
    redis_url: Secret[RedisDsn] = Secret(RedisDsn("redis://127.0.0.1:6379/0"))
    health_timeout: PositiveFloat = 1.0


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


# --8<-- [start:setup]
DATABASE_URL = str(settings.database_url.get_secret_value())  # the driver needs the password
REDIS_URL = str(settings.redis_url.get_secret_value())
HEALTH_TIMEOUT = settings.health_timeout

app = Sanic("health-service", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


def redacted(url: str) -> str:
    """scheme://host:port/path: what is safe to log. No user, no password."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}{parts.path}"


@app.before_server_start
async def open_clients(app: Sanic) -> None:
    # Creating the client connects to nothing: a Redis that is down does not
    # stop the service from starting; /health reports it instead.
    app.ctx.redis = redis.Redis.from_url(
        REDIS_URL, socket_timeout=HEALTH_TIMEOUT, socket_connect_timeout=HEALTH_TIMEOUT
    )
    log.info("checking %s and %s", redacted(DATABASE_URL), redacted(REDIS_URL))


@app.after_server_stop
async def close_clients(app: Sanic) -> None:
    await app.ctx.redis.aclose()


# --8<-- [end:setup]


# --8<-- [start:checks]
async def check_postgres() -> None:
    # A fresh connection each time: it proves that a new connection can be
    # made now, which is what the next request will need.
    connection = await psycopg.AsyncConnection.connect(
        DATABASE_URL, connect_timeout=max(2, round(HEALTH_TIMEOUT))
    )
    async with connection:
        await connection.execute("SELECT 1")


async def check_redis() -> None:
    await app.ctx.redis.ping()


async def status_of(name: str, check) -> dict[str, str]:
    try:
        await asyncio.wait_for(check(), HEALTH_TIMEOUT)
    except Exception as error:  # any failure, a timeout included, means down
        # The class name only: messages can carry host names, users, even a DSN.
        log.warning("%s is down: %s", name, type(error).__name__)
        return {"status": "DOWN", "error": type(error).__name__}
    return {"status": "UP"}


# --8<-- [end:checks]


# --8<-- [start:routes]
@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    # Both checks at once: the answer takes the slowest one, not their sum.
    postgres, cache = await asyncio.gather(
        status_of("postgres", check_postgres), status_of("redis", check_redis)
    )
    if postgres["status"] == "DOWN":
        status, code = "DOWN", 500  # nothing can be served without the database
    elif cache["status"] == "DOWN":
        status, code = "DEGRADED", 200  # still serving, only slower
    else:
        status, code = "UP", 200
    return json({"status": status, "checks": {"postgres": postgres, "redis": cache}}, status=code)


@app.get("/live")
async def live(request: Request) -> HTTPResponse:
    return json({"status": "UP"})  # the process answers: that is all liveness asks


# --8<-- [end:routes]


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
