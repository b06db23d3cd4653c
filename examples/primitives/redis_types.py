"""Redis by type, with redis.asyncio: each data type doing the job it is best at.

Strings (a lock with SET NX EX, a counter with INCRBY), lists (a reliable work
queue with BLMOVE and a processing list; a recent-events list capped with
LTRIM), sets, hashes, sorted sets (a leaderboard; a sliding time window), expiry
(EXPIRE, TTL, PERSIST), generic commands (SCAN, TYPE, UNLINK), connection
pools and pipelines. Every key starts with `primitives:types:`.

Run it (with a Redis at `REDIS_URL`): it deletes its own keys, runs each example
and prints what it got.

    python examples/primitives/redis_types.py

Environment:

- `REDIS_URL`: Redis URL (default `redis://127.0.0.1:6379/0`).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import redis.asyncio as redis

PREFIX = "primitives:types:"


def key(name: str) -> str:
    return PREFIX + name  # one namespace: a shared Redis holds other services' keys too


# --8<-- [start:client]
def client(url: str, max_connections: int = 10, pool_timeout: float = 1.0) -> redis.Redis:
    """One client per process: it owns the pool every coroutine shares."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,  # the most this process opens to Redis
        timeout=pool_timeout,  # how long a command waits for a free connection
        socket_connect_timeout=1.0,
        socket_timeout=5.0,  # longer than any blocking command's wait (BLMOVE, BLPOP)
        decode_responses=True,  # str, not bytes
    )
    return redis.Redis.from_pool(pool)  # aclose() closes the pool with it


# --8<-- [end:client]


# --8<-- [start:pool]
async def third_command_when_two_are_busy(url: str, blocking: bool) -> str:
    """A pool of 2, both connections held by a blocking command: what a third one gets."""
    if blocking:
        r = client(url, max_connections=2, pool_timeout=0.2)  # waits 0.2 s for a connection
    else:
        r = redis.Redis.from_url(url, max_connections=2)  # the default pool: never waits
    async with r:
        empty = key("never-filled")
        holders = [asyncio.create_task(r.blpop([empty], timeout=1)) for _ in range(2)]
        await asyncio.sleep(0)  # both tasks take their connection from the pool
        try:
            await r.ping()
            return "PONG"
        except redis.ConnectionError as error:
            return f"{type(error).__name__}: {error}"
        finally:
            await asyncio.gather(*holders)


# --8<-- [end:pool]


# --8<-- [start:strings]
async def claim(r: redis.Redis, job: str, owner: str, seconds: int) -> bool:
    """Only the first caller gets the job; the claim lapses by itself if it dies."""
    return bool(await r.set(key(f"claim:{job}"), owner, nx=True, ex=seconds))


async def count_views(r: redis.Redis, page: str, views: int = 1) -> int:
    return await r.incrby(key(f"views:{page}"), views)  # atomic: no lost updates


# --8<-- [end:strings]


# --8<-- [start:queue]
QUEUE, PROCESSING = key("queue"), key("queue:processing")
MAX_QUEUE = 10_000


class QueueFull(Exception):
    pass


async def enqueue(r: redis.Redis, job: str) -> None:
    # A bound, not an exact one: LLEN and LPUSH are two commands, so producers
    # racing past the check can overshoot by their number.
    if await r.llen(QUEUE) >= MAX_QUEUE:
        raise QueueFull(QUEUE)
    await r.lpush(QUEUE, job)


async def take(r: redis.Redis, wait: float) -> str | None:
    """The oldest job, moved to the processing list in the same atomic step."""
    return await r.blmove(QUEUE, PROCESSING, wait, src="RIGHT", dest="LEFT")


async def done(r: redis.Redis, job: str) -> None:
    await r.lrem(PROCESSING, 1, job)  # finished: only now does it leave Redis


async def recover(r: redis.Redis) -> int:
    """At a worker's start: jobs a dead worker held go back to the queue."""
    moved = 0
    while await r.lmove(PROCESSING, QUEUE, src="RIGHT", dest="RIGHT") is not None:
        moved += 1
    return moved


# --8<-- [end:queue]


# --8<-- [start:capped]
RECENT, KEEP = key("recent"), 100


async def remember(r: redis.Redis, event: str) -> None:
    async with r.pipeline(transaction=True) as pipe:  # MULTI/EXEC: never left uncapped
        pipe.lpush(RECENT, event).ltrim(RECENT, 0, KEEP - 1)
        await pipe.execute()


# --8<-- [end:capped]


# --8<-- [start:sets]
async def tag(r: redis.Redis, recipe: str, *tags: str) -> int:
    return await r.sadd(key(f"tags:{recipe}"), *tags)  # how many were new


async def common_tags(r: redis.Redis, *recipes: str) -> set[str]:
    return await r.sinter([key(f"tags:{recipe}") for recipe in recipes])


# --8<-- [end:sets]


# --8<-- [start:hashes]
async def save_recipe(r: redis.Redis, recipe_id: int, name: str, steps: int) -> None:
    await r.hset(key(f"recipe:{recipe_id}"), mapping={"name": name, "steps": steps, "likes": 0})


async def like(r: redis.Redis, recipe_id: int) -> int:
    return await r.hincrby(key(f"recipe:{recipe_id}"), "likes", 1)  # one field, atomically


