"""retry_client.py retries as the "Retries" page says, against the kit's fake upstream.

Waits are recorded, not slept: stamina's test mode (`stamina.set_testing`) turns
every backoff into 0 s while the client's own hook still decides each wait and
reports it, so the schedule is checked exactly and no test sleeps through it. One
test runs without test mode and reads stamina's own instrumentation, to show that
stamina really waits what the hook returned.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from types import ModuleType

import httpx
import pytest
import stamina
from kit.examples import run_program
from kit.fake_upstream import FakeUpstream
from kit.process import LOOPBACK, ROOT, free_port

CLIENT = "resilience/retry_client.py"
PAGE = ROOT / "docs" / "resilience" / "retries.md"
SCHEDULE = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 5.0, 5.0, 5.0]  # the waits of 10 attempts


@pytest.fixture
def rc(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str((ROOT / "examples" / CLIENT).parent))
    return importlib.import_module("retry_client")


@pytest.fixture
def no_sleep() -> Iterator[None]:
    """stamina's test mode: backoffs are 0 s, the attempts the client asks for (cap)."""
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


class Jitter:
    """A random source that always draws the same point of the interval."""

    def __init__(self, fraction: float) -> None:
        self.fraction = fraction

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.fraction


MIDDLE, LOW, HIGH = Jitter(0.5), Jitter(0.0), Jitter(1.0)


