"""recipe-api (Sanic, one process) against an equivalent Node.js `http` server.

Both servers answer `GET /recipes/42` with the same JSON shape. They run side by
side on free loopback ports, each pinned to the same CPU (`taskset`), while
autocannon (`-c 10`) runs on another CPU. Measurements alternate Python, Node,
Python, Node... and the median of the rounds is reported, so background noise
hits both. Writes snippets/why_distributed/bench_recipe_api.md.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench.common import ROOT, duration, markdown_table, stamp, write_results
from tests import sysdeps

BENCH = ROOT / "bench"
AUTOCANNON = BENCH / "node_modules" / ".bin" / "autocannon"
# prints the installed version alone ("9.0.0"), where `autocannon --version` adds a prefix
AUTOCANNON_VERSION = (
    f"require({json.dumps(str(BENCH / 'node_modules/autocannon/package.json'))}).version"
)
# relative to the repository root, where the servers start: the page's own run line
RECIPE_API = "examples/why_distributed/recipe_api.py"
NODE_SERVER = "bench/why_distributed/node_server.js"
RESULTS = "why_distributed/bench_recipe_api.md"
COMMAND = "./nox -s bench -- recipe_api_vs_node"

CONNECTIONS = 10
ROUNDS = 5  # Python, Node, Python, Node...; the median of each server's rounds is reported
DEFAULT_SECONDS = 4  # per measurement: 5 rounds x 3 servers x 4 s + warm-up + start < 80 s
QUIET_BELOW = 0.10  # share of all CPUs busy that counts as a quiet machine
QUIET_BUDGET = 30.0  # seconds of waiting for quiet over the whole run, at most
STARVED_BELOW = 0.80  # server and load tester both under this share of a CPU: crowded out
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


@dataclass
class Server:
    key: str
    name: str
    argv: list[str]
    ready_path: str | None  # HTTP path answering 200 when ready; None: the port is enough
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    runs: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/recipes/42"

    def requests_per_second(self) -> float:
        return statistics.median(run["requests"]["average"] for run in self.runs)


def ensure_tools() -> None:
    sysdeps.require("node", "npm")
    if not AUTOCANNON.exists():
        print("installing autocannon: npm ci --prefix bench", flush=True)
        subprocess.run(["npm", "ci", "--prefix", str(BENCH), "--no-audit", "--no-fund"], check=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pick_cpus() -> tuple[list[str], list[str], str]:
    """taskset prefixes for the servers and for the load tester, and a sentence saying so."""
    cpus = sorted(os.sched_getaffinity(0))
    if shutil.which("taskset") is None:
        return [], [], "not pinned to CPUs (taskset not found)"
    server_cpu = cpus[0]
    if len(cpus) < 2:
        prefix = ["taskset", "-c", str(server_cpu)]
        return prefix, prefix, f"servers and autocannon share CPU {server_cpu} (one CPU available)"
    load_cpu = cpus[1]
    return (
        ["taskset", "-c", str(server_cpu)],
        ["taskset", "-c", str(load_cpu)],
        f"each server pinned to CPU {server_cpu}, autocannon to CPU {load_cpu}",
    )


def log_tail(server: Server) -> str:
    if server.log is None:
        return ""
    server.log.flush()
    server.log.seek(0)
    return server.log.read().decode(errors="replace")[-2000:]


def start(server: Server, pin: Sequence[str], workdir: Path) -> None:
    server.port = free_port()
    env = {**os.environ, **server.env, "HOST": "127.0.0.1", "PORT": str(server.port)}
    server.log = (workdir / f"{server.key}.log").open("w+b")
    server.process = subprocess.Popen(
        [*pin, *server.argv],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=server.log,
        stderr=subprocess.STDOUT,
    )


def wait_ready(server: Server) -> None:
    assert server.process is not None
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode}:\n{log_tail(server)}"
            )
        try:
            if server.ready_path is None:
                with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                    return
            else:
                url = f"http://127.0.0.1:{server.port}{server.ready_path}"
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready after {STARTUP_TIMEOUT} s:\n{log_tail(server)}")


def stop(server: Server) -> None:
    """SIGTERM, then check the server exited cleanly (code 0) in time."""
    process = server.process
    if process is None:
        return
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RuntimeError(
                f"{server.name} ignored SIGTERM for {STOP_TIMEOUT} s:\n{log_tail(server)}"
            ) from None
    if process.returncode != 0:
        raise RuntimeError(
            f"{server.name} exited with {process.returncode} on SIGTERM:\n{log_tail(server)}"
        )


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a running process (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def busy_share(interval: float = 0.5) -> float | None:
    """Share of all CPUs busy over `interval` seconds (Linux /proc/stat), None elsewhere."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values[:8]) - idle, sum(values[:8])

    try:
        busy_before, total_before = sample()
        time.sleep(interval)
        busy_after, total_after = sample()
    except (OSError, IndexError, ValueError):
        return None
    return (busy_after - busy_before) / max(1, total_after - total_before)


