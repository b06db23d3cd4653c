"""PostgreSQL through one connection or a pool, and how fast a pool recovers from a restart.

Two measurements against a throwaway PostgreSQL (the test module's server, same
settings as the tests):

- the book's pair of `SELECT pg_sleep(...)` queries started at once, on one
  connection and on a pool of two: the very functions the page shows, imported from
  tests/resilience/test_database.py; wall time of the pair, median of ROUNDS;
- db_service.py under a steady write load (one client POSTing back to back) while
  PostgreSQL is stopped for a short and a long outage, then started again: the
  slowest answer while it was down, and the recovery time, from the moment
  PostgreSQL accepts connections again to the first 201 received. With the
  service's RECONNECT_TIMEOUT (5 s) and with psycopg_pool's default (300 s).

Writes snippets/resilience/db_pool.md.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from kit.examples import start_example
from resilience.test_database import (
    database_server,
    two_sleeps_on_a_pool,
    two_sleeps_on_one_connection,
    writing,
)

from bench.common import duration, markdown_table, stamp, write_results

RESULTS = "resilience/db_pool.md"
COMMAND = "./nox -s bench -- db_pool"
SLEEP = 0.5
ROUNDS = 3
SERVICE = "resilience/db_service.py"


def wait_for(check, what: str, bound: float = 120) -> None:
    deadline = time.monotonic() + bound
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} after {bound:g} s")
        time.sleep(0.01)


def timed(coroutine) -> float:
    started = time.perf_counter()
    asyncio.run(coroutine)
    return time.perf_counter() - started


def sleeps(url: str) -> list[tuple[str, float]]:
    one = [timed(two_sleeps_on_one_connection(url, SLEEP)) for _ in range(ROUNDS)]
    pool = [timed(two_sleeps_on_a_pool(url, SLEEP)) for _ in range(ROUNDS)]
    return [("one connection", statistics.median(one)), ("a pool of two", statistics.median(pool))]


def outage(database, logs: Path, seconds: float, reconnect_timeout: int) -> tuple[float, float]:
    """(recovery time, slowest answer of all) for one stop of `seconds`."""
    service = start_example(
        SERVICE,
        logs,
        env={"DATABASE_URL": database.app_url, "RECONNECT_TIMEOUT": str(reconnect_timeout)},
    )
    try:
        with writing(service.url) as writer:
            wait_for(lambda: writer.count(201) >= 20, "writes before the outage")
            database.stop()
            time.sleep(seconds)
            database.start()  # returns once pg_isready says it accepts connections
            ready = time.monotonic()
            wait_for(
                lambda: any(a.outcome == 201 and a.received > ready for a in writer.answers),
                "201 after the restart",
            )
        recovered = min(
            a.received for a in writer.answers if a.outcome == 201 and a.received > ready
        )
        unexpected = writer.outcomes() - {201, 503}
        if unexpected:
            raise RuntimeError(f"unexpected answers: {unexpected}")
        return recovered - ready, max(a.received - a.sent for a in writer.answers)
    finally:
        service.stop()


def recoveries(database, logs: Path) -> list[tuple[str, str, str, str]]:
    rows = []
    for reconnect_timeout in (5, 300):
        for seconds in (2, duration(20)):
            measured = [outage(database, logs, seconds, reconnect_timeout) for _ in range(ROUNDS)]
            recovery = [r for r, _ in measured]
            rows.append(
                (
                    f"{reconnect_timeout} s",
                    f"{seconds:g} s",
                    f"{statistics.median(recovery):.2f} s (max {max(recovery):.2f} s)",
                    f"{max(w for _, w in measured):.2f} s",
                )
            )
            print(rows[-1], flush=True)
    return rows


def report(pairs: list[tuple[str, float]], rows: list[tuple[str, str, str, str]]) -> str:
    sleep_table = markdown_table(
        ["two `pg_sleep(0.5)` at once on", "wall time (median)"],
        [(name, f"{seconds:.2f} s") for name, seconds in pairs],
    )
    recovery_table = markdown_table(
        ["RECONNECT_TIMEOUT", "PostgreSQL stopped for", "recovery (median of 3)",
         "slowest answer"],
        rows,
    )  # fmt: skip
    return (
        f"{sleep_table}\n\n"
        f"db_service.py (`DB_TIMEOUT` 2 s, pool 2-10) under one client writing back to back; "
        f"recovery runs from PostgreSQL accepting connections again to the first 201:\n\n"
        f"{recovery_table}"
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-db-pool-") as tmp, database_server() as db:
        pairs = sleeps(db.app_url)
        print(pairs, flush=True)
        rows = recoveries(db, Path(tmp))
    stamp_line = stamp(
        ["psycopg", "psycopg-pool", "sanic"], {"PostgreSQL": ["postgres", "--version"]}
    ).replace("PostgreSQL postgres (PostgreSQL)", "PostgreSQL")  # `postgres --version`
    write_results(RESULTS, report(pairs, rows), stamp_line, COMMAND)
