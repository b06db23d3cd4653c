"""Check a service against its service level objectives with an open-loop load test.

It reads the objectives from a TOML file (the load to send, and the latency
percentiles and error rate the service must meet under it), sends requests at
that fixed rate whatever the service does, measures each request's latency
from the moment it *should* have been sent, and prints one line per objective
with PASS or FAIL.

Run it (against a running recipe-api):

    python examples/scaling/slo_check.py --slo snippets/scaling/slo.toml http://127.0.0.1:4000/recipes/42

Exit code: 0 when every objective is met, 1 when any is violated, 2 for bad
input, before any request is sent: a missing or unreadable SLO file, invalid
TOML, a file that does not match the model (an unknown key, a missing one, a
wrong type, a value out of range: one line on stderr names each problem by its
field path, such as `objectives.latency.0.percentile`), or a URL that is not
http(s) on a loopback address.

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
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError


class BadInput(Exception):
    """The SLO file or the URL is not usable; the message says why."""


# --8<-- [start:model_load]
MAX_REQUESTS = 100_000


class Strict(BaseModel):
    # Unknown keys are errors (a typo must not drop an objective), and no
    # coercion: `rate = "10"` or `rate = true` is a mistake, not a rate.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Load(Strict):
    rate: float = Field(gt=0, le=MAX_REQUESTS)  # requests per second, sent on schedule
    duration: float = Field(gt=0, le=300)  # seconds
    concurrency: int = Field(100, gt=0, le=1000)  # requests in flight at most
    timeout: float = Field(2.0, gt=0, le=60)  # seconds from a scheduled start to giving up

    @model_validator(mode="after")
    def bounded(self) -> Load:
        if not 1 <= self.rate * self.duration <= MAX_REQUESTS:
            raise PydanticCustomError(
                "too_many", f"rate x duration must be between 1 and {MAX_REQUESTS:,} requests"
            )
        return self


# --8<-- [end:model_load]


# --8<-- [start:model_objectives]
class Latency(Strict):
    percentile: float = Field(gt=0, le=100)  # p99 is 99, p99.9 is 99.9
    max_ms: float = Field(gt=0, le=60_000)


class Objectives(Strict):
    latency: list[Latency] = Field(default=[], max_length=10)
    max_error_rate: float | None = Field(None, ge=0, le=1)  # 0.01: 1 % may fail

    @model_validator(mode="after")
    def at_least_one(self) -> Objectives:
        if not self.latency and self.max_error_rate is None:
            raise PydanticCustomError("empty", "needs at least one objective")
        return self


class Slo(Strict):
    load: Load
    objectives: Objectives


# --8<-- [end:model_objectives]


# --8<-- [start:validate]
def field_path(problem: ErrorDetails) -> str:
    """`objectives.latency.1.percentile`: where in the file the problem is."""
    return ".".join(str(part) for part in problem["loc"]) or "(file)"


def load_slo(path: Path) -> Slo:
    """Read and check the SLO file; BadInput names every problem with its field path."""
    try:
        return Slo.model_validate(tomllib.loads(path.read_text()))
    except OSError as error:
        raise BadInput(f"cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"{path} is not valid TOML: {error}") from None
    except ValidationError as error:
        problems = "; ".join(f"{field_path(p)}: {p['msg']}" for p in error.errors())
        raise BadInput(f"{path}: {problems}") from None


# --8<-- [end:validate]


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


# --8<-- [start:request]
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


# --8<-- [end:request]


# --8<-- [start:schedule]
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


# --8<-- [end:schedule]


# --8<-- [start:report]
def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest rank: the smallest value that at least p % of the values do not exceed."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def report(url: str, slo: Slo, outcomes: list[Outcome]) -> bool:
    load, objectives = slo.load, slo.objectives
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
    rows = []  # (name, target shown, measured shown, met)
    for objective in objectives.latency:
        measured = percentile(latencies, objective.percentile) * 1000
        name = f"p{objective.percentile:g} latency"
        rows.append((name, f"<= {objective.max_ms:g} ms", f"{measured:.1f} ms",
                     measured <= objective.max_ms))  # fmt: skip
    if objectives.max_error_rate is not None:
        rate, target = errors / len(outcomes), objectives.max_error_rate
        rows.append(("error rate", f"<= {target:.2%}", f"{rate:.2%}", rate <= target))
    for name, target_shown, measured_shown, met in rows:
        print(f"{name:<16}{target_shown:>12}{measured_shown:>12}  {'PASS' if met else 'FAIL'}")
    all_met = all(met for *_, met in rows)
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
        slo = load_slo(args.slo)
        url = check_url(args.url)
    except BadInput as error:
        print(f"slo_check: {error}", file=sys.stderr)
        return 2
    outcomes = asyncio.run(run_load(url, slo.load))
    return 0 if report(url, slo, outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
