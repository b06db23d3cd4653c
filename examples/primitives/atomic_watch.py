"""The lost update fixed with WATCH: optimistic locking, with a bounded retry.

The same load as `atomic_watch.py` (`--clients` clients, default 20, each adding
1 `--increments` times, default 10, all starting at once), and still GET, +1 in
Python, SET, but guarded: `WATCH primitives:atomic:watch` before the GET, and
the SET inside `MULTI ... EXEC`. If another client wrote the key after the
WATCH, Redis refuses the EXEC (redis-py raises `WatchError`) and the client
reads again and retries. No update is lost.

Retries are bounded: after `--attempts` tries (default 100) for one increment
the client gives up with `TooMuchContention` (between tries it waits a random
0 to 2, 4, 8... ms, at most 0.1 s: full jitter, so the clients that lost do
not all come back at the same instant and collide again), and the program prints
`watch: gave up: ...` on stderr and exits 1.

Run it (with Redis at the address below):

    python examples/primitives/atomic_watch.py

Environment:

- `REDIS_URL`: Redis URL (default `redis://127.0.0.1:6379/0`).

It prints one line, `watch: expected E, counter C, lost L`, and exits 0. A bad
`REDIS_URL` stops it with exit code 2 and one line naming the variable; the URL
is a secret (it can hold a password) and is never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
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


KEY = "primitives:atomic:watch"


# --8<-- [start:increment]
class TooMuchContention(Exception):
    """Another client changed the key on every attempt: give up, say so."""


async def increment(client: redis.Redis, attempts: int) -> None:
    async with client.pipeline(transaction=True) as tx:
        for attempt in range(attempts):
            if attempt:  # a retry: wait a random while, or the losers collide again
                ceiling = min(0.001 * 2**attempt, 0.1)  # doubling from 2 ms, at most 0.1 s
                await asyncio.sleep(random.uniform(0, ceiling))  # noqa: S311 (jitter, not crypto)  # nosec B311
            try:
                await tx.watch(KEY)  # from here, any write to KEY dooms our EXEC
                value = int(await tx.get(KEY) or 0)  # read (runs at once after WATCH)
                await asyncio.sleep(0)  # the same await as in the race
                tx.multi()  # queue the write...
                tx.set(KEY, value + 1)
                await tx.execute()  # ...EXEC: applied only if KEY is unchanged
                return
            except redis.WatchError:
                continue  # someone wrote KEY in between: nothing was written, read again
    raise TooMuchContention(f"{KEY} changed under us on each of {attempts} attempts")


# --8<-- [end:increment]


# --8<-- [start:clients]
async def client_run(
    client: redis.Redis, start: asyncio.Barrier, increments: int, attempts: int
) -> None:
    await client.ping()  # connected before the start line
    await start.wait()  # everybody starts together, as under real load
    for _ in range(increments):
        await increment(client, attempts)


async def run(url: str, clients: int, increments: int, attempts: int) -> int:
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
                group.create_task(client_run(connection, start, increments, attempts))
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
    parser.add_argument("--attempts", type=bounded(1, 10_000), default=100)
    args = parser.parse_args()
    url = str(load_settings().redis_url.get_secret_value())
    gave_up = None
    try:
        counter = asyncio.run(run(url, args.clients, args.increments, args.attempts))
    except* TooMuchContention as group:  # the TaskGroup cancelled the other clients
        gave_up = group.exceptions[0]
    # Exit outside `except*`: on early 3.11 releases (Debian 12's 3.11.2 among them) a
    # raise inside it comes out wrapped in an exception group, with a traceback.
    if gave_up is not None:
        print(f"watch: gave up: {gave_up}", file=sys.stderr)
        raise SystemExit(1)
    expected = args.clients * args.increments
    print(f"watch: expected {expected}, counter {counter}, lost {expected - counter}")


if __name__ == "__main__":
    main()
