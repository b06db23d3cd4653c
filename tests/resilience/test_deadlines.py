"""docs/resilience/deadlines.md: a deadline passed from web-api to recipe-api is honoured
down to PostgreSQL, against a real PostgreSQL and a real HAProxy.

web-api -> HAProxy -> recipe-api -> PostgreSQL, where recipe-api's lookup query takes
QUERY_SECONDS and HAProxy lets one request at a time reach it (the others queue). Two
web-apis: one passes the time left in `Request-Timeout-Ms`, the other
(PROPAGATE=false) keeps it to itself. The test's client chooses each request's budget
with the same header. Whether work was done or stopped is read from recipe-api's
counters and from PostgreSQL's own log ("canceling statement due to ..."), never
from a duration.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from kit.examples import RunningExample, StartExample
from kit.process import wait_until
from kit.services.haproxy import RunningHaproxy, StartHaproxy
from kit.services.postgresql import PostgresServer

RECIPE_API = "resilience/deadline_recipe_api.py"
WEB_API = "resilience/deadline_web_api.py"
CFG = "snippets/resilience/deadline_haproxy.cfg"
QUERY_SECONDS = 1.0  # the slow lookup: the budgets below are well under or well over it
HEADER = "Request-Timeout-Ms"
BOUND = 15.0  # seconds: a bound on reaching a state, never a pass/fail threshold
BY_DEADLINE = "canceling statement due to statement timeout"
BY_HANG_UP = "canceling statement due to user request"


@pytest.fixture(scope="module")
def database(postgres_server: PostgresServer) -> str:
    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS deadlines")
        admin.execute("CREATE DATABASE deadlines")
    return postgres_server.url.rsplit("/", 1)[0] + "/deadlines"


@pytest.fixture(scope="module")
def recipe_api(run_shared_example: StartExample, database: str) -> RunningExample:
    return run_shared_example(
        RECIPE_API, env={"DATABASE_URL": database, "QUERY_SECONDS": str(QUERY_SECONDS)}
    )


@pytest.fixture(scope="module")
def proxy(recipe_api: RunningExample) -> Iterator[RunningHaproxy]:
    with tempfile.TemporaryDirectory() as workdir:
        start = StartHaproxy(Path(workdir))
        running = start(CFG, {"BACKEND_PORT": str(recipe_api.port)})
        yield running
        assert running.stop() == 0


@pytest.fixture(scope="module")
def web_apis(
    run_shared_example: StartExample, proxy: RunningHaproxy, recipe_api: RunningExample
) -> dict[str, RunningExample]:
    via_proxy = {"TARGET": proxy.url, "REQUEST_TIMEOUT": "5"}
    return {
        "propagating": run_shared_example(WEB_API, env=via_proxy),
        "keeping it": run_shared_example(WEB_API, env={**via_proxy, "PROPAGATE": "false"}),
        "direct": run_shared_example(
            WEB_API, env={"TARGET": recipe_api.url, "REQUEST_TIMEOUT": "5", "PROPAGATE": "false"}
        ),
    }


def counters(recipe_api: RunningExample) -> dict[str, int]:
    return httpx.get(f"{recipe_api.url}/health", timeout=5).json()


def cancellations(postgres_server: PostgresServer, why: str) -> int:
    return postgres_server.process.output().count(why)


def occupied(proxy: RunningHaproxy, recipe_api: RunningExample) -> threading.Thread:
    """A long request holding recipe-api's one slot: the next request queues in HAProxy."""
    busy = threading.Thread(
        target=httpx.get,
        args=(f"{proxy.url}/recipes/1",),
        kwargs={"headers": {HEADER: "10000"}, "timeout": 20},
    )
    busy.start()
    in_use = lambda: proxy.server("recipe_api", "recipe1")["scur"] == "1"  # noqa: E731
    wait_until(in_use, BOUND, "recipe-api's one slot to be taken")
    return busy


