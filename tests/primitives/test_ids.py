"""ids_service.py behaves as "The ID problem" page says: two real processes, one real Redis.

Two instances of the service (two processes, as two machines would be) share one
Redis for the module. Requests are sent to both at once, and every test counts
what came back: duplicates with the local counter (the negative control), none
with Redis INCR, UUIDv4, UUIDv7 and Snowflake ids.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
import uuid
from collections import Counter
from types import ModuleType

import httpx
import pytest
import redis
from kit.process import ROOT

SERVICE = "primitives/ids_service.py"
REQUESTS = 100  # split across both processes, all in flight together
TIMEOUT = 10  # far above REDIS_TIMEOUT: a hang would raise, not answer


@pytest.fixture(scope="module")
def services(run_shared_example, module_redis_server) -> list[str]:
    env = {"REDIS_URL": module_redis_server.url}
    return [run_shared_example(SERVICE, env=env).url for _ in range(2)]


def ids_from(urls: list[str], scheme: str, requests: int = REQUESTS, count: int = 1) -> list[dict]:
    """Send `requests` POSTs at once, alternating between the urls; every answer's body."""

    async def all_at_once() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=REQUESTS)
        async with httpx.AsyncClient(timeout=TIMEOUT, limits=limits) as client:
            return await asyncio.gather(
                *(
                    client.post(f"{urls[i % len(urls)]}/ids/{scheme}", json={"count": count})
                    for i in range(requests)
                )
            )

    responses = asyncio.run(all_at_once())
    assert [r.status_code for r in responses] == [200] * requests
    return [r.json() for r in responses]


def flat(bodies: list[dict]) -> list:
    return [i for body in bodies for i in body["ids"]]


def duplicates(ids: list) -> dict:
    return {i: n for i, n in Counter(ids).items() if n > 1}


def load_service() -> ModuleType:
    """The example as a module, for its Snowflake class (its settings are the defaults)."""
    spec = importlib.util.spec_from_file_location("ids_service", ROOT / "examples" / SERVICE)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("ids_service", module)
    spec.loader.exec_module(module)
    return module


# --- across two processes ------------------------------------------------------


def test_a_local_counter_repeats_ids_across_processes(services) -> None:
    bodies = ids_from(services, "local")
    assert len({b["pid"] for b in bodies}) == 2  # both processes answered
    repeated = duplicates(flat(bodies))
    assert repeated, "the negative control: two local counters must collide"
    assert 1 in repeated  # each process started at 1


def test_redis_incr_gives_unique_ids_across_processes(services, module_redis_server) -> None:
    bodies = ids_from(services, "redis", count=3)
    assert len({b["pid"] for b in bodies}) == 2
    ids = flat(bodies)
    assert not duplicates(ids)
    assert sorted(ids) == list(range(min(ids), min(ids) + REQUESTS * 3))  # and no gaps
    # the counter lives in Redis, under the page's namespace
    client = redis.Redis.from_url(module_redis_server.url)
    assert int(client.get("primitives:ids:counter")) == max(ids)
    client.close()


@pytest.mark.parametrize("scheme", ["uuid4", "uuid7"])
def test_uuids_are_unique_across_processes(services, scheme: str) -> None:
    bodies = ids_from(services, scheme, count=5)
    ids = flat(bodies)
    assert len(ids) == REQUESTS * 5
    assert not duplicates(ids)
    assert {uuid.UUID(i).version for i in ids} == {int(scheme[-1])}


def test_uuid7_sorts_by_creation_time_and_uuid4_does_not(services) -> None:
    with httpx.Client(timeout=TIMEOUT) as client:

        def made_in_order(scheme: str) -> list[str]:
            return [
                i
                for _ in range(5)
                for i in client.post(f"{services[0]}/ids/{scheme}", json={"count": 50}).json()[
                    "ids"
                ]
            ]

        before = time.time_ns() // 1_000_000
        v7 = made_in_order("uuid7")
        v4 = made_in_order("uuid4")
    assert sorted(v7) == v7  # as strings, as a database index orders them
    assert sorted(v4) != v4  # the control: random ids land anywhere
    # The first 48 bits are Unix milliseconds, never behind the clock. uuid6 keeps
    # them strictly increasing in a process: a second id in the same millisecond
    # takes the next one, so a burst runs ahead of the clock.
    stamps = [uuid.UUID(i).int >> 80 for i in v7]
    assert before <= stamps[0]
    assert stamps == sorted(set(stamps))


