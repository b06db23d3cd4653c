"""idempotent_orders.py: one effect per Idempotency-Key, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from kit.examples import RunningExample
from kit.process import ROOT, wait_until
from kit.services.postgresql import PostgresServer

SERVICE = "resilience/idempotent_orders.py"
PAGE = ROOT / "docs" / "resilience" / "idempotency.md"
DATABASE = "resilience_orders"
POLL_BOUND = 20.0  # seconds: a bound on waiting, never a pass/fail threshold


@pytest.fixture(scope="module")
def database(postgres_server: PostgresServer) -> str:
    """A database of this module's own, so that counting rows counts only ours."""
    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DATABASE}")
    return postgres_server.url.rsplit("/", 1)[0] + f"/{DATABASE}"


@pytest.fixture(scope="module")
def orders(run_shared_example, database: str) -> RunningExample:
    # Generous: a duplicate held behind a lock in a test must wait, not give up.
    return run_shared_example(SERVICE, env={"DATABASE_URL": database, "IN_PROGRESS_TIMEOUT": "15"})


@pytest.fixture
def client(orders: RunningExample) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=orders.url, timeout=30) as client:  # one keep-alive connection
        yield client


def rows(database: str, item: str) -> int:
    with psycopg.connect(database) as db:
        return db.execute("SELECT count(*) FROM orders WHERE item = %s", (item,)).fetchone()[0]


def post(client: httpx.Client, key: str | None, order: object) -> httpx.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post("/orders", json=order, headers=headers)


def test_a_thousand_retries_place_one_order(client: httpx.Client, database: str) -> None:
    order = {"item": "thousand-retries", "quantity": 2}
    first = post(client, "retry-1000", order)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert first.json()["item"] == "thousand-retries"
    for _ in range(999):
        again = post(client, "retry-1000", order)
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content  # the stored answer, byte for byte
    assert rows(database, "thousand-retries") == 1


@pytest.fixture
def orders_locked(database: str) -> Iterator[threading.Event]:
    """Hold a lock on the orders table until the event is set: every request that
    gets as far as placing an order waits, so the requests sent meanwhile are all
    in flight at once, whatever the machine's speed."""
    release = threading.Event()
    locked = threading.Event()

    def hold() -> None:
        with psycopg.connect(database) as db, db.transaction():
            db.execute("LOCK TABLE orders IN EXCLUSIVE MODE")
            locked.set()
            release.wait(POLL_BOUND)

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(POLL_BOUND)
    try:
        yield release
    finally:
        release.set()
        holder.join()


def waiting_backends(database: str) -> int:
    """Sessions of the service waiting on a lock (the table's or another transaction's)."""
    with psycopg.connect(database) as db:
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
        )
        return db.execute(query, (DATABASE,)).fetchone()[0]


