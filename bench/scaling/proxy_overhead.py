"""What a reverse proxy costs: each service direct, and behind HAProxy.

Three pairs, measured with autocannon (`-c 10`), alternating round by round:

- recipe-api direct, and through `haproxy_lb.cfg` (its three server lines all
  point at the same single recipe-api process, so only the proxy differs);
- gzip in the application (`compression_producer.py`, `GET /recipes?count=10`,
  `Accept-Encoding: gzip`), and gzip in HAProxy (`haproxy_compression.cfg` in
  front of the same process, which the request asks for identity first:
  `Accept-Encoding: gzip;q=0.5, identity`, so the application answers plain
  JSON and HAProxy compresses it);
- TLS in the application (`tls_producer.py`), and TLS terminated in HAProxy
  (`haproxy_tls.cfg` in front of plain recipe-api), certificates from
  `tls_certs.py`, trusted by autocannon through `NODE_EXTRA_CA_CERTS`.

Every backend is pinned to one CPU, HAProxy and autocannon share the other:
on a 2-core machine there is no third core, and that is part of the result.
Writes snippets/scaling/bench_proxy_overhead.md.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.common import ROOT, duration, markdown_table, stamp, write_results
from bench.why_distributed.recipe_api_vs_node import (
    AUTOCANNON,
    AUTOCANNON_VERSION,
    STARVED_BELOW,
    Server,
    children_cpu_seconds,
    cpu_seconds,
    ensure_tools,
    failures,
    free_port,
    milliseconds,
    percent,
    pick_cpus,
    start,
    stop,
    wait_for_quiet,
    wait_ready,
)
from tests import sysdeps

RESULTS = "scaling/bench_proxy_overhead.md"
COMMAND = "./nox -s bench -- proxy_overhead"
CONNECTIONS = 10
ROUNDS = 3
DEFAULT_SECONDS = 3  # 3 rounds x 6 setups x 3 s + warm-up + start-up: about 80 s


@dataclass
class Setup:
    key: str
    name: str
    scheme: str
    server: Server  # whose port the client connects to
    path: str
    backend: Server  # the application process behind it
    headers: Sequence[str] = ()
    runs: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        host = "localhost" if self.scheme == "https" else "127.0.0.1"
        return f"{self.scheme}://{host}:{self.server.port}{self.path}"

    def median(self, *keys: str) -> float:
        def pick(run: dict) -> float:
            value = run
            for key in keys:
                value = value[key]
            return value

        return statistics.median(pick(run) for run in self.runs)


def haproxy(key: str, cfg: str, env: dict[str, str]) -> Server:
    return Server(
        key, f"HAProxy {cfg}", ["haproxy", "-db", "-f", f"snippets/scaling/{cfg}"], None, env
    )


def stop_haproxy(server: Server) -> None:
    """Soft stop (SIGUSR1): HAProxy stops listening, lets connections finish, exits 0."""
    if server.process is not None and server.process.poll() is None:
        server.process.send_signal(signal.SIGUSR1)
        server.process.wait(timeout=15)
    if server.log is not None:
        server.log.close()


def make_certs(directory: Path) -> None:
    """The HAProxy page's own script: tls_certs.py, then the combined PEM HAProxy wants."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    subprocess.run(
        ["sh", "snippets/scaling/haproxy_tls_pem.sh"],
        cwd=ROOT,
        env={**os.environ, "CERT_DIR": str(directory), "PATH": path},
        check=True,
        capture_output=True,
    )


def autocannon(setup: Setup, seconds: int, pin: Sequence[str], ca: Path) -> dict:
    argv = [*pin, str(AUTOCANNON), "-c", str(CONNECTIONS), "-d", str(seconds), "-j"]
    for header in setup.headers:
        argv += ["-H", header]
    argv.append(setup.url)
    processes = {"backend": setup.backend.process, "proxy": setup.server.process}
    before = {name: cpu_seconds(p.pid) for name, p in processes.items() if p is not None}
    client_before, started = children_cpu_seconds(), time.monotonic()
    result = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NODE_EXTRA_CA_CERTS": str(ca)},
    )
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"autocannon failed ({result.returncode}):\n{result.stderr}")
    run = json.loads(result.stdout)
    for name, process in processes.items():
        after = cpu_seconds(process.pid) if process is not None else None
        run[f"{name}_cpu"] = (
            None
            if after is None or before.get(name) is None
            else (after - before[name]) / run["duration"]
        )
    run["client_cpu"] = (children_cpu_seconds() - client_before) / wall
    return run