def test_snowflake_ids_are_unique_across_processes(services) -> None:
    bodies = ids_from(services, "snowflake", count=5)
    ids = [int(i) for i in flat(bodies)]
    assert not duplicates(ids)
    assert all(0 < i < 2**63 for i in ids)  # fits a signed 64-bit column (BIGINT)
    workers = {b["pid"]: {(int(i) >> 12) & 1023 for i in b["ids"]} for b in bodies}
    assert all(len(w) == 1 for w in workers.values())  # one worker id per process
    assert len(set().union(*workers.values())) == 2  # and a different one each
    for body in bodies:  # and grow with time within a process
        batch = [int(i) for i in body["ids"]]
        assert batch == sorted(batch)


def test_a_bad_count_is_a_400(services) -> None:
    for body in ({"count": 0}, {"count": 101}, {"count": "many"}, [1]):
        response = httpx.post(f"{services[0]}/ids/redis", json=body, timeout=TIMEOUT)
        assert response.status_code == 400, body
        assert response.json()["message"]


# --- the Snowflake generator itself ---------------------------------------------


class FakeClock:
    """Wall-clock nanoseconds that the test sets."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms * 1_000_000


@pytest.fixture(scope="module")
def ids_service() -> ModuleType:
    return load_service()


def test_snowflake_layout(ids_service) -> None:
    clock = FakeClock(ids_service.EPOCH_MS + 1234)
    snowflake = ids_service.Snowflake(worker_id=5, clock=clock)
    first, second = snowflake.next_id(), snowflake.next_id()
    assert first >> 22 == 1234  # milliseconds since the epoch
    assert (first >> 12) & 1023 == 5  # worker id
    assert (first & 4095, second & 4095) == (0, 1)  # sequence within the millisecond


def test_snowflake_refuses_a_clock_going_backwards(ids_service) -> None:
    clock = FakeClock(ids_service.EPOCH_MS + 10_000)
    snowflake = ids_service.Snowflake(worker_id=1, clock=clock)
    issued = snowflake.next_id()
    clock.ms -= 3  # NTP steps the clock back
    with pytest.raises(ids_service.ClockWentBackwards):
        snowflake.next_id()
    clock.ms += 4
    assert snowflake.next_id() > issued


def test_snowflake_waits_when_a_millisecond_is_spent(ids_service) -> None:
    clock = FakeClock(ids_service.EPOCH_MS + 50)
    snowflake = ids_service.Snowflake(worker_id=1, clock=clock)
    ids = [snowflake.next_id() for _ in range(4096)]
    assert None not in ids
    assert snowflake.next_id() is None  # the 4,097th in one ms: not a repeat
    assert snowflake.next_id() is None
    clock.ms += 1
    assert snowflake.next_id() not in ids
    assert len(set(ids)) == 4096


def test_two_generators_with_one_worker_id_collide(ids_service) -> None:
    # Why the worker id must be unique: same id, same millisecond, same ids.
    clock = FakeClock(ids_service.EPOCH_MS + 99)
    a, b = ids_service.Snowflake(7, clock), ids_service.Snowflake(7, clock)
    assert a.next_id() == b.next_id()
    assert ids_service.Snowflake(8, clock).next_id() != ids_service.Snowflake(7, clock).next_id()


# --- Redis away ------------------------------------------------------------------


def test_redis_stopped_is_a_503_and_recovers(run_example, redis_server) -> None:
    service = run_example(SERVICE, env={"REDIS_URL": redis_server.url, "REDIS_TIMEOUT": "0.5"})
    assert httpx.post(f"{service.url}/ids/redis", timeout=TIMEOUT).status_code == 200
    redis_server.stop()
    for scheme in ("redis", "snowflake"):
        response = httpx.post(f"{service.url}/ids/{scheme}", timeout=TIMEOUT)
        assert response.status_code == 503
        assert response.json() == {"error": "redis unavailable"}
        assert response.headers["retry-after"] == "1"
    # ids that need no coordination are still served
    assert httpx.post(f"{service.url}/ids/uuid7", timeout=TIMEOUT).status_code == 200
    redis_server.start()
    assert httpx.post(f"{service.url}/ids/redis", timeout=TIMEOUT).status_code == 200
    assert "redis unavailable: ConnectionError" in service.output()
    assert redis_server.url not in service.output()


def test_a_hung_redis_is_a_503_not_a_hang(run_example, hung_server) -> None:
    url = f"redis://127.0.0.1:{hung_server}/0"
    service = run_example(SERVICE, env={"REDIS_URL": url, "REDIS_TIMEOUT": "0.5"})
    response = httpx.post(f"{service.url}/ids/redis", timeout=TIMEOUT)  # raises if it hangs
    assert response.status_code == 503
    assert response.json() == {"error": "redis unavailable"}