async def post_all(url: str, requests: list[tuple[str, dict]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return await asyncio.gather(
            *(client.post("/orders", json=order, headers={"Idempotency-Key": key})
              for key, order in requests)
        )  # fmt: skip


def send_while_locked(
    url: str, requests: list[tuple[str, dict]], database: str, release: threading.Event
) -> list[httpx.Response]:
    answers: list[httpx.Response] = []
    sender = threading.Thread(target=lambda: answers.extend(asyncio.run(post_all(url, requests))))
    sender.start()
    # The first request waits on the table lock; duplicates wait on its transaction.
    wait_until(lambda: waiting_backends(database) >= 2, POLL_BOUND, "requests held at once")
    release.set()
    sender.join(POLL_BOUND)
    assert len(answers) == len(requests)
    return answers


def test_fifty_concurrent_duplicates_place_one_order(
    orders: RunningExample, database: str, orders_locked: threading.Event
) -> None:
    order = {"item": "fifty-duplicates", "quantity": 1}
    answers = send_while_locked(orders.url, [("dup-50", order)] * 50, database, orders_locked)
    assert [a.status_code for a in answers] == [201] * 50
    assert len({a.content for a in answers}) == 1  # the same answer for all
    replayed = [a.headers.get("idempotent-replayed") for a in answers]
    assert replayed.count("true") == 49  # one did the work, 49 got its answer
    assert rows(database, "fifty-duplicates") == 1


def test_control_fifty_keys_place_fifty_orders(
    orders: RunningExample, database: str, orders_locked: threading.Event
) -> None:
    """The same burst with a key per request: fifty orders, so the one above is the key's doing."""
    order = {"item": "fifty-keys", "quantity": 1}
    requests = [(f"key-{n}", order) for n in range(50)]
    answers = send_while_locked(orders.url, requests, database, orders_locked)
    assert [a.status_code for a in answers] == [201] * 50
    assert len({a.json()["id"] for a in answers}) == 50
    assert rows(database, "fifty-keys") == 50


def test_a_different_order_under_the_same_key_is_422(client: httpx.Client, database: str) -> None:
    assert post(client, "reused", {"item": "reused-key", "quantity": 1}).status_code == 201
    other = post(client, "reused", {"item": "reused-key", "quantity": 5})
    assert other.status_code == 422
    assert other.json() == {"error": "this Idempotency-Key was used for a different request"}
    assert rows(database, "reused-key") == 1
    # The same order spelt differently (key order, spacing) is the same request.
    same = client.post(
        "/orders",
        content=b'{ "quantity": 1,  "item": "reused-key" }',
        headers={"Idempotency-Key": "reused", "Content-Type": "application/json"},
    )
    assert same.status_code == 201
    assert same.headers["idempotent-replayed"] == "true"


def test_the_key_is_required_and_bounded(client: httpx.Client, database: str) -> None:
    order = {"item": "bad-keys", "quantity": 1}
    missing = post(client, None, order)
    assert missing.status_code == 400
    assert missing.json() == {"error": "the Idempotency-Key header is required"}
    for bad in ["k" * 101, "", "no spaces", "é"]:
        refused = client.post("/orders", json=order, headers={"Idempotency-Key": bad.encode()})
        assert refused.status_code == 400, bad
        assert refused.json()["error"].startswith("Idempotency-Key: 1 to 100 characters")
    huge = client.post("/orders", json=order, headers={"Idempotency-Key": "k" * 10_000})
    assert 400 <= huge.status_code < 500
    assert rows(database, "bad-keys") == 0
    assert post(client, "k" * 100, order).status_code == 201  # the longest allowed


def test_an_invalid_order_is_400_and_uses_no_key(client: httpx.Client, database: str) -> None:
    invalid = post(client, "fixed-later", {"item": "", "quantity": 0})
    assert invalid.status_code == 400
    assert invalid.json()["error"] == "invalid order"
    assert {problem["loc"][0] for problem in invalid.json()["details"]} == {"item", "quantity"}
    malformed = client.post(
        "/orders", content=b'{"item": ', headers={"Idempotency-Key": "fixed-later"}
    )
    assert malformed.status_code == 400
    assert malformed.json()
    fixed = post(client, "fixed-later", {"item": "fixed-later", "quantity": 1})
    assert fixed.status_code == 201
    assert "idempotent-replayed" not in fixed.headers


def test_a_duplicate_gets_409_after_in_progress_timeout_then_the_answer(
    run_example, orders: RunningExample, database: str, orders_locked: threading.Event
) -> None:
    impatient = run_example(SERVICE, env={"DATABASE_URL": database, "IN_PROGRESS_TIMEOUT": "0.5"})
    order = {"item": "in-progress", "quantity": 3}
    first: list[httpx.Response] = []
    with httpx.Client(base_url=orders.url, timeout=30) as patient:
        sender = threading.Thread(target=lambda: first.append(post(patient, "slow", order)))
        sender.start()
        wait_until(lambda: waiting_backends(database) >= 1, POLL_BOUND, "the first request held")
        with httpx.Client(base_url=impatient.url, timeout=30) as client:
            duplicate = post(client, "slow", order)
            assert duplicate.status_code == 409
            assert duplicate.headers["retry-after"] == "1"
            assert duplicate.json() == {
                "error": "a request with this Idempotency-Key is in progress"
            }
            orders_locked.set()
            sender.join(POLL_BOUND)
            assert first[0].status_code == 201
            # Retried as Retry-After says, on another instance: the stored answer.
            retried = post(client, "slow", order)
    assert retried.status_code == 201
    assert retried.headers["idempotent-replayed"] == "true"
    assert retried.content == first[0].content
    assert rows(database, "in-progress") == 1


def test_health_answers_when_postgresql_does(client: httpx.Client) -> None:
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "UP"}


def test_the_page_includes_the_example() -> None:
    page = PAGE.read_text()
    for section in ["settings", "schema", "validation", "orders"]:
        assert f'--8<-- "examples/{SERVICE}:{section}"' in page
