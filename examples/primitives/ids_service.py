"""Unique ids from several processes: a local counter, Redis INCR, UUIDv4, UUIDv7, Snowflake.

Each route hands out ids by one scheme. `POST /ids/<scheme>` answers
`{"scheme": ..., "pid": ..., "ids": [...]}`; an optional JSON body
`{"count": n}` (1 to 100) asks for several at once.

- `/ids/local`: a counter in this process. Correct with one process, wrong with
  two: each starts at 1 and they hand out the same ids (the page's point).
- `/ids/redis`: `INCRBY` on one Redis key, shared by every process.
- `/ids/uuid4`: random 122 bits, no coordination at all.
- `/ids/uuid7`: a 48-bit millisecond timestamp then random bits (package uuid6):
  unique without coordination and sorted by creation time.
- `/ids/snowflake`: 64-bit integers, milliseconds | worker id | sequence, from a
  small hand-written generator. The worker id is claimed once per process with
  Redis `INCR`. Sent as strings: JavaScript loses integers above 2**53.

A route that needs Redis answers 503 with a JSON error and `Retry-After` when
Redis refuses, or does not answer within `REDIS_TIMEOUT`: never a hang.

Run it (with a Redis at `REDIS_URL`, or not: the Redis routes then answer 503):

    python examples/primitives/ids_service.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4900`).
- `REDIS_URL`: Redis URL (default `redis://127.0.0.1:6379/0`).
- `REDIS_TIMEOUT`: seconds a Redis call may take, connecting included (default `1`).

A bad setting (`PORT=abc`, `REDIS_URL=not-a-url`, `REDIS_TIMEOUT=-1`) stops it
at start with exit code 2 and one line naming the variable. `REDIS_URL` is a
secret (it can hold a password): never printed. It stops cleanly on SIGTERM or
Ctrl-C. Malformed JSON or a count out of range gets 400, an unknown route 404,
a wrong method 405, each with a JSON body.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import orjson
import redis.asyncio as redis
import uuid6
from pydantic import BaseModel, Field, PositiveFloat, RedisDsn, Secret, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest
from sanic.handlers import ErrorHandler
from sanic.log import logger as log
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, REDIS_URL, REDIS_TIMEOUT."""

    host: str = "127.0.0.1"
    port: int = Field(4900, ge=1, le=65535)
    redis_url: Secret[RedisDsn] = Secret(RedisDsn("redis://127.0.0.1:6379/0"))
    redis_timeout: PositiveFloat = 1.0


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

REDIS_TIMEOUT = settings.redis_timeout
COUNTER_KEY = "primitives:ids:counter"  # every key of this page starts primitives:ids:
WORKER_KEY = "primitives:ids:snowflake:workers"

