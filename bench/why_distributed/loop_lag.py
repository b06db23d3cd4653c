"""How blocking the event loop shows up: loop lag and /health latency under load.

Starts examples/why_distributed/loop_lag_service.py with its run line (free
loopback port, every lag period printed), then for each phase (no load,
`/blocking/fib/N`, `/offloaded/fib/N`) keeps a few clients busy on that route
while a probe sends `GET /health` every 50 ms. Reports the fib answers per
second, the probe's latency and the loop lag the service itself printed.
Writes snippets/why_distributed/bench_loop_lag.md.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from dataclasses import dataclass, field

import httpx
from kit.examples import RunningExample

from bench import load
from bench.common import duration, markdown_table, stamp, write_results

EXAMPLE = "why_distributed/loop_lag_service.py"
RESULTS = "why_distributed/bench_loop_lag.md"
COMMAND = "./nox -s bench -- loop_lag"
N = 30  # fib(30): about 0.15 s of pure Python per request on a current x86 core
CLIENTS = 4
PROBE_EVERY = 0.05
DEFAULT_SECONDS = 7.0  # per phase: 3 phases + start-up stay under 30 s
LAG_LINE = re.compile(r"^loop lag: max (\d+\.\d) ms over the last (\d+\.\d) s$", re.M)


@dataclass
class Phase:
    name: str
    path: str | None  # the route under load; None for the idle phase
    answers: int = 0
    health_ms: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0


async def keep_busy(client: httpx.AsyncClient, path: str, phase: Phase, until: float) -> None:
    while time.monotonic() < until:
        response = await client.get(path)
        response.raise_for_status()
        phase.answers += 1


async def probe(client: httpx.AsyncClient, phase: Phase, until: float) -> None:
    while time.monotonic() < until:
        started = time.perf_counter()
        response = await client.get("/health")
        response.raise_for_status()
        phase.health_ms.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(PROBE_EVERY)


async def run_phase(service: RunningExample, phase: Phase, seconds: float) -> None:
    limits = httpx.Limits(max_connections=CLIENTS + 1)
    async with httpx.AsyncClient(base_url=service.url, timeout=60, limits=limits) as client:
        # Warm-up: the client's first request pays for lazy imports (about 0.1 s),
        # and the first offloaded calls start the worker processes.
        await client.get("/health")
        if phase.path:
            await asyncio.gather(*(client.get(phase.path) for _ in range(CLIENTS)))
        # Skip the lag lines printed so far, including any period the warm-up spoiled.
        await asyncio.sleep(1.0)
        seen = len(LAG_LINE.findall(service.output()))
        started = time.monotonic()
        until = started + seconds
        busy = (
            [keep_busy(client, phase.path, phase, until) for _ in range(CLIENTS)]
            if phase.path
            else []
        )
        await asyncio.gather(probe(client, phase, until), *busy)
        phase.seconds = time.monotonic() - started
    phase.lag_ms = [float(ms) for ms, _ in LAG_LINE.findall(service.output())[seen:]]


def row(phase: Phase) -> list[str]:
    rate = f"{phase.answers / phase.seconds:.1f}" if phase.path else "-"
    return [
        phase.name,
        rate,
        f"{statistics.median(phase.health_ms):.1f} ms",
        f"{max(phase.health_ms):.1f} ms",
        f"{statistics.median(phase.lag_ms):.1f} ms",
        f"{max(phase.lag_ms):.1f} ms",
    ]


def main() -> None:
    seconds = duration(DEFAULT_SECONDS)
    phases = [
        Phase("no load", None),
        Phase(f"`GET /blocking/fib/{N}`", f"/blocking/fib/{N}"),
        Phase(f"`GET /offloaded/fib/{N}`", f"/offloaded/fib/{N}"),
    ]
    # Every period printed, half a second each, so that every phase has lines.
    env = {"LAG_REPORT_MS": "0", "LAG_REPORT_EVERY": "0.5"}
    with load.Servers("loop-lag") as servers:
        service = servers.example(EXAMPLE, env=env)
        for phase in phases:
            print(f"phase {phase.name}: {seconds:.0f} s", flush=True)
            asyncio.run(run_phase(service, phase, seconds))
            print("  " + " | ".join(row(phase)), flush=True)
    header = [
        "Load",
        f"fib({N}) answers/s",
        "/health median",
        "/health worst",
        "loop lag, median period",
        "loop lag, worst period",
    ]
    body = (
        f"{CLIENTS} clients keep the route busy for {seconds:.0f} s while a probe sends "
        f"`GET /health` every {PROBE_EVERY * 1000:.0f} ms; the loop lag is what the service "
        "printed, the worst wake-up delay in each half-second period.\n\n"
        + markdown_table(header, [row(phase) for phase in phases])
    )
    write_results(RESULTS, body, stamp(packages=["sanic", "httpx"]), COMMAND)


if __name__ == "__main__":
    main()
