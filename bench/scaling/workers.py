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

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

from bench.common import ROOT, duration, markdown_table, stamp, write_results
from bench.why_distributed.recipe_api_vs_node import (
    AUTOCANNON,
    AUTOCANNON_VERSION,
    children_cpu_seconds,
    ensure_tools,
    free_port,
)

RESULTS = "scaling/bench_workers.md"
COMMAND = "./nox -s bench -- workers"
PATH = "/fibonacci/25"
CONNECTIONS = 10
DEFAULT_SECONDS = 8  # per server: 3 x (2 s warm-up + 8 s) + start-up, well under a minute
SERVERS = [
    ("one process", "examples/scaling/fibonacci_service.py", {"WORKERS": "1"}),
    ("Sanic workers, `WORKERS=2`", "examples/scaling/fibonacci_service.py", {"WORKERS": "2"}),
    (
        "hand-written cluster, `WORKERS=2`",
        "examples/scaling/fibonacci_cluster.py",
        {"WORKERS": "2"},
    ),
]


def start(example: str, env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, example],
            cwd=ROOT,
            env={**os.environ, **env, "HOST": "127.0.0.1", "PORT": str(port)},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{example} exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                time.sleep(0.5)  # every worker up, not only the first
                return process
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{example} not ready:\n{log.read_text()}")


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise RuntimeError(f"ignored SIGTERM:\n{log.read_text()}") from None
    if code != 0:
        raise RuntimeError(f"exited with {code} on SIGTERM:\n{log.read_text()}")


def tree_cpu_seconds(pid: int) -> float:
    processes = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def autocannon(port: int, seconds: int, pid: int) -> dict:
    url = f"http://127.0.0.1:{port}{PATH}"
    argv = [str(AUTOCANNON), "-c", str(CONNECTIONS), "-d", str(seconds), "-j", url]
    server_before, client_before = tree_cpu_seconds(pid), children_cpu_seconds()
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"autocannon failed ({result.returncode}):\n{result.stderr}")
    run = json.loads(result.stdout)
    run["server_cpu"] = (tree_cpu_seconds(pid) - server_before) / run["duration"]
    run["client_cpu"] = (children_cpu_seconds() - client_before) / wall
    return run


def main() -> None:
    ensure_tools()
    seconds = max(1, round(duration(DEFAULT_SECONDS)))
    warmup = min(2, seconds)
    rows, rates = [], []
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        for name, example, env in SERVERS:
            port, log = free_port(), Path(tmp) / f"{len(rates)}.log"
            process = start(example, env, port, log)
            try:
                autocannon(port, warmup, process.pid)
                run = autocannon(port, seconds, process.pid)
            finally:
                stop(process, log)
            rate = run["requests"]["average"]
            rates.append(rate)
            failures = run["errors"] + run["timeouts"] + run["non2xx"]
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
            f"`GET {PATH}`, autocannon `-c {CONNECTIONS} -d {seconds}` after a {warmup} s "
            f"warm-up, one server at a time, nothing pinned to CPUs ({os.cpu_count()} on this "
            "machine). CPU is the share of one core used during the run: the server's summed "
            "over its processes (manager included), autocannon's including its start-up. "
            "Other work on the machine during the run lowers the figures for two workers most.",
        ]
    )
    stamp_line = stamp(["sanic", "uvloop"], {"autocannon": ["node", "-p", AUTOCANNON_VERSION]})
    write_results(RESULTS, body, stamp_line, COMMAND)
