"""JSON/HTTP, GraphQL and gRPC compared: bytes on the wire, throughput, latency.

Starts the three producers of the protocols chapter (one process each, pinned
to one CPU when taskset exists), runs examples/protocols/wire_bytes.py against
them, then loads each for the same time with 10 concurrent connections or
callers: autocannon for the two HTTP ones, bench/protocols/grpc_load.py for
gRPC (ghz is not available here). Writes snippets/protocols/bench_protocols.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.common import ROOT, duration, markdown_table, stamp, write_results
from bench.why_distributed.recipe_api_vs_node import (
    AUTOCANNON,
    children_cpu_seconds,
    cpu_seconds,
    ensure_tools,
    pick_cpus,
    wait_for_quiet,
)
from tests.harness import RunningExample, start_example

RESULTS = "protocols/bench_protocols.md"
COMMAND = "./nox -s bench -- protocols_compared"
CONNECTIONS = 10
GRAPHQL_BODY = json.dumps(
    {
        "query": "query Recipe($id: ID!) { pid recipe(id: $id) "
        "{ id name steps ingredients { id name quantity } } }",
        "variables": {"id": "42"},
    }
)


def codegen() -> None:
    script = ROOT / "snippets/protocols/grpc_codegen.sh"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["sh", str(script)], cwd=ROOT, env=env, check=True)


def load(name: str, server: RunningExample, argv: list[str], seconds: int) -> dict:
    wait_for_quiet(10)
    server_before, client_before = cpu_seconds(server.pid), children_cpu_seconds()
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    server_after, client_after = cpu_seconds(server.pid), children_cpu_seconds()
    data = json.loads(result.stdout)
    if "requests" in data and isinstance(data["requests"], dict):  # autocannon's shape
        data = {
            "rps": data["requests"]["average"],
            "p50": data["latency"]["p50"],
            "p99": data["latency"]["p99"],
            "errors": data["errors"] + data["timeouts"] + data["non2xx"],
        }
    server_share = None
    if server_before is not None and server_after is not None:
        server_share = (server_after - server_before) / seconds
    data["server_cpu"] = server_share
    data["client_cpu"] = (client_after - client_before) / seconds
    print(f"{name}: {data}", flush=True)
    return data


def main() -> None:
    ensure_tools()
    codegen()
    seconds = max(1, round(duration(5)))
    server_pin, load_pin, pinning = pick_cpus()
    pinning = pinning.replace("autocannon", "the load tester")
    logs = Path(ROOT / ".nox" / "bench-logs")
    logs.mkdir(parents=True, exist_ok=True)
    pinned = {"HOST": "127.0.0.1"}
    started = []
    try:
        http = start_example("protocols/http_producer.py", logs, env=pinned)
        graphql = start_example("protocols/graphql_producer.py", logs, env=pinned)
        grpc = start_example("protocols/grpc_producer.py", logs, env=pinned, ready="port")
        started = [http, graphql, grpc]
        if server_pin:
            for server in started:
                subprocess.run(
                    [*server_pin[:2], "-p", server_pin[2], str(server.pid)],
                    check=True,
                    capture_output=True,
                )
        wire = subprocess.run(
            [sys.executable, "examples/protocols/wire_bytes.py"],
            cwd=ROOT,
            env={
                **os.environ,
                "HTTP_TARGET": http.url,
                "GRAPHQL_TARGET": graphql.url,
                "GRPC_TARGET": f"127.0.0.1:{grpc.port}",
            },
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cannon = [*load_pin, str(AUTOCANNON), "-c", str(CONNECTIONS), "-d", str(seconds), "-j"]
        runs = {
            "JSON over HTTP/1.1 (autocannon)": load(
                "json", http, [*cannon, f"{http.url}/recipes/42"], seconds
            ),
            "GraphQL over HTTP/1.1 (autocannon)": load(
                "graphql",
                graphql,
                [
                    *cannon,
                    "-m",
                    "POST",
                    "-H",
                    "content-type=application/json",
                    "-b",
                    GRAPHQL_BODY,
                    f"{graphql.url}/graphql",
                ],
                seconds,
            ),
            "gRPC over HTTP/2 (grpc_load.py)": load(
                "grpc",
                grpc,
                [
                    *load_pin,
                    sys.executable,
                    "bench/protocols/grpc_load.py",
                    f"127.0.0.1:{grpc.port}",
                    str(CONNECTIONS),
                    str(seconds),
                ],
                seconds,
            ),
        }
    finally:
        codes = [server.stop() for server in started]
    if any(codes):
        raise RuntimeError(f"a producer did not stop cleanly: exit codes {codes}")

    def share(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0%}"

    rows = [
        [
            name,
            f"{run['rps']:,.0f}",
            f"{run['p50']:.1f}",
            f"{run['p99']:.1f}",
            run["errors"],
            share(run["server_cpu"]),
            share(run["client_cpu"]),
        ]
        for name, run in runs.items()
    ]
    body = "\n\n".join(
        [
            "**Bytes on the wire** for one `recipe 42` call (`wire_bytes.py`, 5 calls over "
            "one connection):",
            wire.strip(),
            f"**Throughput and latency**, {CONNECTIONS} concurrent connections or callers for "
            f"{seconds} s, one producer process each, {pinning}:",
            markdown_table(
                [
                    "protocol (load tester)",
                    "req/s",
                    "p50 ms",
                    "p99 ms",
                    "errors",
                    "server CPU",
                    "load tester CPU",
                ],
                rows,
            ),
        ]
    )
    stamp_line = stamp(
        ["sanic", "ariadne", "graphql-core", "grpcio", "protobuf", "httpx"],
        {"node": ["node", "--version"]},
    )
    write_results(RESULTS, body, stamp_line, COMMAND)
