"""A retry storm against a struggling upstream, and what jitter and a budget do to it.

Everything runs in this one process, over real loopback sockets:

- a struggling upstream: an HTTP server that works on `--capacity` requests at a
  time (`--work` seconds each) and answers 503 at once to any request above that
  (load shedding). At `--stall-at` seconds it hangs for `--stall` seconds, holding
  every request that arrives, then restarts: all the held requests get their 503
  at the same instant, the way a hung process killed by its watchdog drops them;
- a fleet of `--instances` consumers, each with its own `httpx.AsyncClient` and
  retry policy, sending `GET /recipes/42` at `--rate` requests a second in all,
  for `--seconds` seconds; then it waits for the last retries to end.

Each retry policy named on the command line (all four by default) gets one run:

- `fixed`: what one writes first: ten attempts, 100 ms apart, no jitter, no budget;
- `backoff`: retry_client.py's schedule (100 ms ... 5 s) without jitter or budget;
- `jitter`: the schedule with its ±10 % jitter, no budget;
- `budget`: retry_client.py's `RetryingClient` as it is: jitter and a retry budget
  (one per consumer instance).

It prints, per policy: attempts per request, the busiest 100 ms at the upstream
against the normal load, the share of requests that got a 200, and how long after
the restart the fleet's last request ended.

Run it (about 30 s: the last retries of the slow policies come 24 s after the first try):

    python examples/resilience/retry_storm.py

Environment: none. Options: `--rate`, `--seconds`, `--instances`, `--capacity`,
`--work`, `--stall-at`, `--stall`, `--seed`, and the policies to run.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import stamina
from retry_client import RETRY_STATUSES, RetryBudget, RetryingClient  # examples/resilience/

BUCKET = 0.1  # seconds: arrivals are counted per 100 ms


# --8<-- [start:upstream]
@dataclass
class StrugglingUpstream:
    """Works on `capacity` requests at a time; sheds the rest with a 503 at once."""

    capacity: int
    work: float  # seconds per request
    busy: int = 0
    stalled: asyncio.Event | None = None  # set when the stall ends
    arrivals: list[float] = field(default_factory=list)  # when each request arrived
    shed: list[float] = field(default_factory=list)  # when a 503 for overload left

    async def answer(self) -> int:
        self.arrivals.append(time.monotonic())
        if self.stalled is not None:  # hung: hold it, then drop it with the others
            await self.stalled.wait()
            return 503
        if self.busy >= self.capacity:
            self.shed.append(time.monotonic())
            return 503
        self.busy += 1
        try:
            await asyncio.sleep(self.work)  # the work this request costs
            return 200
        finally:
            self.busy -= 1

    def stall(self) -> None:
        self.stalled = asyncio.Event()

    def restart(self) -> None:
        """Every request held during the stall gets its 503 at the same instant."""
        assert self.stalled is not None  # nosec B101  # narrows the type: set by the stall
        self.stalled.set()
        self.stalled = None


# --8<-- [end:upstream]


class Server:
    """A minimal HTTP/1.1 server for the upstream: keep-alive, GET only, loopback."""

    def __init__(self, upstream: StrugglingUpstream) -> None:
        self.upstream = upstream
        self.handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.connection, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # nosec B101  # narrows the type
        self.handlers.add(task)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                status = await self.upstream.answer()
                body = b'{"id": 42}' if status == 200 else b'{"error": "overloaded"}'
                reason = b"OK" if status == 200 else b"Service Unavailable"
                writer.write(
                    b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (status, reason, len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed its connection
        finally:
            writer.close()
            self.handlers.discard(task)

    async def stop(self) -> None:
        """Once the clients have closed their connections: every handler ends by itself."""
        self.server.close()
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=5)
        await self.server.wait_closed()


# --8<-- [start:policies]
Send = Callable[[str], Awaitable[httpx.Response]]


def fixed_interval(http: httpx.AsyncClient, on_wait: Callable[[float], None]) -> Send:
    """The retry loop one writes first: same wait every time, for every client."""

    async def send(url: str) -> httpx.Response:
        for _ in range(9):
            response = await http.get(url)
            if response.status_code not in RETRY_STATUSES:
                return response
            on_wait(0.1)
            await asyncio.sleep(0.1)
        return await http.get(url)

    return send


class NoJitter(random.Random):
    """Draws the middle of the jitter's interval: every wait is the schedule's own."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


