"""A recipe service whose rate limit is shared, through Redis, by every instance.

Each client may make `RATE_LIMIT` requests per sliding window of `RATE_WINDOW`
seconds to `GET /recipes/<id>`, whichever instance serves them: the count lives
in Redis, one sorted set per client, updated by one Lua script (atomic: no two
instances can both see "one left" and both take it). Past the limit the answer
is 429 with a JSON body and `Retry-After`: the seconds until the oldest request
of the window leaves it.

- The client is the `X-Client-Id` header (1 to 64 letters, digits or `-_.:`;
  anything else is 400) or, without one, the peer address. Behind a proxy, put
  an authenticated identity there (an API key's id), never a value a client
  chooses freely.
- Redis keys are `primitives:ratelimit:<client>`, and expire with the window.
- Redis down or silent: 503 with a JSON body and `Retry-After: 1` within
  `REDIS_TIMEOUT` seconds. The limiter fails closed: it never serves a request
  it could not count.

Run it (with Redis at the address below):

    python examples/primitives/rate_limited_service.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4030`).
- `REDIS_URL`: Redis URL (default `redis://127.0.0.1:6379/0`).
- `RATE_LIMIT`: requests each client may make per window (default `10`).
- `RATE_WINDOW`: the window, in seconds (default `60`).
- `REDIS_TIMEOUT`: seconds Redis gets to answer before a 503 (default `0.5`).

A bad setting (`PORT=abc`, `RATE_LIMIT=-1`, `REDIS_URL=not-a-url`) stops it at
start with exit code 2 and one line naming the variable and what it accepts;
`REDIS_URL` is a secret (it can hold a password) and never printed. `GET
/health` answers 200 when Redis answers, 503 otherwise; it is not rate limited.
It stops cleanly on SIGTERM or Ctrl-C, finishing the requests in flight. An
unknown route answers 404 and a wrong method 405, each with a JSON error body.
"""

from __future__ import annotations

import asyncio
import math
import re
import sys
import uuid

import orjson
import redis.asyncio as redis
from pydantic import Field, PositiveFloat, RedisDsn, Secret, ValidationError
from pydantic_settings import BaseSettings
from redis.exceptions import RedisError
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.log import logger as log
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment."""

    host: str = "127.0.0.1"
    port: int = Field(4030, ge=1, le=65535)
    redis_url: Secret[RedisDsn] = Secret(RedisDsn("redis://127.0.0.1:6379/0"))
    rate_limit: int = Field(10, ge=1, le=100_000)  # bounds the sorted set's size too
    rate_window: float = Field(60.0, gt=0, le=86_400)
    redis_timeout: PositiveFloat = 0.5


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

app = Sanic(
    "rate-limited-service", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer)
)
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


# --8<-- [start:script]
# One round trip, run by Redis as a whole: no other command on this key can
# come between the count and the add. Redis's own clock (TIME) is the only
# clock, so instances whose clocks disagree still share one window.
SLIDING_WINDOW = """
local key, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local used = redis.call('ZCARD', key)
if used < limit then
    redis.call('ZADD', key, now, ARGV[3])
    redis.call('PEXPIRE', key, window)
    return {1, limit - used - 1, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now}
"""
# --8<-- [end:script]


@app.before_server_start
async def open_redis(app: Sanic) -> None:
    # Timeouts on every socket operation: a Redis that accepts and never
    # answers costs a request REDIS_TIMEOUT seconds, not forever.
    app.ctx.redis = redis.Redis.from_url(
        str(settings.redis_url.get_secret_value()),
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
    )
    # EVALSHA, and EVAL once when Redis does not know the script (after a restart).
    app.ctx.limiter = app.ctx.redis.register_script(SLIDING_WINDOW)


@app.after_server_stop
async def close_redis(app: Sanic) -> None:
    await app.ctx.redis.aclose()


# --8<-- [start:client]
CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def client_key(request: Request) -> str | None:
    """The client's Redis key, or None for an X-Client-Id that is not a valid id."""
    given = request.headers.get("x-client-id")
    if given is None:
        return f"primitives:ratelimit:ip:{request.ip}"
    if not CLIENT_ID.fullmatch(given):
        return None
    return f"primitives:ratelimit:id:{given}"


# --8<-- [end:client]


# --8<-- [start:limit]
UNAVAILABLE = {"error": "rate limiter unavailable, try again shortly"}


@app.on_request
async def rate_limit(request: Request) -> HTTPResponse | None:
    if request.path == "/health" or request.route is None:
        return None  # health checks are not counted; 404/405 come from Sanic
    key = client_key(request)
    if key is None:
        return json({"error": "X-Client-Id: 1 to 64 of A-Z a-z 0-9 - _ . :"}, status=400)
    window_ms = math.ceil(settings.rate_window * 1000)
    try:
        allowed, remaining, retry_ms = await asyncio.wait_for(
            app.ctx.limiter(keys=[key], args=[window_ms, settings.rate_limit, uuid.uuid4().hex]),
            settings.redis_timeout * 2,  # the connect and the call, at most
        )
    except (RedisError, TimeoutError) as error:
        # Fail closed: a request that cannot be counted is not served.
        log.warning("rate limiter unavailable: %s", type(error).__name__)
        return json(UNAVAILABLE, status=503, headers={"Retry-After": "1"})
    request.ctx.remaining = remaining
    if not allowed:
        retry_after = max(1, math.ceil(retry_ms / 1000))
        return json(
            {"error": "too many requests", "retry_after": retry_after},
            status=429,
            headers={"Retry-After": str(retry_after)},
        )
    return None


# --8<-- [end:limit]


@app.on_response
async def remaining_header(request: Request, response: HTTPResponse) -> None:
    if hasattr(request.ctx, "remaining"):
        response.headers["X-RateLimit-Remaining"] = str(request.ctx.remaining)


@app.get("/recipes/<recipe_id:int>")
async def recipe(request: Request, recipe_id: int) -> HTTPResponse:
    return json({"id": recipe_id, "name": "tofu and rice", "steps": 3})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    try:
        await asyncio.wait_for(app.ctx.redis.ping(), settings.redis_timeout * 2)
    except (RedisError, TimeoutError) as error:
        return json({"status": "DOWN", "redis": type(error).__name__}, status=503)
    return json({"status": "UP"})


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
