"""Blocking the loop: what the page claims about loop_lag_service.py, over real HTTP."""

from __future__ import annotations

import asyncio
import re

import httpx
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