def wait_for_quiet(limit: float) -> bool:
    """Wait until nothing else keeps the CPUs busy (our servers idle between runs).

    Other work on the machine would steal the pinned CPUs in the middle of a run.
    Gives up after `limit` seconds and returns False: the run goes ahead and the
    CPU columns of the table show what the servers got.
    """
    deadline = time.monotonic() + limit
    while True:
        busy = busy_share()
        if busy is None or busy < QUIET_BELOW:
            return True
        if time.monotonic() > deadline:
            print(f"machine still {busy:.0%} busy; measuring anyway", flush=True)
            return False
        time.sleep(1)


def autocannon(server: Server, seconds: int, pin: Sequence[str]) -> dict:
    """One autocannon run; adds the share of a CPU the server and autocannon used."""
    assert server.process is not None
    argv = [*pin, str(AUTOCANNON), "-c", str(CONNECTIONS), "-d", str(seconds), "-j", server.url]
    server_before, client_before = cpu_seconds(server.process.pid), children_cpu_seconds()
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    server_after, client_after = cpu_seconds(server.process.pid), children_cpu_seconds()
    if result.returncode != 0:
        raise RuntimeError(f"autocannon failed ({result.returncode}):\n{result.stderr}")
    run = json.loads(result.stdout)
    run["server_cpu"] = (
        None
        if server_before is None or server_after is None
        else (server_after - server_before) / run["duration"]
    )
    run["client_cpu"] = (client_after - client_before) / wall  # includes node's start-up
    return run


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def milliseconds(value: float) -> str:
    """autocannon records latency in whole milliseconds: 0 means under one."""
    return "<1" if value < 1 else f"{value:g}"


def failures(run: dict) -> int:
    return run["errors"] + run["timeouts"] + run["non2xx"]


def crowded_out(run: dict) -> bool:
    """Neither the server nor autocannon kept its CPU busy: something else had it."""
    server_cpu = run["server_cpu"]
    return (
        server_cpu is not None and server_cpu < STARVED_BELOW and run["client_cpu"] < STARVED_BELOW
    )


