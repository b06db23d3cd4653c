"""Pub/sub forgets what was published while nobody listened; a stream keeps it.

Publishes three orders on a channel while no one is subscribed, subscribes,
publishes three more, and prints what the subscriber received. Each order is
also appended to a stream (`XADD`), and the program prints what the stream
holds: all six. The channel and the stream are `primitives:demo:orders`; the
stream is deleted at the start and at the end.

Run it (with Redis at the address below):

    python examples/primitives/pubsub_vs_stream.py

Environment:

- `REDIS_URL`: Redis URL (default `redis://127.0.0.1:6379/0`).

A bad `REDIS_URL` stops it with exit code 2 and one line, without printing the
URL (it can hold a password).
"""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as redis
from pydantic import RedisDsn, Secret, ValidationError
from pydantic_settings import BaseSettings


class Settings(BaseSettings):
    redis_url: Secret[RedisDsn] = Secret(RedisDsn("redis://127.0.0.1:6379/0"))


def load_settings() -> Settings:
    """The settings, or exit code 2 with one line per bad variable and no traceback."""
    try:
        return Settings()
    except ValidationError as error:
        for problem in error.errors():
            name = str(problem["loc"][0]).upper()
            print(f"configuration error: {name}: {problem['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


CHANNEL = STREAM = "primitives:demo:orders"


# --8<-- [start:demo]
async def publish(client: redis.Redis, orders: range) -> list[int]:
    """Each order to the channel and to the stream; how many received each."""
    receivers = []
    for n in orders:
        receivers.append(await client.publish(CHANNEL, f"order-{n}"))
        await client.xadd(STREAM, {"order": f"order-{n}"}, maxlen=1000)
    return receivers


async def main() -> None:
    settings = load_settings()
    client = redis.Redis.from_url(
        str(settings.redis_url.get_secret_value()),
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=5,
    )
    async with client:
        await client.delete(STREAM)
        before = await publish(client, range(1, 4))  # nobody is subscribed yet
        print(f"order-1 to order-3, no subscriber: received by {before}")

        async with client.pubsub() as subscriber:
            await subscriber.subscribe(CHANNEL)
            after = await publish(client, range(4, 7))
            print(f"order-4 to order-6, one subscriber: received by {after}")
            received: list[str] = []
            deadline = asyncio.get_running_loop().time() + 5  # what arrives within 5 s
            while len(received) < sum(after) and asyncio.get_running_loop().time() < deadline:
                # None for the subscribe confirmation, or when nothing came within 1 s
                message = await subscriber.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    received.append(message["data"])
            print(f"the subscriber got: {', '.join(received)}")

        kept = [fields["order"] for _, fields in await client.xrange(STREAM)]
        print(f"the stream holds: {', '.join(kept)}")
        await client.delete(STREAM)


# --8<-- [end:demo]

if __name__ == "__main__":
    asyncio.run(main())
