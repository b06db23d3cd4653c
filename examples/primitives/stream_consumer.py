"""A worker that consumes a Redis stream in a consumer group: at-least-once delivery.

It reads new jobs with `XREADGROUP` (one at a time), handles each, then
acknowledges it with `XACK`. A job read but never acknowledged (its consumer
was killed) stays in the group's pending entries list; every worker, before
reading new jobs, takes over such jobs once they have been idle for
`CLAIM_IDLE` seconds (`XAUTOCLAIM`) and handles them again.

Handling a job records two things in Redis, in one transaction:

- `primitives:streams:<STREAM>:processings`, a hash: message id -> how many
  times a worker handled it (2 or more after a redelivery);
- `primitives:streams:<STREAM>:done`, a hash: job -> the worker that did it,
  set with `HSETNX`: the effect is idempotent, a redelivery changes nothing.

After `XACK`, it adds the number of entries XACK removed (1, or 0 if another
worker had acknowledged it already) to `primitives:streams:<STREAM>:acks`.

Run it (with Redis at the address below; start as many as you like):

    python examples/primitives/stream_consumer.py

Environment:

- `REDIS_URL`: Redis URL (default `redis://127.0.0.1:6379/0`).
- `STREAM`: the stream's name, 1 to 64 of `A-Z a-z 0-9 - _ .` (default `jobs`).
- `GROUP`: the consumer group, same alphabet (default `workers`).
- `CONSUMER`: this worker's name in the group, same alphabet (default: host name and pid).
- `CLAIM_IDLE`: seconds a pending job must have been idle before another worker
  takes it over (default `30`).
- `PAUSE_ON`: a job (`job-3`) to hold after its effect and before its ack, until the
  worker is told to stop: a stand-in for a long job, so that a demonstration can kill
  a worker mid-message. A job taken over from another worker is never held (default: none).

A bad setting stops it at start with exit code 2 and one line naming the
variable; `REDIS_URL` is never printed. On SIGTERM or Ctrl-C it finishes the
job in hand (acknowledges it), reads no other, and exits 0. While Redis is
unreachable it logs the error's class and tries again every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys

import redis.asyncio as redis
from pydantic import Field, PositiveFloat, RedisDsn, Secret, ValidationError
from pydantic_settings import BaseSettings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

NAME = r"^[A-Za-z0-9_.-]{1,64}$"


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment."""

    redis_url: Secret[RedisDsn] = Secret(RedisDsn("redis://127.0.0.1:6379/0"))
    stream: str = Field("jobs", pattern=NAME)
    group: str = Field("workers", pattern=NAME)
    consumer: str = Field(f"{socket.gethostname()}-{os.getpid()}"[:64], pattern=NAME)
    claim_idle: PositiveFloat = 30.0
    pause_on: str | None = Field(None, pattern=NAME)


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

STREAM = f"primitives:streams:{settings.stream}"
PROCESSINGS, DONE, ACKS = (f"{STREAM}:{name}" for name in ("processings", "done", "acks"))
RECORDS_TTL = 24 * 3600  # the records are a demonstration: they expire after a day
BLOCK_MS = 1000  # how long XREADGROUP waits for a new job: also the stop's latency


def say(text: str) -> None:
    print(f"{settings.consumer}: {text}", flush=True)


# --8<-- [start:group]
async def create_group(client: redis.Redis) -> None:
    """The group, reading from the start of the stream ("0"), created once for all workers."""
    try:
        await client.xgroup_create(STREAM, settings.group, id="0", mkstream=True)
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):  # another worker created it first: fine
            raise
    # Listed in XINFO CONSUMERS from now on, not only once it has read a job.
    await client.xgroup_createconsumer(STREAM, settings.group, settings.consumer)


# --8<-- [end:group]


# --8<-- [start:handle]
async def handle(client: redis.Redis, message_id: str, job: str, stop: asyncio.Event, *,
                 redelivered: bool) -> None:  # fmt: skip
    async with client.pipeline(transaction=True) as pipe:
        pipe.hincrby(PROCESSINGS, message_id, 1)  # counts every attempt
        pipe.hsetnx(DONE, job, settings.consumer)  # the effect: a second time changes nothing
        pipe.expire(PROCESSINGS, RECORDS_TTL).expire(DONE, RECORDS_TTL)
        await pipe.execute()
    if job == settings.pause_on and not redelivered:
        say(f"holding {job} ({message_id}) until told to stop")
        await stop.wait()  # killed here: the effect is done, the ack is not
    acknowledged = await client.xack(STREAM, settings.group, message_id)
    await client.hincrby(ACKS, message_id, acknowledged)
    say(f"{'reprocessed' if redelivered else 'processed'} {job} ({message_id})")


# --8<-- [end:handle]


# --8<-- [start:loop]
async def consume(client: redis.Redis, stop: asyncio.Event) -> None:
    await create_group(client)
    cursor = "0-0"
    while not stop.is_set():
        # First, jobs another worker read and never acknowledged (it died?).
        cursor, claimed, _trimmed = await client.xautoclaim(
            STREAM, settings.group, settings.consumer,
            min_idle_time=int(settings.claim_idle * 1000), start_id=cursor, count=10,
        )  # fmt: skip
        for message_id, fields in claimed:
            await handle(client, message_id, fields.get("job", ""), stop, redelivered=True)
            if stop.is_set():
                return  # the rest stays pending: another worker will claim it
        # Then one new job (">": never delivered to anyone in the group).
        answer = await client.xreadgroup(
            settings.group, settings.consumer, {STREAM: ">"}, count=1, block=BLOCK_MS
        )
        for _stream, messages in answer:
            for message_id, fields in messages:
                await handle(client, message_id, fields.get("job", ""), stop, redelivered=False)


# --8<-- [end:loop]


async def main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    client = redis.Redis.from_url(
        str(settings.redis_url.get_secret_value()),
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=BLOCK_MS / 1000 + 2,  # above XREADGROUP's BLOCK, or every read times out
    )
    say(f"consuming {STREAM} in group {settings.group}")
    async with client:
        while not stop.is_set():
            try:
                await consume(client, stop)
            except (RedisConnectionError, RedisTimeoutError) as error:
                say(f"redis unavailable: {type(error).__name__}; retrying in 1 s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1)
            except ResponseError as error:
                if "NOGROUP" not in str(error):  # the stream was deleted: create it again
                    raise
    say("stopped")


if __name__ == "__main__":
    asyncio.run(main())
