"""Blocking the loop: what the page claims about loop_lag_service.py, over real HTTP."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import httpx
import pytest
from kit.examples import StartExample
from kit.process import wait_until

EXAMPLE = "why_distributed/loop_lag_service.py"
HEAVY_N = 31  # a quarter of a second of pure Python (seconds under coverage); health: 1 ms
SETTLE = 0.1  # lets the heavy request reach the server before /health is sent
LAG_LINE = re.compile(r"^loop lag: max (\d+\.\d) ms over the last (\d+\.\d) s$", re.M)


async def completion_order(base_url: str, heavy_path: str) -> list[str]:
    """Send the heavy request, then /health while it is in flight; return who finished first."""
    finished: list[str] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def get(name: str, path: str) -> None:
            response = await client.get(path)
            assert response.status_code == 200, response.text
            finished.append(name)

        heavy = asyncio.create_task(get("heavy", heavy_path))
        await asyncio.sleep(SETTLE)
        await asyncio.gather(get("health", "/health"), heavy)
    return finished


def test_health_answers_while_offloaded_work_runs(run_example: StartExample) -> None:
    service = run_example(EXAMPLE)
    order = asyncio.run(completion_order(service.url, f"/offloaded/fib/{HEAVY_N}"))
    assert order == ["health", "heavy"]


def test_health_waits_while_blocking_work_runs(run_example: StartExample) -> None:
    service = run_example(EXAMPLE)
    order = asyncio.run(completion_order(service.url, f"/blocking/fib/{HEAVY_N}"))
    assert order == ["heavy", "health"]


def test_both_routes_compute_the_same_answer(run_example: StartExample) -> None:
    service = run_example(EXAMPLE)
    blocking = httpx.get(f"{service.url}/blocking/fib/20").json()
    offloaded = httpx.get(f"{service.url}/offloaded/fib/20", timeout=30).json()
    assert blocking == {"n": 20, "fib": 6765, "ran_on": "event loop"}
    assert offloaded == {"n": 20, "fib": 6765, "ran_on": "process pool"}


def test_bad_n_is_a_400_and_the_server_keeps_serving(run_example: StartExample) -> None:
    service = run_example(EXAMPLE)
    for path in ("/blocking/fib/0", "/blocking/fib/36", "/offloaded/fib/-1", "/offloaded/fib/99"):
        response = httpx.get(service.url + path)
        assert response.status_code == 400, path
        assert response.headers["content-type"] == "application/json"
        assert response.json()["message"] == "n must be between 1 and 35"
    assert httpx.get(f"{service.url}/blocking/fib/many").status_code == 404
    assert httpx.get(f"{service.url}/health").json() == {"status": "ok"}
    assert service.alive()


def test_lag_is_reported_after_a_blocking_request(run_example: StartExample) -> None:
    # A low threshold, so that the blocking request is over it on the fastest machine.
    env = {"LAG_REPORT_EVERY": "0.2", "LAG_REPORT_MS": "20"}
    service = run_example(EXAMPLE, env=env)
    before = len(LAG_LINE.findall(service.output()))
    assert httpx.get(f"{service.url}/blocking/fib/{HEAVY_N}", timeout=30).status_code == 200
    wait_until(
        lambda: len(LAG_LINE.findall(service.output())) > before,
        timeout=10,
        what="a loop lag line after the blocking request",
    )
    worst = max(float(ms) for ms, _ in LAG_LINE.findall(service.output())[before:])
    assert worst >= 20


# An await that does not wait: the page's list of awaits that return at once when
# what they wait for is already there, and so never let the loop run anything else.


async def cached() -> str:
    return "from the cache"  # a coroutine that returns without awaiting


def done_future() -> Awaitable[object]:
    future = asyncio.get_running_loop().create_future()
    future.set_result("done")
    return future


def queue_with_an_item() -> Awaitable[object]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    queue.put_nowait("item")
    return queue.get()


def free_lock() -> Awaitable[object]:
    return asyncio.Lock().acquire()


def buffered_stream() -> Awaitable[object]:
    reader = asyncio.StreamReader()
    reader.feed_data(b"already received")
    return reader.read(100)


async def suspends(make: Callable[[], Awaitable[object]]) -> bool:
    """Did `await make()` give the loop a turn? A callback queued just before tells."""
    ran: list[bool] = []
    asyncio.get_running_loop().call_soon(ran.append, True)
    await make()
    return bool(ran)


@pytest.mark.parametrize(
    "make",
    [cached, done_future, queue_with_an_item, free_lock, buffered_stream],
    ids=lambda make: make.__name__,
)
def test_awaiting_what_is_already_there_does_not_suspend(
    make: Callable[[], Awaitable[object]],
) -> None:
    assert asyncio.run(suspends(make)) is False


def test_sleep_zero_suspends() -> None:
    # The control: the same probe sees asyncio.sleep(0) give the loop a turn.
    assert asyncio.run(suspends(lambda: asyncio.sleep(0))) is True