app = Sanic("ids-service", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 1024  # {"count": 100} is a dozen bytes
app.config.MOTD = False


@app.before_server_start
async def open_redis(app: Sanic) -> None:
    # One client, one pool, per process. Creating it connects to nothing: the
    # service starts without Redis and its Redis routes answer 503 until it is back.
    # A blocking pool: the 21st request at once waits for a free connection (within
    # the deadline) instead of failing with "Too many connections".
    pool = redis.BlockingConnectionPool.from_url(
        str(settings.redis_url.get_secret_value()),
        max_connections=20,
        timeout=REDIS_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
    )
    app.ctx.redis = redis.Redis.from_pool(pool)  # aclose() closes the pool too
    app.ctx.snowflake = None
    app.ctx.claiming = asyncio.Lock()


@app.after_server_stop
async def close_redis(app: Sanic) -> None:
    await app.ctx.redis.aclose()


# --8<-- [start:local]
local_counter = itertools.count(1)  # lives in this process, and dies with it


async def local_ids(count: int) -> list[int]:
    return [next(local_counter) for _ in range(count)]


# --8<-- [end:local]


# --8<-- [start:redis]
async def redis_ids(count: int) -> list[int]:
    # INCRBY is atomic in Redis: two processes asking at once get disjoint ranges.
    last = await app.ctx.redis.incrby(COUNTER_KEY, count)
    return list(range(last - count + 1, last + 1))


# --8<-- [end:redis]


# --8<-- [start:uuids]
async def uuid4_ids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


async def uuid7_ids(count: int) -> list[str]:
    return [str(uuid6.uuid7()) for _ in range(count)]


# --8<-- [end:uuids]


# --8<-- [start:snowflake]
EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: 41 bits of ms last until 2095
WORKER_BITS, SEQUENCE_BITS = 10, 12
MAX_WORKER = (1 << WORKER_BITS) - 1  # 1,023
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1  # 4,095 ids per millisecond per worker


class ClockWentBackwards(RuntimeError):
    """The wall clock is behind the last id's time: new ids could repeat old ones."""


class Snowflake:
    """64-bit ids: milliseconds since EPOCH_MS | worker id | sequence in that ms."""

    def __init__(self, worker_id: int, clock: Callable[[], int] = time.time_ns) -> None:
        if not 0 <= worker_id <= MAX_WORKER:
            raise ValueError(f"worker id must be 0 to {MAX_WORKER}")
        self.worker_id = worker_id
        self.clock = clock  # wall-clock nanoseconds: the timestamp must mean the same everywhere
        self.last_ms = -1
        self.sequence = 0

    def next_id(self) -> int | None:
        """The next id, or None when this millisecond's 4,096 are spent (ask again)."""
        now = self.clock() // 1_000_000 - EPOCH_MS
        if now < self.last_ms:
            raise ClockWentBackwards(f"clock is {self.last_ms - now} ms behind the last id")
        if now == self.last_ms:
            if self.sequence == MAX_SEQUENCE:
                return None
            self.sequence += 1
        else:
            self.last_ms, self.sequence = now, 0
        return (
            now << (WORKER_BITS + SEQUENCE_BITS) | self.worker_id << SEQUENCE_BITS | self.sequence
        )


# --8<-- [end:snowflake]


# --8<-- [start:snowflake_ids]
async def generator() -> Snowflake:
    # Claimed once per process, on first use: INCR gives each process a new number.
    async with app.ctx.claiming:
        if app.ctx.snowflake is None:
            claimed = await app.ctx.redis.incr(WORKER_KEY)
            app.ctx.snowflake = Snowflake((claimed - 1) % (MAX_WORKER + 1))
            log.info("snowflake worker id %d", app.ctx.snowflake.worker_id)
    return app.ctx.snowflake


async def snowflake_ids(count: int) -> list[str]:
    snowflake = await generator()
    ids = []
    while len(ids) < count:
        next_id = snowflake.next_id()
        if next_id is None:
            await asyncio.sleep(0.001)  # the next millisecond, without blocking the loop
        else:
            ids.append(str(next_id))  # a string: JSON readers in JavaScript round above 2**53
    return ids


# --8<-- [end:snowflake_ids]


# --8<-- [start:answer]
class IdRequest(BaseModel):
    count: int = Field(1, ge=1, le=100)


def requested(request: Request) -> int:
    if not request.body:
        return 1
    try:
        return IdRequest.model_validate_json(request.body).count
    except ValidationError as error:
        raise BadRequest(error.errors()[0]["msg"]) from None  # no echo of the input


def unavailable(reason: str) -> HTTPResponse:
    return json({"error": reason}, status=503, headers={"Retry-After": "1"})


async def answer(
    request: Request, scheme: str, make: Callable[[int], Awaitable[list]]
) -> HTTPResponse:
    count = requested(request)
    try:
        async with asyncio.timeout(REDIS_TIMEOUT):  # one deadline, retries included
            ids = await make(count)
    except (redis.RedisError, TimeoutError, OSError) as error:
        log.warning("redis unavailable: %s", type(error).__name__)  # never the URL
        return unavailable("redis unavailable")
    except ClockWentBackwards:
        log.error("clock went backwards: refusing snowflake ids")
        return unavailable("clock went backwards")
    return json({"scheme": scheme, "pid": os.getpid(), "ids": ids})


# --8<-- [end:answer]


# --8<-- [start:routes]
@app.post("/ids/local")
async def ids_local(request: Request) -> HTTPResponse:
    return await answer(request, "local", local_ids)


@app.post("/ids/redis")
async def ids_redis(request: Request) -> HTTPResponse:
    return await answer(request, "redis", redis_ids)


@app.post("/ids/uuid4")
async def ids_uuid4(request: Request) -> HTTPResponse:
    return await answer(request, "uuid4", uuid4_ids)


@app.post("/ids/uuid7")
async def ids_uuid7(request: Request) -> HTTPResponse:
    return await answer(request, "uuid7", uuid7_ids)


@app.post("/ids/snowflake")
async def ids_snowflake(request: Request) -> HTTPResponse:
    return await answer(request, "snowflake", snowflake_ids)


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "UP"})  # Redis down is a 503 on its routes, not a dead process


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
