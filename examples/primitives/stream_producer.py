"""Append jobs to a Redis stream: `job-1` to `job-<count>`, one entry each.

Each entry is one `XADD` with `MAXLEN ~ STREAM_MAXLEN`: Redis trims the oldest
entries in whole blocks once the stream is longer, so it cannot grow without
bound. The stream is `primitives:streams:<STREAM>`, consumed by
stream_consumer.py. Prints one line with the count and the stream.

Run it (with Redis at the address below; the count is 1 to 100000):

    python examples/primitives/stream_producer.py 20

Environment:

- `REDIS_URL`: Redis URL (default `redis://127.0.0.1:6379/0`).
- `STREAM`: the stream's name, 1 to 64 of `A-Z a-z 0-9 - _ .` (default `jobs`).
- `STREAM_MAXLEN`: about how many entries the stream keeps (default `100000`).

A bad setting or count stops it with exit code 2 and one line.
"""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as redis
from pydantic import Field, RedisDsn, Secret, ValidationError
from pydantic_settings import BaseSettings

NAME = r"^[A-Za-z0-9_.-]{1,64}$"


class Settings(BaseSettings):
    redis_url: Secret[RedisDsn] = Secret(RedisDsn("redis://127.0.0.1:6379/0"))
    stream: str = Field("jobs", pattern=NAME)
    stream_maxlen: int = Field(100_000, ge=100, le=10_000_000)


def load_settings() -> Settings:
    """The settings, or exit code 2 with one line per bad variable and no traceback."""
    try:
        return Settings()
    except ValidationError as error:
        for problem in error.errors():
            name = str(problem["loc"][0]).upper()
            print(f"configuration error: {name}: {problem['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def job_count(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit() or not 1 <= int(argv[0]) <= 100_000:
        print("usage: stream_producer.py COUNT (1 to 100000)", file=sys.stderr)
        raise SystemExit(2)
    return int(argv[0])


# --8<-- [start:produce]
async def produce(settings: Settings, count: int) -> None:
    stream = f"primitives:streams:{settings.stream}"
    client = redis.Redis.from_url(
        str(settings.redis_url.get_secret_value()), socket_timeout=5, socket_connect_timeout=5
    )
    async with client, client.pipeline(transaction=False) as pipe:
        for n in range(1, count + 1):
            # approximate=True is MAXLEN ~: trimming whole nodes is cheap, exact is not.
            pipe.xadd(stream, {"job": f"job-{n}"}, maxlen=settings.stream_maxlen, approximate=True)
        await pipe.execute()  # one round trip for all of them
    print(f"added {count} jobs to {stream}")


# --8<-- [end:produce]

if __name__ == "__main__":
    count = job_count(sys.argv[1:])
    asyncio.run(produce(load_settings(), count))
