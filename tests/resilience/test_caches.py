"""The "Caches" page: cache-aside through memcached, degraded without it, the lost
update of read-modify-write and its check-and-set fix, and the bounded LRU."""

from __future__ import annotations

import asyncio

import aiomcache
import httpx
import orjson
from kit.examples import assert_refuses_to_start, run_program
from kit.process import LOOPBACK, wait_until
from kit.services.memcached import MemcachedServer

SERVICE = "resilience/cached_recipe_api.py"
POLL_BOUND = 20.0  # seconds: a bound on waiting, never a pass/fail threshold


def start(run_example, server: MemcachedServer, **env: str):
    return run_example(SERVICE, env={"MEMCACHED": server.address, **env})


def health(client: httpx.Client) -> dict:
    answer = client.get("/health")
    assert answer.status_code == 200
    return answer.json()


def test_a_miss_then_hits_without_reading_the_source_again(run_example, memcached) -> None:
    first, second = start(run_example, memcached), start(run_example, memcached)
    with (
        httpx.Client(base_url=first.url, timeout=10) as a,
        httpx.Client(base_url=second.url, timeout=10) as b,
    ):
        assert health(a) == {"status": "ok", "cache": "ok", "source_reads": 0, "local_entries": 0}
        miss = a.get("/recipes/42")
        assert miss.status_code == 200
        assert miss.headers["x-cache"] == "miss"
        assert miss.json() == {"id": 42, "name": "Recipe 42", "steps": ["mix", "bake"]}
        assert health(a)["source_reads"] == 1

        local = a.get("/recipes/42")
        assert local.headers["x-cache"] == "local"
        assert local.content == miss.content
        assert health(a)["source_reads"] == 1  # the second answer did not read the source

        # Another process of the service: its own LRU is empty, memcached is shared.
        shared = b.get("/recipes/42")
        assert shared.headers["x-cache"] == "memcached"
        assert shared.content == miss.content
        assert health(b)["source_reads"] == 0

        # Negative control: a recipe nobody asked for is a miss that reads the source.
        assert b.get("/recipes/7").headers["x-cache"] == "miss"
        assert health(b)["source_reads"] == 1
        assert b.get("/recipes/1001").status_code == 404


def test_memcached_down_is_slower_not_broken(run_example, memcached: MemcachedServer) -> None:
    service = start(run_example, memcached)
    with httpx.Client(base_url=service.url, timeout=10) as client:
        assert client.get("/recipes/1").headers["x-cache"] == "miss"
        memcached.stop()
        body = health(client)
        assert body["cache"] == "degraded"
        for recipe in (2, 3):  # never a 5xx: each one from the source
            answer = client.get(f"/recipes/{recipe}")
            assert answer.status_code == 200
            assert answer.headers["x-cache"] == "miss"
        assert health(client)["source_reads"] == 3
        assert client.get("/recipes/2").headers["x-cache"] == "local"  # tier 1 still works

        memcached.start()  # same port, empty: the client reconnects by itself
        wait_until(lambda: health(client)["cache"] == "ok", POLL_BOUND, "cache ok again")
        assert client.get("/recipes/4").headers["x-cache"] == "miss"
    assert "memcached get failed" in service.output()


def test_a_hung_memcached_is_bounded_by_the_timeout(run_example, hung_server) -> None:
    service = run_example(SERVICE, env={"MEMCACHED": f"{LOOPBACK}:{hung_server}"})
    with httpx.Client(base_url=service.url, timeout=10) as client:
        assert health(client)["cache"] == "degraded"  # answered instead of hanging
        answer = client.get("/recipes/5")
        assert answer.status_code == 200
        assert answer.headers["x-cache"] == "miss"
    assert "memcached get failed: TimeoutError" in service.output()


def test_a_bad_memcached_address_stops_it_at_start() -> None:
    assert_refuses_to_start(SERVICE, {"MEMCACHED": "not-an-address"}, "MEMCACHED: ")


# --8<-- [start:cas]
async def append_with_cas(client: aiomcache.Client, key: bytes, item: str) -> None:
    """Append to the JSON list at `key` with check-and-set: no append is ever lost."""
    for _ in range(10):  # bounded: under heavy contention, give up rather than spin
        value, token = await client.gets(key)
        if value is None:  # no entry yet: `add` fails if someone else added one first
            if await client.add(key, orjson.dumps([item])):
                return
            continue
        items = orjson.loads(value)
        items.append(item)
        if await client.cas(key, orjson.dumps(items), token):
            return
    raise RuntimeError(f"{key!r} kept changing: append of {item!r} given up")


# --8<-- [end:cas]


def test_read_modify_write_loses_an_append_and_cas_keeps_both(memcached) -> None:
    async def scenario() -> None:
        a = aiomcache.Client(LOOPBACK, memcached.port)
        b = aiomcache.Client(LOOPBACK, memcached.port)
        try:
            key = b"recipe:42:tags"
            await a.set(key, b'["vegan"]')
            # --8<-- [start:race]
            # The race, step by step: both read, then both write.
            seen_by_a, seen_by_b = orjson.loads(await a.get(key)), orjson.loads(await b.get(key))
            await a.set(key, orjson.dumps([*seen_by_a, "quick"]))
            await b.set(key, orjson.dumps([*seen_by_b, "cheap"]))
            assert orjson.loads(await a.get(key)) == ["vegan", "cheap"]  # "quick" is lost

            # The same interleaving with gets/cas: B's stale write is refused...
            await a.set(key, b'["vegan"]')
            value_a, token_a = await a.gets(key)
            value_b, token_b = await b.gets(key)
            assert await a.cas(key, orjson.dumps([*orjson.loads(value_a), "quick"]), token_a)
            assert not await b.cas(key, orjson.dumps([*orjson.loads(value_b), "cheap"]), token_b)
            # ...and B, reading again, appends to what A wrote.
            await append_with_cas(b, key, "cheap")
            assert orjson.loads(await a.get(key)) == ["vegan", "quick", "cheap"]
            # --8<-- [end:race]

            # Eight writers at once: each failed cas means another writer succeeded,
            # so with ten attempts none gives up, and none is lost.
            crowd = b"recipe:7:tags"
            writers = [append_with_cas([a, b][i % 2], crowd, f"t{i}") for i in range(8)]
            await asyncio.gather(*writers)
            assert sorted(orjson.loads(await a.get(crowd))) == sorted(f"t{i}" for i in range(8))
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())


def test_the_bounded_cache_stays_at_maxsize_and_the_dict_grows() -> None:
    lines = run_program("resilience/leaky_cache.py").splitlines()
    assert lines == [
        "   1000 distinct keys: dict    1000, TTLCache  1000",
        "  10000 distinct keys: dict   10000, TTLCache  1000",
        " 100000 distinct keys: dict  100000, TTLCache  1000",
    ]
