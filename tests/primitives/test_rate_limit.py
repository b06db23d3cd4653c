"""rate_limited_service.py behaves as the "Rate limiting" page says, against real Redis
and a real HAProxy; rate_limit_in_memory.py is the negative control."""

from __future__ import annotations

import uuid

import httpx
import pytest
import redis
from kit.process import LOOPBACK, wait_until

SERVICE = "primitives/rate_limited_service.py"
IN_MEMORY = "primitives/rate_limit_in_memory.py"
CFG = "snippets/primitives/rate_limit_haproxy.cfg"
LIMIT = 5
POLL_BOUND = 20.0  # seconds: a bound on waiting, never a pass/fail threshold


def new_client() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def get(url: str, client: str | None = None) -> httpx.Response:
    # A new connection for every request (no pooled client): the balancer then
    # picks a server per request, as it would for many separate clients.
    headers = {"X-Client-Id": client} if client else {}
    return httpx.get(f"{url}/recipes/7", headers=headers, timeout=10)


def allowed_through(url: str, client: str, tries: int) -> int:
    """The harness shared by the limiter and its negative control: how many of
    `tries` requests in a row got 200 (every other answer must be a 429)."""
    codes = [get(url, client).status_code for _ in range(tries)]
    assert set(codes) <= {200, 429}, codes
    return codes.count(200)


@pytest.fixture(scope="module")
def instances(run_shared_example, module_redis_server):
    """Two instances sharing one Redis, with a long window: nothing slides mid-test."""
    env = {"REDIS_URL": module_redis_server.url, "RATE_LIMIT": str(LIMIT), "RATE_WINDOW": "60"}
    return [run_shared_example(SERVICE, env=env) for _ in range(2)]


def behind_haproxy(haproxy, ports: list[int]):
    proxy = haproxy(CFG, {"BACKEND1_PORT": str(ports[0]), "BACKEND2_PORT": str(ports[1])})

    def both_up() -> bool:
        return all(proxy.server("recipes", f"instance{i}")["status"] == "UP" for i in (1, 2))

    wait_until(both_up, POLL_BOUND, "both instances UP in HAProxy")
    return proxy


def test_one_instance_enforces_the_limit_exactly(instances, module_redis_server) -> None:
    url, client = instances[0].url, new_client()
    for left in reversed(range(LIMIT)):
        answer = get(url, client)
        assert answer.status_code == 200, answer.text
        assert answer.headers["X-RateLimit-Remaining"] == str(left)
    refused = get(url, client)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/json")
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert refused.json() == {"error": "too many requests", "retry_after": retry_after}
    # The key is namespaced, holds one entry per request allowed (a refusal adds
    # none: the set never grows past the limit) and expires with the window.
    store = redis.Redis.from_url(module_redis_server.url)
    key = f"primitives:ratelimit:id:{client}"
    assert store.zcard(key) == LIMIT
    assert 0 < store.pttl(key) <= 60_000
    store.close()


def test_two_instances_behind_haproxy_share_one_budget(instances, haproxy) -> None:
    proxy = behind_haproxy(haproxy, [i.port for i in instances])
    assert allowed_through(proxy.url, new_client(), tries=3 * LIMIT) == LIMIT
    # Both instances took part (round robin): the one budget was shared.
    served = [int(proxy.server("recipes", f"instance{i}")["stot"]) for i in (1, 2)]
    assert all(count >= LIMIT for count in served), served


def test_control_in_memory_limiters_let_through_one_budget_per_instance(
    run_example, haproxy
) -> None:
    env = {"RATE_LIMIT": str(LIMIT), "RATE_WINDOW": "60"}
    pair = [run_example(IN_MEMORY, env=env) for _ in range(2)]
    proxy = behind_haproxy(haproxy, [i.port for i in pair])
    through = allowed_through(proxy.url, new_client(), tries=3 * LIMIT)
    assert through > LIMIT  # the limit did not hold
    assert through == 2 * LIMIT  # each instance gave its own budget
    # Alone, one instance does hold the limit: the flaw is the split, not the counting.
    assert allowed_through(pair[0].url, new_client(), tries=2 * LIMIT) == LIMIT


def test_separate_clients_have_separate_budgets(instances, module_redis_server) -> None:
    url, spent = instances[1].url, new_client()
    assert allowed_through(url, spent, tries=LIMIT + 1) == LIMIT
    assert get(url, new_client()).status_code == 200
    # Without a header, the peer address is the client: a budget of its own.
    store = redis.Redis.from_url(module_redis_server.url)
    store.delete(f"primitives:ratelimit:ip:{LOOPBACK}")
    store.close()
    assert get(url).status_code == 200


@pytest.mark.parametrize("bad", ["", "a" * 65, "two words", "é", "a/b", "*"])
def test_a_bad_client_id_is_400(instances, bad: str) -> None:
    answer = httpx.get(
        f"{instances[0].url}/recipes/7", headers={"X-Client-Id": bad.encode()}, timeout=10
    )
    assert answer.status_code == 400
    assert "X-Client-Id" in answer.json()["error"]
    assert instances[0].alive()


def test_the_window_slides(run_example, module_redis_server) -> None:
    env = {"REDIS_URL": module_redis_server.url, "RATE_LIMIT": "2", "RATE_WINDOW": "1"}
    service = run_example(SERVICE, env=env)
    client = new_client()
    refusals: list[httpx.Response] = []

    def refused() -> bool:
        answer = get(service.url, client)
        if answer.status_code == 429:
            refusals.append(answer)
        return bool(refusals)

    wait_until(refused, POLL_BOUND, "a 429 once the budget of 2 is spent")
    assert refusals[0].headers["Retry-After"] == "1"  # the oldest entry leaves within 1 s
    # No sleep of a guessed length: poll until the oldest request has left the window.
    wait_until(lambda: get(service.url, client).status_code == 200, POLL_BOUND, "the budget back")


def test_redis_down_is_503_and_the_service_recovers(run_example, redis_server) -> None:
    service = run_example(SERVICE, env={"REDIS_URL": redis_server.url, "REDIS_TIMEOUT": "0.5"})
    client = new_client()
    assert get(service.url, client).status_code == 200
    redis_server.stop()
    answer = get(service.url, client)  # httpx's 10 s timeout: a hang fails here
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert answer.json() == {"error": "rate limiter unavailable, try again shortly"}
    assert httpx.get(f"{service.url}/health", timeout=10).status_code == 503
    assert service.alive()
    redis_server.start()  # same port, no data: the client reconnects by itself
    wait_until(lambda: get(service.url, client).status_code == 200, POLL_BOUND, "200 again")
    assert "rate limiter unavailable: ConnectionError" in service.output()


def test_a_silent_redis_is_503_not_a_hang(run_example, hung_server) -> None:
    env = {"REDIS_URL": f"redis://{LOOPBACK}:{hung_server}/0", "REDIS_TIMEOUT": "0.5"}
    service = run_example(SERVICE, env=env, ready="port")  # /health is 503: Redis is silent
    answer = get(service.url, new_client())
    assert answer.status_code == 503
    assert answer.json() == {"error": "rate limiter unavailable, try again shortly"}
    assert service.alive()
    assert "rate limiter unavailable: TimeoutError" in service.output()
