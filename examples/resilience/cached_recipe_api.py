"""recipe-api with a cache in front of a slow source: a local LRU, then memcached.

`GET /recipes/<id>` (1 to 1000) reads through two cache tiers before the source:

1. a bounded in-process LRU with a time to live (`cachetools.TTLCache`): no network,
   but each process has its own, and it holds at most `LOCAL_CACHE_SIZE` recipes;
2. memcached (cache-aside with `aiomcache`): shared by every process of the
   service, each entry kept `CACHE_TTL` seconds;
3. the source, a deliberately slow "database" (`SOURCE_DELAY` seconds per read,
   an `asyncio.sleep`: the event loop keeps serving while it waits).

The `X-Cache` header says which tier answered: `local`, `memcached` or `miss`.
Every memcached call is bounded by `CACHE_TIMEOUT`: when memcached is down or
hung, recipes still come from the source (slower), never a 5xx and never a hang.
`GET /health` answers 200 with `"cache": "ok"` or `"cache": "degraded"` (memcached
unreachable: the service works, slower), and counts the reads that reached the
source (`source_reads`).

Run it (with memcached listening on 127.0.0.1:11211, or not: it then runs degraded):

    python examples/resilience/cached_recipe_api.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `MEMCACHED`: memcached's address as `host:port` (default `127.0.0.1:11211`).
- `CACHE_TTL`: seconds an entry lives in memcached (default `60`).
- `CACHE_TIMEOUT`: seconds each memcached call may take (default `0.2`).
- `LOCAL_CACHE_SIZE`: recipes the in-process LRU holds at most (default `256`).
- `LOCAL_CACHE_TTL`: seconds an entry lives in the in-process LRU (default `5`).
- `SOURCE_DELAY`: seconds each read from the source takes (default `0.05`).

A bad setting stops it at start with exit code 2 and one line naming the
variable. It stops cleanly on SIGTERM or Ctrl-C. An unknown recipe or route
answers 404 and a wrong method 405, each with a JSON error body; no route
accepts a body.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiomcache
import orjson
from cachetools import TTLCache
from pydantic import Field, PositiveFloat, PositiveInt, ValidationError, field_validator
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.log import logger as log
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=1, le=65535)
    memcached: str = "127.0.0.1:11211"
    cache_ttl: PositiveInt = 60
    cache_timeout: PositiveFloat = 0.2
    local_cache_size: PositiveInt = 256
    local_cache_ttl: PositiveFloat = 5.0
    source_delay: float = Field(0.05, ge=0)

    @field_validator("memcached")
    @classmethod
    def host_and_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError("expected host:port, such as 127.0.0.1:11211")
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

MEMCACHED_HOST, _, MEMCACHED_PORT = settings.memcached.rpartition(":")
RECIPES = range(1, 1001)

app = Sanic("cached-recipe-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


# --8<-- [start:clients]
def new_memcached() -> aiomcache.Client:
    # Creating the client connects to nothing: a memcached that is down does not
    # stop the service from starting.
    return aiomcache.Client(MEMCACHED_HOST, int(MEMCACHED_PORT), pool_size=8)


@app.before_server_start
async def open_clients(app: Sanic) -> None:
    app.ctx.memcached = new_memcached()
    # Tier 1: bounded (LOCAL_CACHE_SIZE entries, least recently used evicted first)
    # and expiring (LOCAL_CACHE_TTL): it can neither grow without end nor serve
    # a recipe for ever after the source changed it.
    app.ctx.local = TTLCache(maxsize=settings.local_cache_size, ttl=settings.local_cache_ttl)
    app.ctx.source_reads = 0


@app.after_server_stop
async def close_clients(app: Sanic) -> None:
    await app.ctx.memcached.close()


# --8<-- [end:clients]


# --8<-- [start:bounded]
async def cache_call(call: Callable[[aiomcache.Client], Awaitable[Any]]) -> Any:
    """One memcached call, bounded by CACHE_TIMEOUT. Raises on any failure."""
    client = app.ctx.memcached
    try:
        return await asyncio.wait_for(call(client), settings.cache_timeout)
    except TimeoutError:
        # A call cut short may leave half an answer on its connection: start
        # afresh rather than read it as the answer to the next call.
        app.ctx.memcached = new_memcached()
        await client.close()
        raise


async def cache_get(key: bytes) -> bytes | None:
    try:
        return await cache_call(lambda client: client.get(key))
    except Exception as error:  # down, hung, refused: a miss, never an error
        log.warning("memcached get failed: %s", type(error).__name__)
        return None


async def cache_set(key: bytes, value: bytes) -> None:
    try:
        await cache_call(lambda client: client.set(key, value, exptime=settings.cache_ttl))
    except Exception as error:
        log.warning("memcached set failed: %s", type(error).__name__)


# --8<-- [end:bounded]


# --8<-- [start:source]
async def read_source(recipe_id: int) -> bytes:
    """The slow database: SOURCE_DELAY seconds, without blocking the event loop."""
    app.ctx.source_reads += 1
    await asyncio.sleep(settings.source_delay)
    recipe = {"id": recipe_id, "name": f"Recipe {recipe_id}", "steps": ["mix", "bake"]}
    return orjson.dumps(recipe)


# --8<-- [end:source]


# --8<-- [start:routes]
@app.get("/recipes/<recipe_id:int>")
async def recipe(request: Request, recipe_id: int) -> HTTPResponse:
    if recipe_id not in RECIPES:
        return json({"error": "no such recipe"}, status=404)
    key = f"recipe:{recipe_id}".encode()
    body, tier = app.ctx.local.get(key), "local"
    if body is None:
        body, tier = await cache_get(key), "memcached"
        if body is None:
            body, tier = await read_source(recipe_id), "miss"
            await cache_set(key, body)  # cache-aside: the reader fills the cache
        app.ctx.local[key] = body
    return HTTPResponse(body, content_type="application/json", headers={"X-Cache": tier})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    try:
        await cache_call(lambda client: client.version())
        cache = "ok"
    except Exception:
        cache = "degraded"  # recipes still come from the source, slower
    return json(
        {
            "status": "ok",
            "cache": cache,
            "source_reads": app.ctx.source_reads,
            "local_entries": len(app.ctx.local),
        }
    )


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