def test_with_time_enough_the_answer_comes_through(web_apis: dict[str, RunningExample]) -> None:
    answer = httpx.get(web_apis["propagating"].url, headers={HEADER: "5000"}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["producer_data"]["recipe"]["id"] == 42


def test_a_caller_that_hangs_up_cancels_the_query_on_a_direct_connection(
    web_apis: dict[str, RunningExample],
    recipe_api: RunningExample,
    postgres_server: PostgresServer,
) -> None:
    before = counters(recipe_api), cancellations(postgres_server, BY_HANG_UP)
    answer = httpx.get(web_apis["direct"].url, headers={HEADER: "150"}, timeout=10)
    assert answer.status_code == 504, answer.text
    # web-api's client closed the connection: Sanic cancelled the handler, psycopg the query.
    wait_until(
        lambda: cancellations(postgres_server, BY_HANG_UP) == before[1] + 1,
        BOUND,
        "PostgreSQL to log the query cancelled by the hang-up",
    )
    assert counters(recipe_api)["served"] == before[0]["served"]


def queued_and_abandoned(
    web_api: RunningExample,
    recipe_api: RunningExample,
    proxy: RunningHaproxy,
    postgres_server: PostgresServer,
) -> tuple[dict[str, int], int]:
    """A request with 150 ms to live, sent while recipe-api's one slot is busy: it waits
    in HAProxy's queue and web-api gives up on it. Returns recipe-api's counters and
    PostgreSQL's statement-timeout count from before it.

    That it really waited in the queue is a precondition, read from HAProxy at the
    moment web-api answers: on a very busy machine (two CPU hogs), 150 ms can pass
    before the request reaches HAProxy, or the busy request can end first. Then the
    scene is played again, never judged, with more time to live on later tries: any
    budget under the 1 s lookup tells the same story."""
    for budget in ("150", "300", "500", "700", "700"):
        busy = occupied(proxy, recipe_api)
        before = counters(recipe_api), cancellations(postgres_server, BY_DEADLINE)
        answer = httpx.get(web_api.url, headers={HEADER: budget}, timeout=10)
        queued = proxy.server("recipe_api", "BACKEND")["qcur"] == "1"
        busy.join()
        if queued:  # still waiting in HAProxy's queue when web-api answered
            assert answer.status_code == 504, answer.text  # the client is told no...
            assert answer.json()["error"] == "deadline exceeded"
            return before
        assert answer.status_code in (200, 504), answer.text  # 200: the slot freed in time
        idle = lambda: proxy.server("recipe_api", "recipe1")["scur"] == "0"  # noqa: E731
        wait_until(idle, BOUND, "recipe-api's slot to be free again")
    pytest.fail("the abandoned request never waited in HAProxy's queue in 5 tries")


def test_a_request_queued_past_its_deadline_is_stopped_by_postgresql(
    web_apis: dict[str, RunningExample],
    recipe_api: RunningExample,
    proxy: RunningHaproxy,
    postgres_server: PostgresServer,
) -> None:
    before = queued_and_abandoned(web_apis["propagating"], recipe_api, proxy, postgres_server)
    # HAProxy sent it on when the slot freed; recipe-api gave it only the time it had.
    wait_until(
        lambda: counters(recipe_api)["stopped_mid_query"] == before[0]["stopped_mid_query"] + 1,
        BOUND,
        "recipe-api to count the query its deadline stopped",
    )
    assert cancellations(postgres_server, BY_DEADLINE) == before[1] + 1
    assert counters(recipe_api)["served"] == before[0]["served"] + 1  # the busy one only


def test_control_without_the_header_the_queued_request_is_served_to_nobody(
    web_apis: dict[str, RunningExample],
    recipe_api: RunningExample,
    proxy: RunningHaproxy,
    postgres_server: PostgresServer,
) -> None:
    before = queued_and_abandoned(web_apis["keeping it"], recipe_api, proxy, postgres_server)
    # ...but recipe-api ran the whole query for a caller that had gone long ago.
    wait_until(
        lambda: counters(recipe_api)["served"] == before[0]["served"] + 2,
        BOUND,
        "recipe-api to serve the busy request and the abandoned one",
    )
    assert counters(recipe_api)["stopped_mid_query"] == before[0]["stopped_mid_query"]


def test_a_deadline_already_spent_does_no_work(recipe_api: RunningExample) -> None:
    before = counters(recipe_api)
    answer = httpx.get(f"{recipe_api.url}/recipes/7", headers={HEADER: "1"}, timeout=10)
    assert answer.status_code == 504
    assert answer.json() == {"error": "deadline exceeded", "where": "on arrival"}
    after = counters(recipe_api)
    assert after["expired_on_arrival"] == before["expired_on_arrival"] + 1
    assert (after["served"], after["stopped_mid_query"]) == (
        before["served"],
        before["stopped_mid_query"],
    )


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5", "600001", "99999999999999999999"])
def test_a_malformed_deadline_is_a_400_at_both_services(
    value: str, web_apis: dict[str, RunningExample], recipe_api: RunningExample
) -> None:
    for url in (web_apis["propagating"].url, f"{recipe_api.url}/recipes/1"):
        answer = httpx.get(url, headers={HEADER: value}, timeout=10)
        assert answer.status_code == 400, (url, value, answer.text)
        assert HEADER in answer.json()["message"]
