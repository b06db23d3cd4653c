"""Check a service against its service level objectives with an open-loop load test.

It reads the objectives from a TOML file (the load to send, and the latency
percentiles and error rate the service must meet under it), sends requests at
that fixed rate whatever the service does, measures each request's latency
from the moment it *should* have been sent, and prints one line per objective
with PASS or FAIL.

Run it (against a running recipe-api):

    python examples/scaling/slo_check.py --slo snippets/scaling/slo.toml http://127.0.0.1:4000/recipes/42

Exit code: 0 when every objective is met, 1 when any is violated, 2 for bad
input (a missing or invalid SLO file, an unknown key, a value out of range, a
URL that is not http(s) on a loopback address).

The load is bounded: at most `rate` x `duration` requests, at most
`concurrency` of them in flight, and the whole run ends within `duration` +
`timeout` seconds. It only targets loopback addresses (`127.0.0.1`, `::1`,
`localhost`): a load generator pointed at somebody else's server is an attack.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import math
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

# --8<-- [start:validate]
MAX_REQUESTS = 100_000
MAX_DURATION = 300.0
LOAD_KEYS = {"rate", "duration", "concurrency", "timeout"}
PERCENTILES = {"p50_ms": 50.0, "p90_ms": 90.0, "p95_ms": 95.0, "p99_ms": 99.0, "p999_ms": 99.9}
OBJECTIVE_KEYS = {*PERCENTILES, "max_error_rate"}


class BadInput(Exception):
    """The SLO file or the URL is not usable; the message says why."""


@dataclass(frozen=True)
class Load:
    rate: float  # requests per second, sent on schedule
    duration: float  # seconds
    concurrency: int = 100  # requests in flight at most
    timeout: float = 2.0  # seconds from a request's scheduled start to giving up on it


def number(table: dict[str, Any], key: str, high: float, zero_ok: bool = False) -> float:
    value = table[key]
    # bool is an int in Python; `rate = true` is a mistake, not a rate of 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(f"{key} must be a number, not {value!r}")
    too_small = value < 0 if zero_ok else value <= 0
    if too_small or value > high:
        low = "at least 0" if zero_ok else "more than 0"
        raise BadInput(f"{key} must be {low} and at most {high:g}, not {value!r}")
    return float(value)


def load_slo(path: Path) -> tuple[Load, dict[str, float]]:
    """Read and check the SLO file: a [load] table and an [objectives] table."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as error:
        raise BadInput(f"cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"{path} is not valid TOML: {error}") from None
    for name in data.keys() - {"load", "objectives"}:
        raise BadInput(f"unknown table or key {name!r}: expected [load] and [objectives]")
    load_table, objectives = data.get("load"), data.get("objectives")
    for name, table, allowed in (
        ("load", load_table, LOAD_KEYS),
        ("objectives", objectives, OBJECTIVE_KEYS),
    ):
        if not isinstance(table, dict):
            raise BadInput(f"the [{name}] table is missing")
        for key in sorted(table.keys() - allowed):
            raise BadInput(
                f"unknown key {key!r} in [{name}]: expected {', '.join(sorted(allowed))}"
            )
    for key in ("rate", "duration"):
        if key not in load_table:
            raise BadInput(f"[load] needs {key}")
    load = Load(
        rate=number(load_table, "rate", MAX_REQUESTS),
        duration=number(load_table, "duration", MAX_DURATION),
        concurrency=int(number(load_table, "concurrency", 1000))
        if "concurrency" in load_table
        else Load.concurrency,
        timeout=number(load_table, "timeout", 60) if "timeout" in load_table else Load.timeout,
    )
    if not 1 <= load.rate * load.duration <= MAX_REQUESTS:
        raise BadInput(f"rate x duration must be between 1 and {MAX_REQUESTS:,} requests")
    if not objectives:
        raise BadInput("[objectives] needs at least one objective")
    checked = {
        key: number(objectives, key, 1, zero_ok=True)
        if key == "max_error_rate"
        else number(objectives, key, 60_000)
        for key in objectives
    }
    return load, checked


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise BadInput(f"{url!r} is not an http:// or https:// URL")
    host = parts.hostname
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise BadInput(f"{host} is not a loopback address: this tool only loads this machine")
    return url


# --8<-- [end:validate]


# --8<-- [start:generator]
@dataclass
class Outcome:
    latency: float  # seconds from the scheduled start to the end, answered or not
    late: float  # seconds the generator itself fell behind the schedule
    ok: bool


async def one_request(
    client: httpx.AsyncClient, url: str, scheduled: float, slots: asyncio.Semaphore, deadline: float
) -> Outcome:
    late = time.monotonic() - scheduled
    ok = False
    try:
        # The deadline counts from the scheduled start: waiting for a free slot
        # is part of the latency a real user would have seen.
        async with asyncio.timeout_at(deadline):
            async with slots:
                response = await client.get(url)
                ok = response.status_code < 400
    except (TimeoutError, httpx.HTTPError):
        pass
    return Outcome(time.monotonic() - scheduled, late, ok)


async def run_load(url: str, load: Load) -> list[Outcome]:
    """Open loop: request i starts at i / rate seconds, however slow the answers."""
    total = math.floor(load.rate * load.duration)
    slots = asyncio.Semaphore(load.concurrency)
    limits = httpx.Limits(
        max_connections=load.concurrency, max_keepalive_connections=load.concurrency
    )
    async with httpx.AsyncClient(limits=limits, timeout=load.timeout) as client:
        # One request before the clock starts, not counted: the client's
        # first-use costs (lazy imports, the first connection) are not the service's.
        with contextlib.suppress(httpx.HTTPError):
            await client.get(url)
        start = time.monotonic() + 0.05
        tasks = []
        for i in range(total):
            scheduled = start + i / load.rate
            delay = scheduled - time.monotonic()
            # Behind schedule, sleep(0) still lets the requests already started run.
            await asyncio.sleep(max(0.0, delay))
            tasks.append(
                asyncio.create_task(
                    one_request(client, url, scheduled, slots, scheduled + load.timeout)
                )
            )
        return await asyncio.gather(*tasks)


# --8<-- [end:generator]


# --8<-- [start:report]
def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest rank: the smallest value that at least p % of the values do not exceed."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def report(url: str, load: Load, objectives: dict[str, float], outcomes: list[Outcome]) -> bool:
    latencies = sorted(outcome.latency for outcome in outcomes)
    errors = sum(not outcome.ok for outcome in outcomes)
    late = sum(outcome.late > 0.010 for outcome in outcomes)
    print(
        f"{len(outcomes)} requests to {url} at {load.rate:g}/s for {load.duration:g} s "
        f"(open loop, at most {load.concurrency} in flight)"
    )
    print(f"errors: {errors}; generator more than 10 ms behind schedule: {late} times")
    print()
    print(f"{'objective':<16}{'target':>12}{'measured':>12}  result")
    all_met = True
    for key, target in objectives.items():
        if key == "max_error_rate":
            measured = errors / len(outcomes)
            name, shown = "error rate", (f"<= {target:.2%}", f"{measured:.2%}")
        else:
            measured = percentile(latencies, PERCENTILES[key]) * 1000
            name, shown = f"{key[:-3]} latency", (f"<= {target:g} ms", f"{measured:.1f} ms")
        met = measured <= target
        all_met &= met
        print(f"{name:<16}{shown[0]:>12}{shown[1]:>12}  {'PASS' if met else 'FAIL'}")
    print()
    print("all objectives met" if all_met else "objectives violated")
    return all_met


# --8<-- [end:report]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slo", required=True, type=Path, help="the SLO file (TOML)")
    parser.add_argument("url", help="the URL to load, on this machine")
    args = parser.parse_args(argv)
    try:
        load, objectives = load_slo(args.slo)
        url = check_url(args.url)
    except BadInput as error:
        print(f"slo_check: {error}", file=sys.stderr)
        return 2
    outcomes = asyncio.run(run_load(url, load))
    return 0 if report(url, load, objectives, outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