def check_encoding(setup: Setup, expected: str | None) -> None:
    """The setup does what the table says: who compresses, and whether at all."""
    headers = dict(header.split(": ", 1) for header in setup.headers)
    got = httpx.get(setup.url, headers=headers, timeout=5).headers.get("Content-Encoding")
    if got != expected:
        raise RuntimeError(f"{setup.name}: Content-Encoding {got!r}, expected {expected!r}")


def measure(seconds: int, warmup: int) -> list[Setup]:
    backend_pin, load_pin, _ = pick_cpus()
    proxy_pin = load_pin
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        workdir = Path(tmp)
        certs = workdir / "certs"
        make_certs(certs)
        recipe = Server(
            "recipe",
            "recipe-api",
            [sys.executable, "examples/why_distributed/recipe_api.py"],
            "/health",
        )
        compressing = Server(
            "compression",
            "compression_producer",
            [sys.executable, "examples/protocols/compression_producer.py"],
            "/health",
        )
        tls_app = Server(
            "tls",
            "tls_producer",
            [sys.executable, "examples/protocols/tls_producer.py"],
            None,
            {"TLS_CERT": str(certs / "server.pem"), "TLS_KEY": str(certs / "server.key")},
        )
        backends = [recipe, compressing, tls_app]
        proxies: list[Server] = []
        try:
            for server in backends:
                start(server, backend_pin, workdir)
            for server in backends:
                wait_ready(server)
            lb = haproxy(
                "lb",
                "haproxy_lb.cfg",
                {
                    "FRONTEND_PORT": str(free_port()),
                    "STATS_PORT": str(free_port()),
                    **{f"BACKEND{i}_PORT": str(recipe.port) for i in (1, 2, 3)},
                },
            )
            gzip_proxy = haproxy(
                "gzip",
                "haproxy_compression.cfg",
                {"FRONTEND_PORT": str(free_port()), "BACKEND_PORT": str(compressing.port)},
            )
            tls_proxy = haproxy(
                "tlsproxy",
                "haproxy_tls.cfg",
                {
                    "FRONTEND_PORT": str(free_port()),
                    "BACKEND_PORT": str(recipe.port),
                    "CERT_PEM": str(certs / "haproxy.pem"),
                },
            )
            proxies = [lb, gzip_proxy, tls_proxy]
            for proxy in proxies:
                # the cfg reads FRONTEND_PORT; start() sets PORT, which HAProxy ignores
                start(proxy, proxy_pin, workdir)
                proxy.port = int(proxy.env["FRONTEND_PORT"])
            for proxy in proxies:
                wait_ready(proxy)
            plain = ("Accept-Encoding: gzip",)
            identity_first = ("Accept-Encoding: gzip;q=0.5, identity",)
            setups = [
                Setup("direct", "recipe-api direct", "http", recipe, "/recipes/42", recipe),
                Setup("lb", "recipe-api through HAProxy", "http", lb, "/recipes/42", recipe),
                Setup(
                    "gzip-app",
                    "gzip in the application",
                    "http",
                    compressing,
                    "/recipes?count=10",
                    compressing,
                    plain,
                ),
                Setup(
                    "gzip-proxy",
                    "gzip in HAProxy",
                    "http",
                    gzip_proxy,
                    "/recipes?count=10",
                    compressing,
                    identity_first,
                ),
                Setup(
                    "tls-app", "TLS in the application", "https", tls_app, "/recipes/42", tls_app
                ),
                Setup("tls-proxy", "TLS in HAProxy", "https", tls_proxy, "/recipes/42", recipe),
            ]
            ca = certs / "ca.pem"
            check_encoding(setups[2], "gzip")
            check_encoding(
                Setup(
                    "check",
                    "the application, asked for identity first",
                    "http",
                    compressing,
                    "/recipes?count=10",
                    compressing,
                    identity_first,
                ),
                None,
            )
            check_encoding(setups[3], "gzip")
            for setup in setups:
                print(f"warm-up {setup.name}: {warmup} s", flush=True)
                autocannon(setup, warmup, load_pin, ca)
            quiet_budget = 30.0  # seconds of waiting for other work to stop, over the run
            for round_number in range(1, ROUNDS + 1):
                for setup in setups:
                    waited = time.monotonic()
                    wait_for_quiet(quiet_budget)
                    quiet_budget = max(0.0, quiet_budget - (time.monotonic() - waited))
                    run = autocannon(setup, seconds, load_pin, ca)
                    setup.runs.append(run)
                    print(
                        f"round {round_number} {setup.name}: {run['requests']['average']:.0f} "
                        f"req/s, p50 {run['latency']['p50']} ms, p99 {run['latency']['p99']} ms, "
                        f"{failures(run)} errors",
                        flush=True,
                    )
        finally:
            for proxy in proxies:
                stop_haproxy(proxy)
            for server in backends:
                stop(server)
                if server.log is not None:
                    server.log.close()
    return setups


