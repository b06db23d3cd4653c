"""An HTTP client that retries what is safe to retry, as slowly as it should, and not too often.

`RetryingClient` wraps an `httpx.AsyncClient`, and its `request()` retries with
stamina when the answer is a transport error (refused, reset, timed out) or a
429, 502, 503 or 504:

- only requests that are safe to repeat: `GET`, `HEAD`, `OPTIONS`, `PUT`,
  `DELETE`, and any request that carries an `Idempotency-Key` header; a plain
  `POST` or `PATCH` is sent once;
- waiting 100, 250, 500, 1000, 2500 ms, then 5000 ms for every later retry,
  each ±10 % at random (the jitter), 10 attempts at most, 30 s in all;
- waiting what the server's `Retry-After` asks (seconds or an HTTP date)
  instead, up to 30 s; a server that asks for more gets no retry;
- within a budget: each request earns 0.1 retry and each retry spends 1 (from
  3 to start with, 10 at most), so retries stay near 10 % of the requests
  however hard the upstream fails, and a fleet of clients does not multiply
  an outage's load by ten.

When the retries run out it returns the last answer (or raises the last
transport error).

Run it (with recipe-api at `TARGET`): it sends one request and prints each
wait and the final status, one line each.

    python examples/resilience/retry_client.py GET /recipes/42

Environment:

- `TARGET`: base URL of the upstream (default `http://127.0.0.1:4000`).

A bad `TARGET` stops it with exit code 2 and one line; so do bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime

import httpx
import stamina
from pydantic import HttpUrl, ValidationError
from pydantic_settings import BaseSettings

# --8<-- [start:policy]
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
SCHEDULE = (0.1, 0.25, 0.5, 1.0, 2.5)  # seconds; then TAIL for every later retry
TAIL = 5.0
JITTER = 0.1  # each wait is its value ±10 %
ATTEMPTS = 10
DEADLINE = 30.0  # seconds for all attempts of one request
MAX_RETRY_AFTER = 30.0


def waits(rng: random.Random) -> Iterator[float]:
    """The backoff before each retry: the schedule, then the tail, all jittered."""
    step = 0
    while True:
        base = SCHEDULE[step] if step < len(SCHEDULE) else TAIL
        yield base * rng.uniform(1 - JITTER, 1 + JITTER)
        step += 1


def may_retry(request: httpx.Request) -> bool:
    """Repeating it cannot do twice what was meant once."""
    return request.method in IDEMPOTENT or "idempotency-key" in request.headers


# --8<-- [end:policy]


# --8<-- [start:budget]
class RetryBudget:
    """A token bucket: one retry per `per` requests, after a `reserve` of retries.

    Counted in whole credits: a request earns 1, a retry costs `per`.
    """

    def __init__(self, per: int = 10, reserve: int = 3, most: int = 10) -> None:
        self.per = per
        self.credits = reserve * per
        self.limit = most * per  # what a long quiet spell can save up

    def deposit(self) -> None:
        self.credits = min(self.limit, self.credits + 1)

    def withdraw(self) -> bool:
        if self.credits < self.per:
            return False
        self.credits -= self.per
        return True


# --8<-- [end:budget]


# --8<-- [start:retry_after]
def retry_after(response: httpx.Response, now: Callable[[], float]) -> float | None:
    """Seconds the server asks us to wait (`Retry-After: 2` or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: fall back to our own schedule
    return max(0.0, when.timestamp() - now())


# --8<-- [end:retry_after]


class RetryableStatus(Exception):
    """An answer worth another try (503 and friends), carried through stamina."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code} from {response.request.url}")
        self.response = response


class RetryingClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        budget: RetryBudget | None = None,
        rng: random.Random | None = None,
        now: Callable[[], float] = time.time,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.http = http
        self.budget = budget or RetryBudget()
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not secrets)  # nosec B311
        self.now = now  # for Retry-After dates
        self.on_wait = on_wait or (lambda seconds: None)

    # --8<-- [start:client]
    async def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        request = self.http.build_request(method, url, **kwargs)
        self.budget.deposit()
        backoff = waits(self.rng)
        failures = 0

        def retry_or_not(error: Exception) -> bool | float:
            # stamina calls this with each failure, the last one too: False
            # stops, a float is the wait before the next attempt.
            nonlocal failures
            failures += 1
            if failures >= ATTEMPTS or not may_retry(request):
                return False  # no retry follows: nothing to wait or pay for
            if isinstance(error, RetryableStatus):
                asked = retry_after(error.response, self.now)
            elif isinstance(error, httpx.TransportError):
                asked = None
            else:
                return False  # a bug, not a flaky network: never retried
            wait = next(backoff)
            if asked is not None:
                if asked > MAX_RETRY_AFTER:
                    return False
                wait = asked
            if not self.budget.withdraw():
                return False
            self.on_wait(wait)
            return wait

        # --8<-- [end:client]
        # --8<-- [start:attempts]
        try:
            async for attempt in stamina.retry_context(
                on=retry_or_not, attempts=ATTEMPTS, timeout=DEADLINE
            ):
                with attempt:
                    response = await self.http.send(request)
                    if response.status_code in RETRY_STATUSES:
                        raise RetryableStatus(response)
                    return response
        except RetryableStatus as last:
            return last.response  # out of retries: the caller sees the last answer
        raise AssertionError("unreachable")
        # --8<-- [end:attempts]


class Settings(BaseSettings):
    target: HttpUrl = HttpUrl("http://127.0.0.1:4000")


def load_settings() -> Settings:
    """The settings, or exit code 2 with one line per bad variable and no traceback."""
    try:
        return Settings()
    except ValidationError as error:
        for problem in error.errors():
            name = str(problem["loc"][0]).upper()
            print(f"configuration error: {name}: {problem['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def print_retry(details: stamina.instrumentation.RetryDetails) -> None:
    """stamina's instrumentation hook: called before each wait (the default ones log)."""
    print(f"retry {details.retry_num} in {details.wait_for:.3f} s: {details.caused_by}")


async def main() -> None:
    parser = argparse.ArgumentParser(description="Send one request with retries.")
    parser.add_argument("method", type=str.upper)
    parser.add_argument("path")
    parser.add_argument("--idempotency-key", help="makes a POST or PATCH retryable")
    args = parser.parse_args()
    settings = load_settings()
    stamina.instrumentation.set_on_retry_hooks([print_retry])
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    async with httpx.AsyncClient(base_url=str(settings.target), timeout=5) as http:
        try:
            response = await RetryingClient(http).request(args.method, args.path, headers=headers)
        except httpx.TransportError as error:
            print(f"{args.method} {args.path}: {type(error).__name__}")
            raise SystemExit(1) from None
    print(f"{args.method} {args.path}: {response.status_code}")


if __name__ == "__main__":
    asyncio.run(main())
