"""recipe-api (Sanic, one process) against an equivalent Node.js `http` server.

Both servers answer `GET /recipes/42` with the same JSON shape. They run side by
side on free loopback ports, each pinned to the same CPU, while autocannon
(`-c 10`) runs on another CPU. Measurements alternate Python, Node, Python,
Node... and the median of the rounds is reported, so background noise hits
both. Writes snippets/why_distributed/bench_recipe_api.md.
"""

from __future__ import annotations

import statistics

from kit import sysdeps

from bench import load
from bench.common import duration, markdown_table, stamp, write_results

RECIPE_API = "why_distributed/recipe_api.py"
NODE_SERVER = "bench/why_distributed/node_server.js"  # relative to the root, where it starts
RESULTS = "why_distributed/bench_recipe_api.md"
COMMAND = "./nox -s bench -- recipe_api_vs_node"
PATH = "/recipes/42"
ROUNDS = 5  # Python, Node, Python, Node...; the median of each server's rounds is reported
DEFAULT_SECONDS = 4  # per measurement: 5 rounds x 3 servers x 4 s + warm-up + start < 80 s
PYTHON_SERVERS = [  # name in the table, environment
    ("Python: recipe-api (Sanic)", {}),
    ("Python: recipe-api with `ACCESS_LOG=1`", {"ACCESS_LOG": "1"}),
]


def report(targets: list[load.Target], seconds: int, warmup: int, cpus: load.Cpus) -> str:
    rows = []
    for target in targets:
        rows.append(
            [
                target.name,
                f"{target.requests_per_second():,.0f}",
                load.milliseconds(target.median("latency", "p50")),
                load.milliseconds(target.median("latency", "p99")),
                sum(load.failures(run) for run in target.runs),
                load.percent(load.median_known([run["server_cpu"] for run in target.runs])),
                load.percent(statistics.median(run["client_cpu"] for run in target.runs)),
            ]
        )
    python, node = targets[0], targets[-1]
    ratio = python.requests_per_second() / node.requests_per_second()
    print(f"Python/Node throughput: {ratio:.2f}", flush=True)
    starved = sum(1 for target in targets for run in target.runs if load.crowded_out(run))
    parts = [
        markdown_table(
            ["server", "req/s", "p50 ms", "p99 ms", "errors", "server CPU", "autocannon CPU"],
            rows,
        ),
        f"recipe-api/Node throughput ratio: **{ratio:.2f}**",
        f"`GET {PATH}`, autocannon `-c {load.CONNECTIONS} -d {seconds}`, median of "
        f"{ROUNDS} alternating rounds after a {warmup} s warm-up; one process per server, "
        f"{cpus.sentence}. autocannon records latency in whole milliseconds; "
        "errors counts socket errors, timeouts and non-2xx answers over all rounds. "
        "CPU is the share of one core each process used during a run (median): a server "
        "well under 100% was either not the bottleneck or not given its core.",
    ]
    if starved:
        note = (
            f"In {starved} of {ROUNDS * len(targets)} runs neither the server nor autocannon "
            f"got {load.STARVED_BELOW:.0%} of its CPU: other work on the machine competed "
            "with them."
        )
        print(f"note: {note} Rerun on a quiet machine for steadier figures.", flush=True)
        parts.append(note)
    return "\n\n".join(parts)


def main() -> None:
    load.autocannon_path()
    node = sysdeps.require("node")["node"]
    seconds = max(1, round(duration(DEFAULT_SECONDS)))
    warmup = min(2, seconds)
    cpus = load.pick_cpus()
    with load.Servers("recipe-api") as servers:
        targets = []
        for name, env in PYTHON_SERVERS:
            python = servers.example(RECIPE_API, env=env, cpus=cpus.server)
            targets.append(load.Target(name, python.url + PATH, {"server": python.pid}))
        twin = servers.program("node", [node, NODE_SERVER], cpus=cpus.server)
        targets.append(load.Target("Node.js: http", twin.url + PATH, {"server": twin.pid}))
        load.alternate(targets, seconds=seconds, warmup=warmup, rounds=ROUNDS, cpus=cpus.load)
    stamp_line = stamp(
        ["sanic", "orjson", "uvloop"],
        {"node": ["node", "--version"], "autocannon": load.AUTOCANNON_VERSION},
    )
    write_results(RESULTS, report(targets, seconds, warmup, cpus), stamp_line, COMMAND)