def send(
    rc: ModuleType,
    upstream: str,
    method: str = "GET",
    *,
    budget: object | None = None,
    rng: object = MIDDLE,
    now: Callable[[], float] | None = None,
    on_wait: Callable[[float], None] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[httpx.Response, list[float]]:
    """One request through a RetryingClient; returns the answer and the recorded waits."""
    waits: list[float] = []

    def record(seconds: float) -> None:
        waits.append(seconds)
        if on_wait:
            on_wait(seconds)

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(base_url=upstream, timeout=5) as http:
            client = rc.RetryingClient(
                http,
                budget=budget or rc.RetryBudget(reserve=100),
                rng=rng,
                now=now or (lambda: 0.0),
                on_wait=record,
            )
            return await client.request(method, "/recipes/42", headers=headers or {})

    return asyncio.run(go()), waits


def test_503s_then_success_follow_the_schedule(rc, fake_upstream, no_sleep) -> None:
    fake: FakeUpstream = fake_upstream().behave(503, {"error": "busy"})

    def recover_after_five(seconds: float) -> None:
        if len(fake.requests) == 5:  # the fifth 503 has been answered
            fake.behave(200, {"id": 42})

    response, waits = send(rc, fake.url, on_wait=recover_after_five)
    assert response.status_code == 200
    assert response.json() == {"id": 42}
    assert waits == pytest.approx([0.1, 0.25, 0.5, 1.0, 2.5], rel=1e-12)
    assert len(fake.requests) == 6


def test_a_failing_upstream_gets_ten_attempts_then_the_last_answer(
    rc, fake_upstream, no_sleep
) -> None:
    fake = fake_upstream().behave(503, {"error": "busy"})
    response, waits = send(rc, fake.url)
    assert response.status_code == 503  # the last answer, not an exception
    assert waits == pytest.approx(SCHEDULE, rel=1e-12)  # 5000 ms from the sixth retry on
    assert len(fake.requests) == 10


def test_the_jitter_is_ten_percent_either_way(rc, fake_upstream, no_sleep) -> None:
    fake = fake_upstream().behave(503)
    _, low = send(rc, fake.url, rng=LOW)
    _, high = send(rc, fake.url, rng=HIGH)
    assert low == pytest.approx([w * 0.9 for w in SCHEDULE], rel=1e-12)
    assert high == pytest.approx([w * 1.1 for w in SCHEDULE], rel=1e-12)
    _, real = send(rc, fake.url, rng=rc.random.Random(7))  # the default kind of source
    assert all(0.9 * w <= r <= 1.1 * w for r, w in zip(real, SCHEDULE, strict=True))
    assert real != pytest.approx(SCHEDULE)  # spread out, not in lockstep


def test_only_safe_requests_are_retried(rc, fake_upstream, no_sleep) -> None:
    fake = fake_upstream().behave(503)
    for method, headers, attempts in [
        ("POST", {}, 1),
        ("PATCH", {}, 1),
        ("POST", {"Idempotency-Key": "order-7"}, 10),
        ("PATCH", {"Idempotency-Key": "patch-7"}, 10),
        ("GET", {}, 10),
        ("PUT", {}, 10),
        ("DELETE", {}, 10),
    ]:
        fake.requests.clear()
        response, waits = send(rc, fake.url, method, headers=headers)
        assert response.status_code == 503
        assert len(fake.requests) == attempts, (method, headers)
        assert len(waits) == attempts - 1
        assert {r.method for r in fake.requests} == {method}


def test_a_client_error_is_not_retried(rc, fake_upstream, no_sleep) -> None:
    fake = fake_upstream().behave(404, {"error": "no such recipe"})
    response, waits = send(rc, fake.url)
    assert response.status_code == 404
    assert waits == []
    assert len(fake.requests) == 1


def test_retry_after_seconds_is_honoured(rc, fake_upstream, no_sleep) -> None:
    fake = fake_upstream().behave(503, headers={"Retry-After": "2"})
    response, waits = send(rc, fake.url, on_wait=lambda seconds: fake.behave(200))
    assert response.status_code == 200
    assert waits == [2.0]  # the server's 2 s, not the schedule's 100 ms


def test_retry_after_as_a_date_uses_the_clock(rc, fake_upstream, no_sleep) -> None:
    when = datetime(2026, 12, 1, 12, 0, 30, tzinfo=UTC)
    fake = fake_upstream().behave(429, headers={"Retry-After": format_datetime(when, usegmt=True)})
    clock = lambda: when.timestamp() - 7.0  # noqa: E731 (a fake clock: 7 s before)
    response, waits = send(rc, fake.url, now=clock, on_wait=lambda s: fake.behave(200))
    assert response.status_code == 200
    assert waits == [7.0]


def test_retry_after_too_long_is_not_waited_for(rc, fake_upstream, no_sleep) -> None:
    fake = fake_upstream().behave(503, headers={"Retry-After": "120"})
    response, waits = send(rc, fake.url)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "120"  # the caller can decide
    assert waits == []
    assert len(fake.requests) == 1


def test_the_budget_stops_retries_when_spent(rc, fake_upstream, no_sleep) -> None:
    fake = fake_upstream().behave(503)
    budget = rc.RetryBudget(per=10, reserve=2)
    seen = []
    for _ in range(10):
        fake.requests.clear()
        send(rc, fake.url, budget=budget)
        seen.append(len(fake.requests))
    # The reserve pays two retries; then one request in ten earns one more.
    assert seen == [3, 1, 1, 1, 1, 1, 1, 1, 1, 2]
    retries = sum(seen) - len(seen)
    assert retries == 3


def test_control_without_a_budget_limit_every_request_retries(rc, fake_upstream, no_sleep) -> None:
    fake = fake_upstream().behave(503)
    budget = rc.RetryBudget(per=10, reserve=1000, most=1000)
    for _ in range(3):
        fake.requests.clear()
        send(rc, fake.url, budget=budget)
        assert len(fake.requests) == 10


def test_a_refused_connection_is_retried_then_raised(rc, no_sleep) -> None:
    nowhere = f"http://{LOOPBACK}:{free_port()}"
    with pytest.raises(httpx.ConnectError):
        send(rc, nowhere)


def test_stamina_waits_what_the_hook_returns(rc, fake_upstream) -> None:
    """No test mode: stamina's instrumentation reports the backoff it really used."""
    assert not stamina.is_testing()
    fake = fake_upstream().behave(503)
    reported = []
    before = stamina.instrumentation.get_on_retry_hooks()
    stamina.instrumentation.set_on_retry_hooks([lambda details: reported.append(details)])
    try:
        response, waits = send(rc, fake.url, on_wait=lambda s: fake.behave(200))
    finally:
        stamina.instrumentation.set_on_retry_hooks(before)
    assert response.status_code == 200
    assert waits == pytest.approx([0.1], rel=1e-12)
    assert [d.wait_for for d in reported] == waits  # one real wait of 100 ms
    assert isinstance(reported[0].caused_by, rc.RetryableStatus)


def test_the_program_prints_its_waits(fake_upstream) -> None:
    fake = fake_upstream().behave(200, {"id": 42})
    assert run_program(CLIENT, env={"TARGET": fake.url}) == "GET /recipes/42: 200\n"
    fake.behave(503)
    fake.requests.clear()
    lines = run_program(CLIENT, env={"TARGET": fake.url}).splitlines()
    # A fresh client: its reserve of three retries, really waited (0.85 s or so).
    assert [line.split(" in ")[0] for line in lines[:-1]] == ["retry 1", "retry 2", "retry 3"]
    assert lines[0].endswith(f": 503 from {fake.url}/recipes/42")
    assert lines[-1] == "GET /recipes/42: 503"
    assert len(fake.requests) == 4


def test_the_page_includes_the_client() -> None:
    page = PAGE.read_text()
    for section in ["policy", "budget", "retry_after", "client"]:
        assert f'--8<-- "examples/{CLIENT}:{section}"' in page
