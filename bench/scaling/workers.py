"""One process against two workers: GET /fibonacci/25 under autocannon -c 10.

Three servers, one after the other, each started with its page's run line:
fibonacci_service.py as one process (WORKERS=1), the same file under Sanic's
worker manager (WORKERS=2), and the hand-written cluster (WORKERS=2). Nothing
is pinned: the servers may use every CPU, and autocannon shares them, which
costs little here because each request is about 10 ms of CPU in the server
and a few microseconds in autocannon. The CPU autocannon used is reported.
Writes snippets/scaling/bench_workers.md.
"""

from __future__ import annotations

import os
import time

from bench import load
from bench.common import duration, markdown_table, stamp, write_results

RESULTS = "scaling/bench_workers.md"
COMMAND = "./nox -s bench -- workers"
PATH = "/fibonacci/25"
DEFAULT_SECONDS = 8  # per server: 3 x (2 s warm-up + 8 s) + start-up, well under a minute
SERVERS = [
    ("one process", "scaling/fibonacci_service.py", {"WORKERS": "1"}),
    ("Sanic workers, `WORKERS=2`", "scaling/fibonacci_service.py", {"WORKERS": "2"}),
    ("hand-written cluster, `WORKERS=2`", "scaling/fibonacci_cluster.py", {"WORKERS": "2"}),
]


def measure(example: str, env: dict[str, str], seconds: int, warmup: int) -> dict:
    """One server alone: started, warmed up, measured (its whole process tree), stopped."""
    with load.Servers("workers") as servers:
        server = servers.example(example, env=env)
        time.sleep(0.5)  # every worker up, not only the first to answer /health
        url = server.url + PATH
        load.autocannon(url, warmup)
        return load.autocannon(url, seconds, watch={"server": server.pid})


def main() -> None:
    load.autocannon_path()
    seconds = max(1, round(duration(DEFAULT_SECONDS)))
    warmup = min(2, seconds)
    rows, rates = [], []
    for name, example, env in SERVERS:
        run = measure(example, env, seconds, warmup)
        rate = run["requests"]["average"]
        rates.append(rate)
        failures = load.failures(run)
        print(f"{name}: {rate:.0f} req/s, {failures} errors", flush=True)
        rows.append(
            [
                name,
                f"{rate:,.0f}",
                f"{rate / rates[0]:.2f}",
                run["latency"]["p50"],
                run["latency"]["p99"],
                failures,
                f"{run['server_cpu']:.0%}",
                f"{run['client_cpu']:.0%}",
            ]
        )
    header = ["server", "req/s", "vs one process", "p50 ms", "p99 ms", "errors"]
    header += ["server CPU", "autocannon CPU"]
    body = "\n\n".join(
        [
            markdown_table(header, rows),
            f"`GET {PATH}`, autocannon `-c {load.CONNECTIONS} -d {seconds}` after a {warmup} s "
            f"warm-up, one server at a time, nothing pinned to CPUs ({os.cpu_count()} on this "
            "machine). CPU is the share of one core used during the run: the server's summed "
            "over its processes (manager included), autocannon's including its start-up. "
            "Other work on the machine during the run lowers the figures for two workers most.",
        ]
    )
    stamp_line = stamp(["sanic", "uvloop"], {"autocannon": load.AUTOCANNON_VERSION})
    write_results(RESULTS, body, stamp_line, COMMAND)
