"""A lost update: clients read a counter, add 1 in Python and write it back.

Each of `--clients` clients (default 20) has its own connection to Redis, as
separate instances of a service would, and adds 1 to the counter
`primitives:atomic:race` `--increments` times (default 10): GET, +1 in Python,
SET. They connect first, then all start at once. The counter ends far below
clients x increments: between one client's GET and its SET, other clients read
the same value, and their SETs overwrite each other's.

There is no thread here: one process, one event loop. An `await` between the
read and the write is all a race needs.

Run it (with Redis at the address below):

    python examples/primitives/atomic_race.py

Environment:

- `REDIS_URL`: Redis URL (default `redis://127.0.0.1:6379/0`).

It prints one line, `race: expected E, counter C, lost L`, and exits 0. A bad
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


KEY = "primitives:atomic:race"


# --8<-- [start:increment]
async def increment(client: redis.Redis) -> None:
    value = int(await client.get(KEY) or 0)  # read...
    await asyncio.sleep(0)  # ...any await: a log line, a metric, another query...
    await client.set(KEY, value + 1)  # ...write: whatever happened meanwhile is lost


# --8<-- [end:increment]


# --8<-- [start:clients]
async def client_run(client: redis.Redis, start: asyncio.Barrier, increments: int) -> None:
    await client.ping()  # connected before the start line
    await start.wait()  # everybody starts together, as under real load
    for _ in range(increments):
        await increment(client)


async def run(url: str, clients: int, increments: int) -> int:
    """Run the clients to the end; return the counter's final value."""
    connections = [
        redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        for _ in range(clients)
    ]
    try:
        await connections[0].delete(KEY)
        start = asyncio.Barrier(clients)
        async with asyncio.TaskGroup() as group:
            for connection in connections:
                group.create_task(client_run(connection, start, increments))
        return int(await connections[0].get(KEY) or 0)
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
    counter = asyncio.run(run(url, args.clients, args.increments))
    expected = args.clients * args.increments
    print(f"race: expected {expected}, counter {counter}, lost {expected - counter}")


if __name__ == "__main__":
    main()