def median_or_none(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def measure(servers: list[Server], seconds: int, warmup: int, rounds: int = ROUNDS) -> None:
    """Start both servers, warm them up, then alternate measurements between them."""
    server_pin, load_pin, _ = pick_cpus()
    quiet_budget = QUIET_BUDGET
    with tempfile.TemporaryDirectory(prefix="bench-recipe-api-") as tmp:
        measured = False
        try:
            for server in servers:
                start(server, server_pin, Path(tmp))
            for server in servers:
                wait_ready(server)
            for server in servers:
                print(f"warm-up {server.name}: {warmup} s", flush=True)
                autocannon(server, warmup, load_pin)
            for round_number in range(1, rounds + 1):
                for server in servers:
                    waited = time.monotonic()
                    wait_for_quiet(quiet_budget)
                    quiet_budget = max(0.0, quiet_budget - (time.monotonic() - waited))
                    run = autocannon(server, seconds, load_pin)
                    server.runs.append(run)
                    print(
                        f"round {round_number} {server.name}: "
                        f"{run['requests']['average']:.0f} req/s, "
                        f"p50 {run['latency']['p50']} ms, p99 {run['latency']['p99']} ms, "
                        f"{failures(run)} errors, CPU: server {percent(run['server_cpu'])}, "
                        f"autocannon {percent(run['client_cpu'])}",
                        flush=True,
                    )
            measured = True
        finally:
            problems = []
            for server in servers:
                try:
                    stop(server)
                except RuntimeError as error:
                    problems.append(str(error))
                finally:
                    if server.log is not None:
                        server.log.close()
            if problems and measured:
                raise RuntimeError("\n".join(problems))
            for problem in problems:  # the measurement's own error is the one raised
                print(problem, file=sys.stderr, flush=True)


def report(servers: list[Server], seconds: int, warmup: int) -> str:
    rows = []
    for server in servers:
        rows.append(
            [
                server.name,
                f"{server.requests_per_second():,.0f}",
                milliseconds(statistics.median(run["latency"]["p50"] for run in server.runs)),
                milliseconds(statistics.median(run["latency"]["p99"] for run in server.runs)),
                sum(failures(run) for run in server.runs),
                percent(median_or_none([run["server_cpu"] for run in server.runs])),
                percent(statistics.median(run["client_cpu"] for run in server.runs)),
            ]
        )
    python, node = servers[0], servers[-1]
    ratio = python.requests_per_second() / node.requests_per_second()
    print(f"Python/Node throughput: {ratio:.2f}", flush=True)
    starved = sum(1 for server in servers for run in server.runs if crowded_out(run))
    parts = [
        markdown_table(
            ["server", "req/s", "p50 ms", "p99 ms", "errors", "server CPU", "autocannon CPU"],
            rows,
        ),
        f"recipe-api/Node throughput ratio: **{ratio:.2f}**",
        f"`GET /recipes/42`, autocannon `-c {CONNECTIONS} -d {seconds}`, median of "
        f"{ROUNDS} alternating rounds after a {warmup} s warm-up; one process per server, "
        f"{pick_cpus()[2]}. autocannon records latency in whole milliseconds; "
        "errors counts socket errors, timeouts and non-2xx answers over all rounds. "
        "CPU is the share of one core each process used during a run (median): a server "
        "well under 100% was either not the bottleneck or not given its core.",
    ]
    if starved:
        note = (
            f"In {starved} of {ROUNDS * len(servers)} runs neither the server nor autocannon "
            f"got {STARVED_BELOW:.0%} of its CPU: other work on the machine competed with them."
        )
        print(f"note: {note} Rerun on a quiet machine for steadier figures.", flush=True)
        parts.append(note)
    return "\n\n".join(parts)


def main() -> None:
    ensure_tools()
    seconds = max(1, round(duration(DEFAULT_SECONDS)))
    warmup = min(2, seconds)
    servers = [
        Server("python", "Python: recipe-api (Sanic)", [sys.executable, RECIPE_API], "/health"),
        Server(
            "python-access-log",
            "Python: recipe-api with `ACCESS_LOG=1`",
            [sys.executable, RECIPE_API],
            "/health",
            env={"ACCESS_LOG": "1"},
        ),
        Server("node", "Node.js: http", ["node", NODE_SERVER], None),
    ]
    measure(servers, seconds, warmup)
    stamp_line = stamp(
        ["sanic", "orjson", "uvloop"],
        {"node": ["node", "--version"], "autocannon": ["node", "-p", AUTOCANNON_VERSION]},
    )
    write_results(RESULTS, report(servers, seconds, warmup), stamp_line, COMMAND)
