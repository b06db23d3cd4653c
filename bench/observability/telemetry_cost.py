"""What observability costs: recipe-api throughput with each signal on, and all three.

`examples/observability/observed_recipe_api.py` is started once per setup, with
`TELEMETRY` set to `none`, `logs`, `metrics`, `traces` and `logs,metrics,traces`
(traces with every request kept, 1 in 10, and none), and autocannon (`-c 10`)
asks each for `GET /recipes/42`, alternating round by round. Two more setups
(bench/observability/trace_parts.py) take a sampled-out trace apart: reading
the trace headers alone, then also a span through the sampler. Where the signals
go is real, as in production:

- logs: one JSON line per request, written to stdout in batches (stdout goes
  to a file, as a container runtime would keep it), or, in one setup, sent as
  one UDP datagram per line to a socket this script drains (a log collector);
- metrics: a scraper thread here reads `/metrics` every second (what Prometheus
  does);
- traces: spans are batched and posted over OTLP/HTTP (protobuf) to a receiver
  in this process, which decodes them and answers 200 like a collector.

Every server is pinned to one CPU; autocannon, the scraper and the receivers
share the other. Writes snippets/observability/bench_telemetry_cost.md.
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from kit.process import LOOPBACK
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bench import load
from bench.common import ROOT, duration, markdown_table, stamp, write_results

SERVICE = "observability/observed_recipe_api.py"
NOOP = "bench/observability/noop_middleware.py"  # relative to the root, where it starts
PARTS = "bench/observability/trace_parts.py"
EXAMPLES = ROOT / "examples" / "observability"  # what it imports
PATH = "/recipes/42"
RESULTS = "observability/bench_telemetry_cost.md"
COMMAND = "./nox -s bench -- telemetry_cost"
ALL = "logs,metrics,traces"
SETUPS = [  # key, name in the table, TELEMETRY, TRACE_SAMPLE, lines over UDP
    ("none", "no telemetry", "none", "1", False),
    ("noop", "no telemetry, a no-op middleware pair", "none", "1", False),
    ("logs", "logs (stdout)", "logs", "1", False),
    ("logs-udp", "logs (a UDP datagram per line)", "logs", "1", True),
    ("metrics", "metrics", "metrics", "1", False),
    ("traces", "traces, every request", "traces", "1", False),
    ("traces-10", "traces, 1 in 10 sampled", "traces", "0.1", False),
    ("traces-0", "traces, none sampled", "traces", "0", False),
    ("part-extract", "sampled out, parts: trace headers read", "none", "0", False),
    ("part-span", "sampled out, parts: headers + a span via the sampler", "none", "0", False),
    ("all", "all three, every request traced", ALL, "1", False),
    ("all-10", "all three, 1 in 10 traced", ALL, "0.1", False),
]
DEFAULT_SECONDS = 4  # 3 rounds x 9 setups x 4 s + warm-up + start-up: under 3 minutes
ROUNDS = 3
TARGET_COST = 0.15


class SpanSink(BaseHTTPRequestHandler):
    """Accepts POST /v1/traces like an OTLP collector (200) and counts the spans."""

    spans = 0
    lock = threading.Lock()
    answer = ExportTraceServiceResponse().SerializeToString()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request = ExportTraceServiceRequest.FromString(body)
        count = sum(
            len(scope.spans)
            for resource in request.resource_spans
            for scope in resource.scope_spans
        )
        with SpanSink.lock:
            SpanSink.spans += count
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


def drain_udp(sock: socket.socket, received: list[int], stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            sock.recv(65536)
            received[0] += 1
        except TimeoutError:
            continue
        except OSError:  # closed at the end of the benchmark
            return


def scrape(urls: list[str], stop: threading.Event, scrapes: list[int]) -> None:
    """Read every `/metrics` once a second, as Prometheus would."""
    with httpx.Client(timeout=2) as client:
        while not stop.wait(1.0):
            for url in urls:
                try:
                    if client.get(url).status_code == 200:
                        scrapes[0] += 1
                except httpx.TransportError:
                    pass


def start(
    servers: load.Servers,
    setup: tuple[str, str, str, str, bool],
    collectors: dict[str, str],
    cpus: load.Cpus,
) -> load.Target:
    """One setup's server, pinned to the servers' CPU; the target autocannon loads."""
    key, name, telemetry, sample, udp = setup
    env = {
        "OTLP_TRACES_URL": collectors["traces"],
        "TELEMETRY": telemetry,
        "TRACE_SAMPLE": sample,
        **({"LOG_UDP": collectors["logs"]} if udp else {}),
    }
    if key == "noop" or key.startswith("part-"):  # bench wrappers around the example
        pythonpath = os.pathsep.join(filter(None, [str(EXAMPLES), os.environ.get("PYTHONPATH")]))
        wrapper, part = (NOOP, {}) if key == "noop" else (PARTS, {"TRACE_PART": key[5:]})
        server = servers.program(
            key,
            [sys.executable, wrapper],
            env={**env, **part, "PYTHONPATH": pythonpath},
            ready="/health",
            cpus=cpus.server,
        )
    else:
        server = servers.example(SERVICE, env=env, cpus=cpus.server)
    return load.Target(name, server.url + PATH, {"server": server.pid}, key=key)


def report(
    targets: list[load.Target], seconds: int, warmup: int, sent: dict[str, int], cpus: load.Cpus
) -> str:
    base = targets[0].requests_per_second()
    rows = []
    for target in targets:
        rps = target.requests_per_second()
        rows.append(
            [
                target.name,
                f"{rps:,.0f}",
                "baseline" if target is targets[0] else f"{1 - rps / base:.0%}",
                "" if target is targets[0] else f"{1e6 / rps - 1e6 / base:.0f}",
                load.milliseconds(target.median("latency", "p50")),
                load.milliseconds(target.median("latency", "p99")),
                sum(load.failures(run) for run in target.runs),
                load.percent(statistics.median(run["server_cpu"] or 0 for run in target.runs)),
            ]
        )
    by_key = {target.key: target for target in targets}
    every = 1 - by_key["all"].requests_per_second() / base
    sampled = 1 - by_key["all-10"].requests_per_second() / base
    print(f"all three cost {every:.0%}, with 1 in 10 traced {sampled:.0%}", flush=True)
    starved = sum(1 for target in targets for run in target.runs if load.crowded_out(run))
    parts = [
        markdown_table(
            [
                "telemetry",
                "req/s",
                "cost",
                "µs added per request",
                "p50 ms (autocannon)",
                "p99 ms (autocannon)",
                "errors",
                "server CPU",
            ],
            rows,
        ),
        f"All three together cost **{every:.0%}** of throughput with every request traced, "
        f"**{sampled:.0%}** with 1 request in 10 traced; the budget was {TARGET_COST:.0%}. "
        "Cost is the throughput lost against no telemetry; µs added per request is the "
        "CPU time each request took beyond the baseline's (1/throughput, one busy core). "
        "Latency percentiles are autocannon's, one definition for the whole table: from its "
        "histogram of whole milliseconds (<1: under one millisecond), each the median over "
        "the rounds of that run's percentile.",
        f"`GET {PATH}`, autocannon `-c {load.CONNECTIONS} -d {seconds}`, median of "
        f"{ROUNDS} alternating rounds after a {warmup} s warm-up; {cpus.sentence}. "
        f"Collected during the runs: {sent['logs']:,} log datagrams, "
        f"{sent['scrapes']:,} scrapes of `/metrics`, {sent['spans']:,} spans.",
    ]
    if starved:
        parts.append(
            f"In {starved} of {ROUNDS * len(targets)} runs neither the server nor autocannon "
            "had its CPU to itself: other work on the machine competed with them."
        )
    return "\n\n".join(parts)


def main() -> None:
    load.autocannon_path()
    seconds = max(1, round(duration(DEFAULT_SECONDS)))
    warmup = min(2, seconds)
    cpus = load.pick_cpus()
    logs = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    logs.bind((LOOPBACK, 0))
    otlp = ThreadingHTTPServer((LOOPBACK, 0), SpanSink)
    collectors = {
        "logs": f"{LOOPBACK}:{logs.getsockname()[1]}",
        "traces": f"http://{LOOPBACK}:{otlp.server_port}/v1/traces",
    }
    stop = threading.Event()
    received, scrapes = [0], [0]
    threading.Thread(target=drain_udp, args=(logs, received, stop), daemon=True).start()
    threading.Thread(target=otlp.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        with load.Servers("telemetry") as servers:
            targets = [start(servers, setup, collectors, cpus) for setup in SETUPS]
            metrics = [
                target.url.removesuffix(PATH) + "/metrics"
                for target, setup in zip(targets, SETUPS, strict=True)
                if "metrics" in setup[2]
            ]
            threading.Thread(target=scrape, args=(metrics, stop, scrapes), daemon=True).start()
            load.alternate(targets, seconds=seconds, warmup=warmup, rounds=ROUNDS, cpus=cpus.load)
    finally:
        stop.set()
        otlp.shutdown()
        logs.close()
    print(f"measured in {time.monotonic() - started:.0f} s", flush=True)
    sent = {"logs": received[0], "scrapes": scrapes[0], "spans": SpanSink.spans}
    if not all(sent.values()):
        raise RuntimeError(f"a signal never reached its collector: {sent}")
    write_results(
        RESULTS,
        report(targets, seconds, warmup, sent, cpus),
        stamp(
            [
                "sanic",
                "structlog",
                "prometheus-client",
                "opentelemetry-sdk",
                "opentelemetry-exporter-otlp-proto-http",
            ],
            {"autocannon": load.AUTOCANNON_VERSION},
        ),
        COMMAND,
    )


if __name__ == "__main__":
    main()
