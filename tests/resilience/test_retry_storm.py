"""retry_storm.py: a fleet retrying at once multiplies the load; jitter spreads, a budget caps.

Counts, never durations. The attempts go over real sockets to the example's own
struggling upstream, with its capacity at 0 (down: every attempt is shed with a
503), in stamina's test mode (waits of 0 s, the client's hook still deciding and
reporting each wait). When each attempt *would* have been sent is computed from
the reported waits, so the waves are counted in planned time, the same on a busy
machine as on an idle one. The program itself runs once, briefly, to show that
it runs; its figures on the page come from `./nox -s bench -- retry_storm`.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import random
from collections import Counter
from collections.abc import Iterator
from types import ModuleType

import httpx
import pytest
import stamina
from kit.examples import run_program
from kit.process import ROOT

EXAMPLE = "resilience/retry_storm.py"
PAGE = ROOT / "docs" / "resilience" / "retries.md"
CLIENTS = 40  # requests that fail at the same instant
INSTANCES = 4  # consumers, one budget each


@pytest.fixture(scope="module")
def rs() -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str((ROOT / "examples" / EXAMPLE).parent))
        yield importlib.import_module("retry_storm")


@pytest.fixture
def no_sleep() -> Iterator[None]:
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


def fleet_at_once(
    rs: ModuleType, policy: str, clients: int = CLIENTS
) -> tuple[int, list[list[float]]]:
    """`clients` requests at the same instant to a down upstream; returns the attempts
    it received and, per request, the planned time of each attempt."""

    async def go() -> tuple[int, list[list[float]]]:
        upstream = rs.StrugglingUpstream(capacity=0, work=0.0)
        server = rs.Server(upstream)
        url = await server.start() + "/recipes/42"
        rng = random.Random(7)  # noqa: S311 (jitter, not secrets)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        https = [httpx.AsyncClient(limits=limits, timeout=30) for _ in range(INSTANCES)]
        planned: list[list[float]] = []
        sends = []
        for n in range(clients):
            times = [0.0]
            planned.append(times)

            def on_wait(seconds: float, times: list[float] = times) -> None:
                times.append(times[-1] + seconds)

            if policy == "budget":  # one client, one budget per instance
                if n < INSTANCES:
                    sends.append(rs.policy(policy, https[n], rng, lambda s: None))
                else:
                    sends.append(sends[n % INSTANCES])
            else:  # no budget to share: a client per request, its own waits, its own draws
                own = random.Random(n)  # noqa: S311 (seeded: the same draws every run)
                sends.append(rs.policy(policy, https[n % INSTANCES], own, on_wait))
        answers = await asyncio.gather(*(send(url) for send in sends))
        assert {a.status_code for a in answers} == {503}  # the last answer, returned
        for http in https:
            await http.aclose()
        await server.stop()
        return len(upstream.arrivals), planned

    return asyncio.run(go())


@pytest.fixture(scope="module")
def fleets(rs: ModuleType) -> dict[str, tuple[int, list[list[float]]]]:
    """One fleet per policy without a budget, shared by the tests that read them."""
    with stamina.set_testing(True, attempts=100, cap=True):
        return {policy: fleet_at_once(rs, policy) for policy in ["fixed", "backoff", "jitter"]}


def busiest(planned: list[list[float]], first_retry: int = 1) -> int:
    """Attempts planned in the busiest 100 ms, counting retries from `first_retry` on."""
    buckets = Counter(int(t / 0.1 + 1e-9) for times in planned for t in times[first_retry:])
    return max(buckets.values())


@pytest.mark.parametrize("policy", ["fixed", "backoff", "jitter"])
def test_without_a_budget_every_request_is_sent_ten_times(fleets, policy) -> None:
    attempts, planned = fleets[policy]
    assert attempts == 10 * CLIENTS  # the load on the failing upstream, times ten
    assert all(len(times) == 10 for times in planned)


def test_without_jitter_the_fleet_retries_in_waves(fleets) -> None:
    for policy in ["fixed", "backoff"]:
        _, planned = fleets[policy]
        assert all(times == planned[0] for times in planned)  # in lockstep
        assert busiest(planned) == CLIENTS  # every client in the same 100 ms
    assert planned[0] == pytest.approx([0, 0.1, 0.35, 0.85, 1.85, 4.35, 9.35, 14.35, 19.35, 24.35])


def test_jitter_spreads_the_later_waves(fleets) -> None:
    _, planned = fleets["jitter"]
    waves = list(zip(*planned, strict=True))
    spread = [max(wave) - min(wave) for wave in waves]
    assert spread[0] == 0  # the failure itself: all at once
    assert all(later > earlier for earlier, later in itertools.pairwise(spread[1:]))  # widening
    assert spread[5] > 0.5  # the sixth attempt: 4.35 s, spread over more than 500 ms
    # ±10 % of 100 ms is 20 ms: the first retries stay bunched, the later ones do not.
    assert busiest(planned, first_retry=5) < CLIENTS / 2
    _, lockstep = fleets["backoff"]
    assert busiest(lockstep, first_retry=5) == CLIENTS  # the control


def test_a_budget_bounds_the_attempts(rs, no_sleep) -> None:
    """The control is the first test: the same fleet without a budget sends ten times."""
    requests = 2 * CLIENTS
    attempts, _ = fleet_at_once(rs, "budget", clients=requests)
    reserve = INSTANCES * 3  # RetryBudget's reserve, per instance
    assert requests < attempts <= requests * 1.1 + reserve


def test_the_upstream_sheds_above_its_capacity(rs) -> None:
    async def go() -> Counter[int]:
        upstream = rs.StrugglingUpstream(capacity=3, work=1.0)  # long: all 8 overlap
        server = rs.Server(upstream)
        url = await server.start()
        async with httpx.AsyncClient(timeout=30) as http:
            answers = await asyncio.gather(*(http.get(url) for _ in range(8)))
        await server.stop()
        return Counter(a.status_code for a in answers)

    assert asyncio.run(go()) == {200: 3, 503: 5}


def test_a_stall_drops_every_held_request_at_once(rs) -> None:
    async def go() -> tuple[list[int], int]:
        upstream = rs.StrugglingUpstream(capacity=10, work=0.0)
        server = rs.Server(upstream)
        url = await server.start()
        async with httpx.AsyncClient(timeout=30) as http:
            upstream.stall()
            held = [asyncio.create_task(http.get(url)) for _ in range(5)]
            while len(upstream.arrivals) < 5:  # noqa: ASYNC110 (polling the upstream's log)
                await asyncio.sleep(0.01)
            assert not any(task.done() for task in held)  # hung, not answering
            upstream.restart()
            dropped = [(await task).status_code for task in held]
            after = (await http.get(url)).status_code
        await server.stop()
        return dropped, after

    assert asyncio.run(go()) == ([503] * 5, 200)


def test_the_program_runs_a_short_storm() -> None:
    out = run_program(
        EXAMPLE, "budget", "--seconds", "1", "--rate", "40", "--stall-at", "0.2", "--stall", "0.3"
    )
    (line,) = out.splitlines()
    assert line.startswith("budget ")
    assert "attempts/request" in line


def test_the_page_shows_the_storm_and_its_figures() -> None:
    page = PAGE.read_text()
    for section in ["upstream", "policies"]:
        assert f'--8<-- "examples/{EXAMPLE}:{section}"' in page
    assert '--8<-- "snippets/resilience/retry_storm.md"' in page
