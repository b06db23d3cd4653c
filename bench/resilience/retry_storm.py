"""A retry storm, policy by policy: examples/resilience/retry_storm.py at full length.

The example's own `storm()` (imported from examples/resilience/), one run per
policy, over real loopback sockets: a fleet of 4 consumers sending GET at 100
requests a second in all to an upstream that works on 10 requests at a time
(50 ms each, so 200 a second at most) and sheds the rest with a 503; 1 s in, it
hangs for 1 s, then drops every request it held with a 503 at the same instant.
Arrivals per 100 ms are counted at the upstream, by wall clock.

Writes snippets/resilience/retry_storm.md.
"""

from __future__ import annotations

import asyncio
import sys

import stamina
from kit.process import ROOT

from bench.common import duration, markdown_table, stamp, write_results

RESULTS = "resilience/retry_storm.md"
COMMAND = "./nox -s bench -- retry_storm"
NAMES = {
    "fixed": "every 100 ms, no jitter, no budget",
    "backoff": "the schedule, no jitter, no budget",
    "jitter": "the schedule ±10 %, no budget",
    "budget": "the schedule ±10 % and a budget (`RetryingClient`)",
}


def main() -> None:
    sys.path.insert(0, str(ROOT / "examples" / "resilience"))
    import retry_storm

    stamina.instrumentation.set_on_retry_hooks([])  # no log line per retry
    seconds = duration(6)
    rows = []
    for name in retry_storm.POLICIES:
        result = asyncio.run(retry_storm.storm(name, seconds=seconds))
        print(retry_storm.report(result), flush=True)
        ok = result.statuses["200"] / result.requests
        rows.append([
            NAMES[name],
            f"{result.attempts / result.requests:.2f}",
            f"{result.peak} ({result.peak / result.normal:.1f}x)",
            f"{100 * ok:.1f} %",
            f"{result.shed_after_restart:,}",
            f"{result.drained:.1f} s",
        ])  # fmt: skip
    body = markdown_table(
        [
            "retries",
            "attempts per request",
            "busiest 100 ms (x normal)",
            "got a 200",
            "503s shed after the restart",
            "last request ended after the restart",
        ],
        rows,
    ) + (
        f"\n\n{int(100 * seconds):,} requests per run, 100 a second from 4 consumer instances "
        "(each with its own client and budget); the upstream works on 10 at a time, 50 ms "
        "each, and sheds the rest with a 503; it hangs from 1 s to 2 s, then drops every "
        "request it held at once. Normal load: 10 arrivals per 100 ms."
    )
    write_results(RESULTS, body, stamp(["httpx", "stamina"]), COMMAND)