def unlimited() -> RetryBudget:
    return RetryBudget(reserve=10**9, most=10**9)


def policy(
    name: str, http: httpx.AsyncClient, rng: random.Random, on_wait: Callable[[float], None]
) -> Send:
    if name == "fixed":
        return fixed_interval(http, on_wait)
    client = {
        "backoff": lambda: RetryingClient(http, unlimited(), NoJitter(), on_wait=on_wait),
        "jitter": lambda: RetryingClient(http, unlimited(), rng, on_wait=on_wait),
        "budget": lambda: RetryingClient(http, RetryBudget(), rng, on_wait=on_wait),
    }[name]()
    return lambda url: client.request("GET", url)


# --8<-- [end:policies]
POLICIES = ("fixed", "backoff", "jitter", "budget")


@dataclass
class Storm:
    policy: str
    requests: int
    attempts: int
    statuses: Counter[str]
    peak: int  # arrivals in the busiest 100 ms
    normal: float  # arrivals per 100 ms at the steady rate
    shed_after_restart: int  # 503s for overload from the restart on
    drained: float  # seconds from the restart to the last request's end
    arrivals: list[float]  # seconds from the restart (negative: before it)


async def storm(
    name: str,
    *,
    rate: float = 100,
    seconds: float = 6,
    instances: int = 4,
    capacity: int = 10,
    work: float = 0.05,
    stall_at: float = 1.0,
    stall: float = 1.0,
    seed: int = 1,
) -> Storm:
    upstream = StrugglingUpstream(capacity, work)
    server = Server(upstream)
    url = await server.start() + "/recipes/42"
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    https = [httpx.AsyncClient(timeout=60, limits=limits) for _ in range(instances)]
    rng = random.Random(seed)  # noqa: S311 (jitter, not secrets)  # nosec B311
    fleet = [policy(name, http, rng, lambda seconds: None) for http in https]
    statuses: Counter[str] = Counter()
    ended: list[float] = []

    async def one(send: Send) -> None:
        try:
            statuses[str((await send(url)).status_code)] += 1
        except httpx.HTTPError as error:
            statuses[type(error).__name__] += 1
        ended.append(time.monotonic())

    async def restart_later() -> None:
        await asyncio.sleep(stall_at)
        upstream.stall()
        await asyncio.sleep(stall)
        upstream.restart()

    started = time.monotonic()
    outage = asyncio.create_task(restart_later())
    requests = []
    for n in range(int(rate * seconds)):  # open loop: users arrive whatever happens
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        requests.append(asyncio.create_task(one(fleet[n % instances])))
    await asyncio.gather(outage, *requests)
    for http in https:
        await http.aclose()
    await server.stop()

    restarted = started + stall_at + stall
    buckets = Counter(int((t - started) / BUCKET) for t in upstream.arrivals)
    return Storm(
        policy=name,
        requests=len(requests),
        attempts=len(upstream.arrivals),
        statuses=statuses,
        peak=max(buckets.values()),
        normal=rate * BUCKET,
        shed_after_restart=sum(t >= restarted for t in upstream.shed),
        drained=max(ended) - restarted,
        arrivals=[t - restarted for t in upstream.arrivals],
    )


def report(result: Storm) -> str:
    ok = result.statuses["200"] / result.requests
    return (
        f"{result.policy:8} {result.attempts / result.requests:5.2f} attempts/request, "
        f"busiest 100 ms {result.peak} ({result.peak / result.normal:.1f}x normal), "
        f"{100 * ok:5.1f} % ok, {result.shed_after_restart} shed after the restart, "
        f"drained at +{result.drained:.1f} s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description="A retry storm, policy by policy.")
    parser.add_argument("policies", nargs="*", choices=[[], *POLICIES], default=[])
    parser.add_argument("--rate", type=float, default=100, help="requests a second in all")
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--instances", type=int, default=4)
    parser.add_argument("--capacity", type=int, default=10, help="requests worked at once")
    parser.add_argument("--work", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--stall-at", type=float, default=1.0)
    parser.add_argument("--stall", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    stamina.instrumentation.set_on_retry_hooks([])  # stamina logs each retry by default
    options = vars(args)
    for name in options.pop("policies") or POLICIES:
        print(report(await storm(name, **options)), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
