"""health_service.py behaves as the "Health checks" page says, against real services."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from kit import sysdeps
from kit.examples import assert_output_is_shown
from kit.process import LOOPBACK, ROOT, free_port, wait_until
from kit.services.postgresql import PostgresServer
from kit.services.redis import RedisServer
from kit.snippets import run_script

SERVICE = "observability/health_service.py"
SNIPPETS = ROOT / "snippets" / "observability"
PAGE = ROOT / "docs" / "observability" / "health_checks.md"
CANARY = "s3cret-Pa55word"  # a password that must never be shown
POLL_BOUND = 20.0  # seconds: a bound on waiting, never a pass/fail threshold


def health(url: str) -> httpx.Response:
    # The client's own timeout is far above HEALTH_TIMEOUT: if /health hung,
    # this would raise instead of answering.
    return httpx.get(f"{url}/health", timeout=10)


def poll(check: Callable[[], bool], what: str) -> None:
    wait_until(check, POLL_BOUND, what)


def try_script(url: str) -> str:
    sysdeps.require("curl")
    result = run_script(SNIPPETS / "health_try.sh", {"SERVICE": url})
    return result.stdout


def start(run_example, postgres: str, redis_url: str, ready: str = "/health", **env: str):
    """The service with its two dependency URLs (and any other variables)."""
    env = {"DATABASE_URL": postgres, "REDIS_URL": redis_url, **env}
    return run_example(SERVICE, env=env, ready=ready)


def test_all_up_is_200_up(run_example, postgres_server, redis_server) -> None:
    service = start(run_example, postgres_server.url, redis_server.url)
    response = health(service.url)
    assert response.status_code == 200
    assert response.json() == {
        "status": "UP",
        "checks": {"postgres": {"status": "UP"}, "redis": {"status": "UP"}},
    }
    assert_output_is_shown(try_script(service.url), SNIPPETS / "health_up.out")


def test_redis_down_is_200_degraded_and_recovers(
    run_example, postgres_server, redis_server: RedisServer
) -> None:
    service = start(run_example, postgres_server.url, redis_server.url)
    assert health(service.url).json()["status"] == "UP"  # a connection is now pooled

    redis_server.stop()
    response = health(service.url)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "DEGRADED"
    assert body["checks"]["postgres"] == {"status": "UP"}
    assert body["checks"]["redis"] == {"status": "DOWN", "error": "ConnectionError"}
    assert_output_is_shown(try_script(service.url), SNIPPETS / "health_degraded.out")

    redis_server.start()  # same port: the service's client must reconnect by itself
    poll(lambda: health(service.url).json()["status"] == "UP", "UP again after Redis restarted")
    assert "redis is down: ConnectionError" in service.output()


def test_postgres_down_is_500_down_and_recovers(
    run_example, postgres_server: PostgresServer, redis_server
) -> None:
    service = start(run_example, postgres_server.url, redis_server.url)
    assert health(service.url).status_code == 200
    postgres_server.stop()
    try:
        response = health(service.url)
        assert response.status_code == 500
        body = response.json()
        assert body["status"] == "DOWN"
        assert body["checks"]["postgres"] == {"status": "DOWN", "error": "OperationalError"}
        assert body["checks"]["redis"] == {"status": "UP"}
        assert_output_is_shown(try_script(service.url), SNIPPETS / "health_down.out")
        assert service.alive()  # reporting DOWN is not dying
    finally:
        postgres_server.start()  # session-scoped: later tests need it
    poll(lambda: health(service.url).status_code == 200, "200 again after PostgreSQL restarted")
    assert health(service.url).json()["status"] == "UP"


def test_hung_redis_is_degraded_with_a_timeout(run_example, postgres_server, hung_server) -> None:
    redis_url = f"redis://{LOOPBACK}:{hung_server}/0"
    service = start(run_example, postgres_server.url, redis_url, ready="started")
    response = health(service.url)  # answers instead of hanging
    assert response.status_code == 200
    assert response.json()["status"] == "DEGRADED"
    assert response.json()["checks"]["redis"] == {"status": "DOWN", "error": "TimeoutError"}


def test_hung_postgres_is_down_with_a_timeout(run_example, redis_server, hung_server) -> None:
    url = f"postgresql://postgres@{LOOPBACK}:{hung_server}/postgres"
    service = start(run_example, url, redis_server.url, ready="started")
    response = health(service.url)
    assert response.status_code == 500
    assert response.json()["status"] == "DOWN"
    assert response.json()["checks"]["postgres"] == {"status": "DOWN", "error": "TimeoutError"}
    assert response.json()["checks"]["redis"] == {"status": "UP"}


def test_both_hung_answer_together(run_example, hung_server) -> None:
    hung = f"{LOOPBACK}:{hung_server}"
    service = start(
        run_example,
        f"postgresql://postgres@{hung}/postgres",
        f"redis://{hung}/0",
        ready="started",
        HEALTH_TIMEOUT="0.5",
    )
    response = health(service.url)
    assert response.status_code == 500
    assert response.json() == {
        "status": "DOWN",
        "checks": {
            "postgres": {"status": "DOWN", "error": "TimeoutError"},
            "redis": {"status": "DOWN", "error": "TimeoutError"},
        },
    }


def test_starts_with_dependencies_down_and_stays_live(run_example) -> None:
    closed = free_port()  # nothing listens there
    service = start(
        run_example,
        f"postgresql://postgres@{LOOPBACK}:{closed}/postgres",
        f"redis://{LOOPBACK}:{closed}/0",
        ready="started",
    )
    assert health(service.url).json()["status"] == "DOWN"
    live = httpx.get(f"{service.url}/live")
    assert live.status_code == 200
    assert live.json() == {"status": "UP"}


def test_password_never_in_a_response_or_the_log(run_example, postgres_server) -> None:
    closed = free_port()
    # The real server trusts loopback, so a password in the URL is accepted and ignored.
    good = postgres_server.url.replace("postgres@", f"postgres:{CANARY}@")
    bad_redis = f"redis://:{CANARY}@{LOOPBACK}:{closed}/0"
    up = start(run_example, good, bad_redis)
    assert health(up.url).json()["checks"]["postgres"] == {"status": "UP"}
    down = start(
        run_example,
        f"postgresql://postgres:{CANARY}@{LOOPBACK}:{closed}/postgres",
        bad_redis,
        ready="started",
    )
    responses = [health(up.url), health(down.url), health(down.url)]
    assert responses[1].json()["checks"]["postgres"]["status"] == "DOWN"
    for running in (up, down):
        assert running.stop() == 0
        log = running.output()
        assert f"checking postgresql://{LOOPBACK}:" in log  # host and port: enough to debug
        assert CANARY not in log
    for response in responses:
        assert CANARY not in response.text


def test_bad_routes_get_json_404_and_405(run_example, postgres_server, redis_server) -> None:
    service = start(run_example, postgres_server.url, redis_server.url)
    missing = httpx.get(f"{service.url}/nope")
    assert missing.status_code == 404
    assert missing.json()["status"] == 404
    wrong = httpx.post(f"{service.url}/health", json={})
    assert wrong.status_code == 405
    assert wrong.json()["status"] == 405


def test_every_snippet_is_on_the_page() -> None:
    page = PAGE.read_text()
    for name in ["health_try.sh", "health_up.out", "health_degraded.out", "health_down.out"]:
        assert f'--8<-- "snippets/observability/{name}"' in page
