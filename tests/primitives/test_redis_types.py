"""redis_types.py does what the "Redis by type" page says, against one real Redis.

The example's functions are imported from its file and driven with a real
redis.asyncio client; the program itself is run once and prints what the page shows.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections import Counter
from types import ModuleType

import pytest
from kit.examples import assert_output_is_shown, run_program
from kit.process import ROOT

EXAMPLE = "primitives/redis_types.py"
SHOWN = ROOT / "snippets" / "primitives" / "redis_types.out"


@pytest.fixture(scope="module")
def types() -> ModuleType:
    spec = importlib.util.spec_from_file_location("redis_types", ROOT / "examples" / EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("redis_types", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run(types, module_redis_server):
    """Run `test(r)` with the example's own client, on a Redis emptied of its keys."""

    def runner(test, **client_args):
        async def main():
            async with types.client(module_redis_server.url, **client_args) as r:
                await types.forget(r, "*")
                return await test(r)

        return asyncio.run(main())

    return runner


def test_the_program_prints_what_the_page_shows(module_redis_server) -> None:
    output = run_program(EXAMPLE, env={"REDIS_URL": module_redis_server.url})
    assert_output_is_shown(output, SHOWN)


def test_set_nx_claims_once_with_an_expiry(run, types) -> None:
    async def test(r):
        assert await types.claim(r, "report", "w1", 30) is True
        assert await types.claim(r, "report", "w2", 30) is False
        assert await r.get(types.key("claim:report")) == "w1"
        assert 0 < await r.ttl(types.key("claim:report")) <= 30

    run(test)


def test_incrby_loses_no_update_under_concurrency(run, types) -> None:
    async def test(r):
        await asyncio.gather(*(types.count_views(r, "home") for _ in range(200)))
        assert await types.count_views(r, "home", 0) == 200

    run(test)


def test_blmove_moves_a_job_atomically_to_the_processing_list(run, types) -> None:
    async def test(r):
        for job in ("a", "b", "c"):
            await types.enqueue(r, job)
        assert await types.take(r, wait=1) == "a"  # the oldest first
        assert await r.lrange(types.QUEUE, 0, -1) == ["c", "b"]
        assert await r.lrange(types.PROCESSING, 0, -1) == ["a"]  # never in neither list
        await types.done(r, "a")
        assert await r.llen(types.PROCESSING) == 0
        # a worker dies holding "b": recovery puts it back at the head of the queue
        assert await types.take(r, wait=1) == "b"
        assert await types.recover(r) == 1
        assert await types.take(r, wait=1) == "b"

    run(test)


def test_concurrent_workers_take_each_job_once(run, types) -> None:
    async def test(r):
        jobs = [f"job-{n}" for n in range(60)]
        for job in jobs:
            await types.enqueue(r, job)

        async def worker() -> list[str]:
            taken = []
            while (job := await types.take(r, wait=0.1)) is not None:
                taken.append(job)
                await types.done(r, job)
            return taken

        results = await asyncio.gather(*(worker() for _ in range(5)))
        taken = Counter(job for result in results for job in result)
        assert taken == Counter(jobs)  # every job once, none twice
        assert await r.llen(types.PROCESSING) == 0

    run(test)


def test_an_empty_queue_returns_none_after_the_wait(run, types) -> None:
    async def test(r):
        assert await types.take(r, wait=0.1) is None

    run(test)


def test_the_queue_is_bounded(run, types, monkeypatch) -> None:
    monkeypatch.setattr(types, "MAX_QUEUE", 3)

    async def test(r):
        for job in ("a", "b", "c"):
            await types.enqueue(r, job)
        with pytest.raises(types.QueueFull):
            await types.enqueue(r, "d")
        assert await r.llen(types.QUEUE) == 3

    run(test)


def test_ltrim_caps_the_recent_list(run, types) -> None:
    async def test(r):
        for n in range(250):
            await types.remember(r, f"e{n}")
        assert await r.llen(types.RECENT) == types.KEEP == 100
        assert await r.lrange(types.RECENT, 0, 1) == ["e249", "e248"]  # the newest kept

    run(test)


def test_sets_count_new_members_and_intersect(run, types) -> None:
    async def test(r):
        assert await types.tag(r, "tofu", "vegan", "quick") == 2
        assert await types.tag(r, "tofu", "vegan", "protein") == 1  # vegan was there
        await types.tag(r, "salad", "vegan", "raw")
        assert await types.common_tags(r, "tofu", "salad") == {"vegan"}

    run(test)


def test_hincrby_counts_likes_under_concurrency(run, types) -> None:
    async def test(r):
        await types.save_recipe(r, 7, "Soup", 3)
        await asyncio.gather(*(types.like(r, 7) for _ in range(100)))
        assert await types.recipe(r, 7) == {"name": "Soup", "steps": "3", "likes": "100"}

    run(test)


def test_the_leaderboard_orders_by_score(run, types) -> None:
    async def test(r):
        for player, points in (("ada", 30), ("bob", 50), ("cy", 20), ("ada", 40), ("dee", 60)):
            await types.score(r, player, points)
        assert await types.top(r, 3) == [("ada", 70.0), ("dee", 60.0), ("bob", 50.0)]

    run(test)


def test_the_window_drops_old_entries(run, types) -> None:
    async def test(r):
        start = 1_000_000.0  # the example takes `now` as an argument: no waiting
        counts = [await types.hits_in_window(r, "c1", 10, start + t) for t in (0, 1, 2, 11, 30)]
        assert counts == [1, 2, 3, 2, 1]
        scores = await r.zrange(types.key("hits:c1"), 0, -1, withscores=True)
        assert [s for _, s in scores] == [start + 30]  # only the last hit is left
        assert 0 < await r.ttl(types.key("hits:c1")) <= 11  # and the key expires

    run(test)


def test_expire_ttl_persist(run, types) -> None:
    async def test(r):
        no_expiry, ttl, persisted, deleted = await types.expiry(r)
        assert (no_expiry, persisted, deleted) == (-1, -1, -2)
        assert 0 < ttl <= 300

    run(test)


def test_scan_and_unlink_stay_in_the_namespace(run, types) -> None:
    async def test(r):
        await r.set("other-service:key", "theirs")
        await types.count_views(r, "a")
        await types.tag(r, "tofu", "vegan")
        assert await types.keys_like(r, "*") == [types.key("tags:tofu"), types.key("views:a")]
        assert [await r.type(k) for k in await types.keys_like(r, "*")] == ["set", "string"]
        assert await types.forget(r, "*") == 2
        assert await r.get("other-service:key") == "theirs"  # not ours: left alone
        await r.unlink("other-service:key")

    run(test)


def test_an_exhausted_pool_fails_or_waits_then_fails(types, module_redis_server) -> None:
    url = module_redis_server.url

    async def both() -> list[str]:
        return await asyncio.gather(
            types.third_command_when_two_are_busy(url, blocking=False),
            types.third_command_when_two_are_busy(url, blocking=True),
        )

    default, blocking = asyncio.run(both())
    assert default == "MaxConnectionsError: Too many connections"
    assert blocking == "ConnectionError: No connection available."


def test_pipelines_give_the_same_counts(run, types) -> None:
    async def test(r):
        counter = types.key("bench")
        assert await types.one_by_one(r, counter, 100) == 100
        assert await types.pipelined(r, counter, 100, transaction=True) == 200
        assert await types.pipelined(r, counter, 100, transaction=False) == 300

    run(test)