PAIRS = [("direct", "lb"), ("gzip-app", "gzip-proxy"), ("tls-app", "tls-proxy")]


def report(setups: list[Setup], seconds: int, warmup: int) -> str:
    by_key = {setup.key: setup for setup in setups}
    rows = []
    for direct_key, proxied_key in PAIRS:
        direct = by_key[direct_key]
        for setup in (direct, by_key[proxied_key]):
            rps = setup.median("requests", "average")
            change = rps / direct.median("requests", "average") - 1
            rows.append(
                [
                    setup.name,
                    f"{rps:,.0f}",
                    "" if setup is direct else f"{change:+.0%}",
                    milliseconds(setup.median("latency", "p50")),
                    milliseconds(setup.median("latency", "p99")),
                    sum(failures(run) for run in setup.runs),
                    percent(median_known([run["backend_cpu"] for run in setup.runs])),
                    ""
                    if setup.server is setup.backend
                    else percent(median_known([run["proxy_cpu"] for run in setup.runs])),
                    percent(statistics.median(run["client_cpu"] for run in setup.runs)),
                ]
            )
    _, _, pins = pick_cpus()
    pins = pins.replace("each server", "each application").replace(
        "autocannon to", "HAProxy and autocannon to"
    )
    crowded = sum(
        1
        for setup in setups
        for run in setup.runs
        if (run["backend_cpu"] or 0) < STARVED_BELOW and run["client_cpu"] < STARVED_BELOW
    )
    note = (
        f"In {crowded} of {sum(len(setup.runs) for setup in setups)} runs neither the "
        f"application nor autocannon got {STARVED_BELOW:.0%} of a core: other work on the "
        "machine competed with them, and those figures understate what the setup can do."
        if crowded
        else ""
    )
    return "\n\n".join(
        [
            markdown_table(
                [
                    "setup",
                    "req/s",
                    "vs direct",
                    "p50 ms",
                    "p99 ms",
                    "errors",
                    "app CPU",
                    "HAProxy CPU",
                    "autocannon CPU",
                ],
                rows,
            ),
            f"autocannon `-c {CONNECTIONS} -d {seconds}`, median of {ROUNDS} alternating rounds "
            f"after a {warmup} s warm-up; {pins}. recipe-api answers `GET /recipes/42` (about "
            "200 bytes of JSON); the compression rows `GET /recipes?count=10` (10 recipes); "
            "the TLS rows use keep-alive connections, so they measure encryption, not "
            "handshakes. CPU is the share of one core each process used during a run; "
            "latency is in whole milliseconds.",
            note,
        ]
    )


def median_known(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def main() -> None:
    ensure_tools()
    sysdeps.require("haproxy")
    seconds = max(1, round(duration(DEFAULT_SECONDS)))
    warmup = min(2, seconds)
    setups = measure(seconds, warmup)
    stamp_line = stamp(
        ["sanic", "uvloop"],
        {
            "haproxy": ["haproxy", "-v"],
            "node": ["node", "--version"],
            "autocannon": ["node", "-p", AUTOCANNON_VERSION],
        },
    )
    # `haproxy -v` says "HAProxy version 2.6.12-1 2023/12/04 - https://haproxy.org/"
    stamp_line = stamp_line.replace("haproxy HAProxy version", "HAProxy").replace(
        " - https://haproxy.org/", ""
    )
    write_results(RESULTS, report(setups, seconds, warmup), stamp_line, COMMAND)
