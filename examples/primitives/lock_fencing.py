"""A Redis lock with expiry, and why a fencing token must guard the write.

The lock is one key: `SET primitives:lock:report <random token> NX PX 500`
takes it if nobody holds it, and it expires by itself after 500 ms, so a
holder that dies cannot block everybody forever. Releasing it is a
compare-and-delete in Lua: only the holder's token deletes the key. Each time
the lock is taken, the same script hands out a fencing token from `INCR
primitives:lock:report:fence`: a number that only grows.

The program plays one story twice. Client A takes the lock and then stops,
as a process does in a long garbage collection or a blocked event loop; while
it is stopped its lock expires, client B takes the lock and writes to the
store; then A wakes up, still believing it holds the lock, and writes too.

- With a plain store (SET), A's stale write lands over B's: the lock did not
  protect anything.
- With a fenced store (a Lua script that writes only if the token is not
  older than the newest one it has seen), A's write is refused.

Either way A's release deletes nothing: the lock is B's now.

Run it (with Redis at the address below):

    python examples/primitives/lock_fencing.py

Environment:

- `REDIS_URL`: Redis URL (default `redis://127.0.0.1:6379/0`).

With `--hold`, it takes the lock, prints `holding the lock, token N` and waits
to be killed, never releasing: a holder that dies. The lock expires 500 ms
later on its own. The demo starts by deleting its keys (the fencing counter
too, which a real system must never do), so every run prints the same lines.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from dataclasses import dataclass

import redis.asyncio as redis
from pydantic import RedisDsn, Secret, ValidationError
from pydantic_settings import BaseSettings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


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


LOCK = "primitives:lock:report"
FENCE = "primitives:lock:report:fence"
STORE = "primitives:lock:report:store"
TTL_MS = 500


# --8<-- [start:lock]
ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])  -- taken: hand out the next fencing token
end
return nil
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])  -- still ours: delete it
end
return 0  -- expired, or someone else's now: leave it alone
"""


@dataclass(frozen=True)
class Lock:
    token: str  # random: says who holds the lock
    fence: int  # grows with every acquisition: says how recent the holder is


async def acquire(client: redis.Redis) -> Lock | None:
    """Take the lock if it is free; None if somebody holds it."""
    token = secrets.token_hex(16)
    fence = await client.eval(ACQUIRE, 2, LOCK, FENCE, token, TTL_MS)
    return None if fence is None else Lock(token, int(fence))


async def release(client: redis.Redis, lock: Lock) -> bool:
    """Delete the lock if it is still ours; False if it expired or changed hands."""
    return await client.eval(RELEASE, 1, LOCK, lock.token) == 1


# --8<-- [end:lock]


async def acquire_waiting(client: redis.Redis, bound: float = 10.0) -> Lock:
    """Poll until the lock is free (a bound, so a stuck lock is an error, not a hang)."""
    async with asyncio.timeout(bound):
        while True:
            lock = await acquire(client)
            if lock is not None:
                return lock
            await asyncio.sleep(0.05)  # another process's key: no local event to wait on


# --8<-- [start:store]
FENCED_WRITE = """
local newest = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')
if tonumber(ARGV[1]) < newest then
  return 0  -- a holder older than one already seen: refuse
end
redis.call('HSET', KEYS[1], 'fence', ARGV[1], 'value', ARGV[2])
return 1
"""


async def plain_write(client: redis.Redis, lock: Lock, value: str) -> bool:
    await client.hset(STORE, "value", value)  # trusts whoever calls: the lock "was" held
    return True


async def fenced_write(client: redis.Redis, lock: Lock, value: str) -> bool:
    return await client.eval(FENCED_WRITE, 1, STORE, lock.fence, value) == 1


# --8<-- [end:store]


# --8<-- [start:story]
async def story(client: redis.Redis, write, name: str) -> None:
    a = await acquire(client)
    assert a is not None, "the lock is free at the start of the story"  # nosec B101  # a demo's premise
    b_wrote = asyncio.Event()

    async def client_a() -> None:
        # A stops the world here: a GC pause, a blocked loop, a swapped-out VM. The
        # pause ends just after B's write, so the order of the story is certain.
        await b_wrote.wait()
        accepted = await write(client, a, "written by A")
        print(f"{name}: A (token {a.fence}) woke and wrote: {_verdict(accepted)}")
        released = await release(client, a)
        print(f"{name}: A's release deleted {'the lock' if released else 'nothing'}")

    async def client_b() -> None:
        b = await acquire_waiting(client)  # free only once A's lock expired
        await write(client, b, "written by B")
        print(f"{name}: A's lock expired; B took it (token {b.fence}) and wrote")
        b_wrote.set()
        await a_done.wait()
        holder = await client.get(LOCK)
        print(f"{name}: B still holds the lock: {holder == b.token.encode()}")
        await release(client, b)

    a_done = asyncio.Event()
    print(f"{name}: A took the lock (token {a.fence}) and paused")
    async with asyncio.TaskGroup() as group:
        group.create_task(client_b())
        await group.create_task(client_a())
        a_done.set()
    stored = (await client.hget(STORE, "value")).decode()
    print(f"{name}: the store holds {stored!r}")


# --8<-- [end:story]


def _verdict(accepted: bool) -> str:
    return "accepted" if accepted else "refused"


async def hold(client: redis.Redis) -> None:
    lock = await acquire_waiting(client)
    print(f"holding the lock, token {lock.fence}", flush=True)
    await asyncio.Event().wait()  # until killed: never released, never renewed


async def run(url: str, holding: bool) -> None:
    # No silent retries: a retried SET NX whose answer was lost would find the lock
    # taken (by itself) and report failure.
    client = redis.Redis.from_url(
        url, socket_timeout=5, socket_connect_timeout=5, retry=Retry(NoBackoff(), 0)
    )
    try:
        if holding:
            await hold(client)
            return
        await client.delete(LOCK, FENCE, STORE)  # a fresh demo; never in real life
        await story(client, plain_write, "plain lock ")
        await client.delete(STORE)
        await story(client, fenced_write, "fenced lock")
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", action="store_true", help="take the lock and never let go")
    args = parser.parse_args()
    url = str(load_settings().redis_url.get_secret_value())
    asyncio.run(run(url, args.hold))


if __name__ == "__main__":
    main()
