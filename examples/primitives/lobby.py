"""A game lobby: the fourth player to join turns the lobby into a game, atomically.

`POST /lobby/join` with `{"name": "..."}` adds the player to the lobby, a Redis
set. The join that makes four players moves all four into a new game (a set
under `primitives:{lobby}:game:<id>`, kept `GAME_TTL` seconds) and empties the
lobby, in one Lua script (`lobby.lua`, beside this file) that Redis runs with
nothing in between. The answer is `{"status": "waiting"}`, or `{"status":
"game", "game": "<id>"}` for the join that made a game (201).

The script is sent once (`SCRIPT LOAD`) and then called by its SHA1 with
`EVALSHA`; when Redis answers `NOSCRIPT` (it restarted, failed over, or someone
ran `SCRIPT FLUSH`) the service loads it again and repeats the call. The
player's name reaches the script as an argument, never pasted into its code.

A name is 1 to 40 characters, no control characters (400 otherwise). If Redis
does not answer within `REDIS_TIMEOUT` seconds, or refuses the connection, the
answer is 503 with a JSON error, and the join is not retried (a retry of a
join whose answer was lost could add the player twice).

Run it (with Redis at the address below):

    python examples/primitives/lobby.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4090`).
- `REDIS_URL`: Redis URL (default `redis://127.0.0.1:6379/0`).
- `REDIS_TIMEOUT`: seconds Redis gets to connect and to answer (default `1`).
- `GAME_TTL`: seconds a game is kept in Redis (default `3600`).

A bad setting (`PORT=abc`, `REDIS_URL=http://x`, `REDIS_TIMEOUT=-1`) stops it at
start with exit code 2 and one line naming the variable; `REDIS_URL` is a
secret and never printed. `GET /health` answers 200 once the process serves
(it does not ask Redis: a Redis outage is answered by 503 on each join). It
stops cleanly on SIGTERM or Ctrl-C, finishing the requests in flight. Malformed
JSON is 400, a body over 4 KiB 413, an unknown route 404 and a wrong method
405, each with a JSON error body.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import orjson
import redis.asyncio as redis
from pydantic import BaseModel, Field, PositiveFloat, PositiveInt, RedisDsn, Secret, ValidationError
from pydantic_settings import BaseSettings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json
from uuid6 import uuid7


class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, REDIS_URL, REDIS_TIMEOUT, GAME_TTL."""

    host: str = "127.0.0.1"
    port: int = Field(4090, ge=1, le=65535)
    redis_url: Secret[RedisDsn] = Secret(RedisDsn("redis://127.0.0.1:6379/0"))
    redis_timeout: PositiveFloat = 1.0
    game_ttl: PositiveInt = 3600


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

app = Sanic("lobby", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 4 * 1024
app.config.MOTD = False


@app.before_server_start
async def open_redis(app: Sanic) -> None:
    # Connects lazily: the service starts whether Redis is up or not.
    app.ctx.redis = redis.Redis.from_url(
        str(settings.redis_url.get_secret_value()),
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        retry=Retry(NoBackoff(), 0),  # no silent retries: a join must run at most once
        decode_responses=True,
    )


@app.after_server_stop
async def close_redis(app: Sanic) -> None:
    await app.ctx.redis.aclose()


# --8<-- [start:script]
LOBBY = "primitives:{lobby}:waiting"  # {lobby}: one hash slot for every key, on a Cluster too
GAME = "primitives:{lobby}:game:"
GAME_SIZE = 4
SCRIPT = (Path(__file__).parent / "lobby.lua").read_bytes()
SCRIPT_SHA = hashlib.sha1(SCRIPT, usedforsecurity=False).hexdigest()  # the name Redis gives it


async def join_lobby(client: redis.Redis, player: str) -> str | None:
    """Add the player; return the new game's id if this join made one."""
    game_id = str(uuid7())  # used only if this join is the fourth
    keys = [LOBBY, GAME + game_id]  # every key the script touches, named in KEYS
    args = [player, game_id, GAME_SIZE, settings.game_ttl]  # user input: ARGV, never code
    try:
        return await client.evalsha(SCRIPT_SHA, len(keys), *keys, *args)
    except NoScriptError:  # first call, or Redis lost its script cache: send it, once
        await client.script_load(SCRIPT)
        return await client.evalsha(SCRIPT_SHA, len(keys), *keys, *args)


# --8<-- [end:script]


# --8<-- [start:routes]
class Join(BaseModel):
    name: str = Field(min_length=1, max_length=40, pattern=r"^[^\x00-\x1f\x7f]+$")


@app.post("/lobby/join")
async def join(request: Request) -> HTTPResponse:
    try:
        player = Join.model_validate(request.json)  # malformed JSON: Sanic answers 400
    except ValidationError as invalid:
        return json({"error": "invalid player", "details": invalid.errors(include_url=False)}, 400)
    try:
        game_id = await join_lobby(request.app.ctx.redis, player.name)
    except (RedisConnectionError, RedisTimeoutError) as failure:
        # The class name only: a message can hold the host, or more.
        return json({"error": "redis unavailable", "kind": type(failure).__name__}, 503)
    if game_id is None:
        return json({"status": "waiting"})
    return json({"status": "game", "game": game_id}, status=201)


# --8<-- [end:routes]


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
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
