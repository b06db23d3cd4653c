"""The lost update fixed with MULTI/EXEC: the increment happens inside Redis.

The same load as `atomic_multi.py` (`--clients` clients, default 20, each adding
1 `--increments` times, default 10, all starting at once), but each increment
is one transaction: `MULTI`, `INCR primitives:atomic:multi`, `HINCRBY
primitives:atomic:multi:by_client <client> 1`, `EXEC`. Redis runs the queued
commands one after the other with nothing in between, so no update is lost and
the tallies per client always add up to the counter.

A transaction cannot read: every command is only queued until `EXEC`, so a
`GET` inside it answers after the point where its value could have been used.
It works here because `INCR` does the read-modify-write itself.

Run it (with Redis at the address below):

    python examples/primitives/atomic_multi.py

Environment:

- `REDIS_URL`: Redis URL (default `redis://127.0.0.1:6379/0`).

It prints one line, `multi: expected E, counter C, lost L, tallies T`, and exits 0. A bad
`REDIS_URL` stops it with exit code 2 and one line naming the variable; the URL
is a secret (it can hold a password) and is never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import redis.asyncio as redis
from pydantic import RedisDsn, Secret, ValidationError
from pydantic_settings import BaseSettings


class Settings(BaseSettings):
    """Read once at start from the environment: REDIS_URL."""

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


KEY = "primitives:atomic:multi"
BY_CLIENT = "primitives:atomic:multi:by_client"  # one field per client: bounded by --clients


# --8<-- [start:increment]
async def increment(client: redis.Redis, name: str) -> None:
    # transaction=True wraps the queued commands in MULTI ... EXEC: Redis runs
    # them back to back, and no other client's command runs in between.
    async with client.pipeline(transaction=True) as tx:
        tx.incr(KEY)  # the read-modify-write happens inside Redis
        tx.hincrby(BY_CLIENT, name, 1)  # and this one with it, never without it
        await tx.execute()  # one round trip: MULTI, INCR, HINCRBY, EXEC


# --8<-- [end:increment]


# --8<-- [start:clients]
async def client_run(
    client: redis.Redis, name: str, start: asyncio.Barrier, increments: int
) -> None:
    await client.ping()  # connected before the start line
    await start.wait()  # everybody starts together, as under real load
    for _ in range(increments):
        await increment(client, name)


async def run(url: str, clients: int, increments: int) -> tuple[int, int]:
    """Run the clients to the end; return the counter and the sum of the tallies."""
    connections = [
        redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        for _ in range(clients)
    ]
    try:
        await connections[0].delete(KEY, BY_CLIENT)
        start = asyncio.Barrier(clients)
        async with asyncio.TaskGroup() as group:
            for number, connection in enumerate(connections):
                group.create_task(client_run(connection, f"client-{number}", start, increments))
        tallies = await connections[0].hvals(BY_CLIENT)
        return int(await connections[0].get(KEY) or 0), sum(int(t) for t in tallies)
    finally:
        for connection in connections:
            await connection.aclose()


# --8<-- [end:clients]


def bounded(low: int, high: int):
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"between {low} and {high}")
        return value

    return parse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=bounded(2, 500), default=20)
    parser.add_argument("--increments", type=bounded(1, 1000), default=10)
    args = parser.parse_args()
    url = str(load_settings().redis_url.get_secret_value())
    counter, tallies = asyncio.run(run(url, args.clients, args.increments))
    expected = args.clients * args.increments
    lost = expected - counter
    print(f"multi: expected {expected}, counter {counter}, lost {lost}, tallies {tallies}")


if __name__ == "__main__":
    main()
