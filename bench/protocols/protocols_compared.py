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

from kit import grpc_stubs
from kit.examples import run_program
from kit.process import LOOPBACK

from bench import load
from bench.common import ROOT, duration, markdown_table, stamp, write_results

RESULTS = "protocols/bench_protocols.md"
COMMAND = "./nox -s bench -- protocols_compared"
PROTOS = ROOT / "examples" / "protocols"
STUBS = [PROTOS / name for name in grpc_stubs.GENERATED]
GRAPHQL_BODY = json.dumps(
    {
        "query": "query Recipe($id: ID!) { pid recipe(id: $id) "
        "{ id name steps ingredients { id name quantity } } }",
        "variables": {"id": "42"},
    }
)


def codegen() -> None:
    """The gRPC stubs, made by the page's script when missing or older than recipe.proto."""
    proto = (PROTOS / "recipe.proto").stat().st_mtime
    if not all(stub.exists() and stub.stat().st_mtime >= proto for stub in STUBS):
        grpc_stubs.generate()  # the tests' way: no process ever reads a half-written stub


def http_load(name: str, url: str, seconds: int, pid: int, cpus: load.Cpus, **how: str) -> dict:
    """autocannon against one HTTP producer, its figures in the table's terms."""
    load.wait_for_quiet(10)
    run = load.autocannon(url, seconds, cpus=cpus.load, watch={"server": pid}, **how)
    data = {
        "rps": run["requests"]["average"],
        "p50": run["latency"]["p50"],
        "p99": run["latency"]["p99"],
        "errors": load.failures(run),
        "server_cpu": run["server_cpu"],
        "client_cpu": run["client_cpu"],
    }
    print(f"{name}: {data}", flush=True)
    return data


def grpc_load(target: str, seconds: int, pid: int, cpus: load.Cpus) -> dict:
    """grpc_load.py (ghz is not available here), with the generated stubs on its path."""
    load.wait_for_quiet(10)
    argv = [*load.taskset(cpus.load), sys.executable, str(ROOT / "bench/protocols/grpc_load.py")]
    argv += [target, str(load.CONNECTIONS), str(seconds)]
    env = {**os.environ, "PYTHONPATH": str(PROTOS)}
    with load.CpuUse({"server": pid}) as cpu:
        result = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
    if result.returncode != 0:
        raise RuntimeError(f"grpc_load.py failed ({result.returncode}):\n{result.stderr}")
    data = json.loads(result.stdout)
    data["server_cpu"] = cpu.share("server", seconds)
    data["client_cpu"] = cpu.load_share()
    print(f"grpc: {data}", flush=True)
    return data


def main() -> None:
    load.autocannon_path()
    codegen()
    seconds = max(1, round(duration(5)))
    cpus = load.pick_cpus()
    pinning = cpus.sentence.replace("autocannon", "the load tester")
    with load.Servers("protocols") as servers:
        http = servers.example("protocols/http_producer.py", cpus=cpus.server)
        graphql = servers.example("protocols/graphql_producer.py", cpus=cpus.server)
        grpc = servers.example("protocols/grpc_producer.py", ready="port", cpus=cpus.server)
        grpc_target = f"{LOOPBACK}:{grpc.port}"
        wire = run_program(
            "protocols/wire_bytes.py",
            env={
                "HTTP_TARGET": http.url,
                "GRAPHQL_TARGET": graphql.url,
                "GRPC_TARGET": grpc_target,
            },
        )
        runs = {
            "JSON over HTTP/1.1 (autocannon)": http_load(
                "json", f"{http.url}/recipes/42", seconds, http.pid, cpus
            ),
            "GraphQL over HTTP/1.1 (autocannon)": http_load(
                "graphql",
                f"{graphql.url}/graphql",
                seconds,
                graphql.pid,
                cpus,
                method="POST",
                headers=["content-type=application/json"],
                body=GRAPHQL_BODY,
            ),
            "gRPC over HTTP/2 (grpc_load.py)": grpc_load(grpc_target, seconds, grpc.pid, cpus),
        }

    rows = [
        [
            name,
            f"{run['rps']:,.0f}",
            f"{run['p50']:.1f}",
            f"{run['p99']:.1f}",
            run["errors"],
            load.percent(run["server_cpu"]),
            load.percent(run["client_cpu"]),
        ]
        for name, run in runs.items()
    ]
    body = "\n\n".join(
        [
            "**Bytes on the wire** for one `recipe 42` call (`wire_bytes.py`, 5 calls over "
            "one connection):",
            wire.strip(),
            f"**Throughput and latency**, {load.CONNECTIONS} concurrent connections or callers "
            f"for {seconds} s, one producer process each, {pinning}:",
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