async def recipe(r: redis.Redis, recipe_id: int) -> dict[str, str]:
    return await r.hgetall(key(f"recipe:{recipe_id}"))


# --8<-- [end:hashes]


# --8<-- [start:leaderboard]
BOARD = key("leaderboard")


async def score(r: redis.Redis, player: str, points: int) -> float:
    return await r.zincrby(BOARD, points, player)


async def top(r: redis.Redis, n: int) -> list[tuple[str, float]]:
    return await r.zrange(BOARD, 0, n - 1, desc=True, withscores=True)


# --8<-- [end:leaderboard]


# --8<-- [start:window]
async def hits_in_window(r: redis.Redis, client_id: str, window: float, now: float) -> int:
    """Record a hit at `now`; how many this client made in the last `window` seconds."""
    hits = key(f"hits:{client_id}")
    async with r.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(hits, "-inf", now - window)  # older than the window: gone
        pipe.zadd(hits, {f"{now}:{uuid.uuid4().hex}": now})  # a unique member per hit
        pipe.zcard(hits)
        pipe.expire(hits, int(window) + 1)  # an idle client's key goes away by itself
        _, _, count, _ = await pipe.execute()
    return count


# --8<-- [end:window]


# --8<-- [start:expiry]
async def expiry(r: redis.Redis) -> tuple[int, int, int, int]:
    session = key("session")
    await r.set(session, "data")
    no_expiry = await r.ttl(session)  # -1: the key lives until deleted
    await r.expire(session, 300)
    ttl = await r.ttl(session)  # seconds left
    await r.persist(session)  # expiry removed
    after_persist = await r.ttl(session)
    await r.unlink(session)
    return no_expiry, ttl, after_persist, await r.ttl(session)  # -2: no such key


# --8<-- [end:expiry]


# --8<-- [start:generic]
async def keys_like(r: redis.Redis, pattern: str) -> list[str]:
    # SCAN walks the keyspace a page at a time; KEYS would block Redis until done.
    return sorted([k async for k in r.scan_iter(match=key(pattern), count=500)])


async def forget(r: redis.Redis, pattern: str) -> int:
    names = await keys_like(r, pattern)
    # UNLINK frees the memory in a background thread; DEL does it before replying.
    return await r.unlink(*names) if names else 0


# --8<-- [end:generic]


# --8<-- [start:pipelines]
async def one_by_one(r: redis.Redis, counter: str, n: int) -> int:
    for _ in range(n):
        last = await r.incr(counter)  # n round trips
    return last


async def pipelined(r: redis.Redis, counter: str, n: int, transaction: bool) -> int:
    async with r.pipeline(transaction=transaction) as pipe:
        for _ in range(n):
            pipe.incr(counter)  # queued here, sent with execute()
        results = await pipe.execute()  # one round trip (MULTI/EXEC around it if transaction)
    return results[-1]


# --8<-- [end:pipelines]


async def main() -> None:
    r = client(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    async with r:
        await forget(r, "*")
        print(
            "claim:",
            await claim(r, "report", "worker-1", 30),
            await claim(r, "report", "worker-2", 30),
        )
        print("views:", await count_views(r, "home"), await count_views(r, "home", 5))
        for job in ("job-1", "job-2", "job-3"):
            await enqueue(r, job)
        taken = await take(r, wait=1)
        print(
            "taken:",
            taken,
            "queue:",
            await r.lrange(QUEUE, 0, -1),
            "processing:",
            await r.lrange(PROCESSING, 0, -1),
        )
        print("recovered after a crash:", await recover(r), "queue:", await r.lrange(QUEUE, 0, -1))
        for n in range(150):
            await remember(r, f"event-{n}")
        print("recent:", await r.llen(RECENT), "newest:", await r.lindex(RECENT, 0))
        await tag(r, "tofu", "vegan", "quick", "protein")
        await tag(r, "salad", "vegan", "quick", "raw")
        print("common tags:", sorted(await common_tags(r, "tofu", "salad")))
        await save_recipe(r, 42, "Tofu scramble", 4)
        await like(r, 42)
        print("recipe 42:", await recipe(r, 42))
        for player, points in (("ada", 30), ("bob", 50), ("cy", 20), ("ada", 40)):
            await score(r, player, points)
        print("top 2:", await top(r, 2))
        now = time.time()
        counts = [await hits_in_window(r, "c1", 10, now + t) for t in (0, 1, 2, 11, 12.5)]
        print("hits in a 10 s window at t=0, 1, 2, 11, 12.5:", counts)
        no_expiry, ttl, persisted, deleted = await expiry(r)
        print(
            "ttl: none",
            no_expiry,
            "set",
            0 < ttl <= 300,
            "persisted",
            persisted,
            "deleted",
            deleted,
        )
        print(
            "types:", [await r.type(k) for k in (QUEUE, key("tags:tofu"), key("recipe:42"), BOARD)]
        )
        url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        print("pool, default:", await third_command_when_two_are_busy(url, blocking=False))
        print("pool, blocking:", await third_command_when_two_are_busy(url, blocking=True))
        print("unlinked:", await forget(r, "*"), "left:", await keys_like(r, "*"))


if __name__ == "__main__":
    asyncio.run(main())
