"""How many instances do I need? The highest rate that still meets the SLO, per instance count.

The service is the chapter's CPU-bound `fibonacci_service.py` (`GET
/fibonacci/22`, a few milliseconds of pure Python per request), one process
per instance: one instance reached directly, then two behind
`haproxy_lb.cfg` (its third server line points at a closed port, so the
health check takes it out before the first measurement). For each, the target
rate climbs step by step, each step an open-loop run of slo_check.py's own
generator, until the p99 latency goes over the objective or a request fails;
the last rate that met it is the instance count's capacity.

Nothing is pinned: the instances, HAProxy and the load generator share the
machine's cores, as they would on one small host. Writes
snippets/scaling/bench_capacity.md.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from types import ModuleType

from kit.process import free_port, wait_until
from kit.services.haproxy import RunningHaproxy

from bench import load
from bench.common import ROOT, duration, markdown_table, stamp, write_results

RESULTS = "scaling/bench_capacity.md"
COMMAND = "./nox -s bench -- capacity"
FIB_N = 22
FIBONACCI = "scaling/fibonacci_service.py"
P99_TARGET_MS = 20.0
STEP = 50  # requests per second added at each step
MAX_RATE = 1000
DEFAULT_SECONDS = 3  # per step
TIME_BUDGET = 80.0  # seconds of stepping over the whole run, at most
CONCURRENCY = 50


def load_slo_check() -> ModuleType:
    """The example is a single file, not a package: load it by path."""
    path = ROOT / "examples/scaling/slo_check.py"
    spec = importlib.util.spec_from_file_location("slo_check", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["slo_check"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


slo_check = load_slo_check()


def wait_until_down(proxy: RunningHaproxy, server: str) -> None:
    wait_until(
        lambda: proxy.server("recipe_api", server)["status"].startswith("DOWN"),
        15,
        f"HAProxy to mark {server} down",
    )


def step_up(url: str, seconds: float, deadline: float) -> list[dict]:
    """Raise the rate until the SLO breaks (or time runs out); one row per step."""
    steps = []
    rate = STEP
    while rate <= MAX_RATE and time.monotonic() < deadline:
        load.wait_for_quiet(2)
        plan = slo_check.Load(rate=rate, duration=seconds, concurrency=CONCURRENCY, timeout=2)
        outcomes = asyncio.run(slo_check.run_load(url, plan))
        latencies = sorted(outcome.latency for outcome in outcomes)
        step = {
            "rate": rate,
            "p50": slo_check.percentile(latencies, 50) * 1000,
            "p99": slo_check.percentile(latencies, 99) * 1000,
            "errors": sum(not outcome.ok for outcome in outcomes),
            "late": sum(outcome.late > 0.010 for outcome in outcomes),
        }
        step["met"] = step["p99"] <= P99_TARGET_MS and step["errors"] == 0
        steps.append(step)
        print(
            f"{url} at {rate}/s: p50 {step['p50']:.1f} ms, p99 {step['p99']:.1f} ms, "
            f"{step['errors']} errors, generator late {step['late']} times"
            f" -> {'met' if step['met'] else 'missed'}",
            flush=True,
        )
        if not step["met"]:
            break
        rate += STEP
    return steps


def measure(seconds: float) -> dict[str, list[dict]]:
    deadline = time.monotonic() + TIME_BUDGET
    results = {}
    path = f"/fibonacci/{FIB_N}"
    with load.Servers("capacity") as servers:
        single = servers.example(FIBONACCI)
        results["1 instance, direct"] = step_up(
            single.url + path, seconds, deadline - TIME_BUDGET / 2
        )
    with load.Servers("capacity") as servers:
        first, second = servers.example(FIBONACCI), servers.example(FIBONACCI)
        lb = servers.haproxy(
            "snippets/scaling/haproxy_lb.cfg",
            {
                "BACKEND1_PORT": str(first.port),
                "BACKEND2_PORT": str(second.port),
                "BACKEND3_PORT": str(free_port()),  # nothing listens: taken out
            },
        )
        wait_until_down(lb, "recipe3")
        results["2 instances behind HAProxy"] = step_up(lb.url + path, seconds, deadline)
    return results


def report(results: dict[str, list[dict]], seconds: float) -> str:
    summary, detail = [], []
    for setup, steps in results.items():
        met = [step["rate"] for step in steps if step["met"]]
        capacity = f"{max(met)} req/s" if met else f"under {STEP} req/s"
        missed = next((step for step in steps if not step["met"]), None)
        summary.append([setup, capacity, f"{missed['rate']} req/s" if missed else "not reached"])
        for step in steps:
            detail.append(
                [
                    setup,
                    step["rate"],
                    f"{step['p50']:.1f}",
                    f"{step['p99']:.1f}",
                    step["errors"],
                    step["late"],
                    "met" if step["met"] else "**missed**",
                ]
            )
    return "\n\n".join(
        [
            markdown_table(
                ["setup", f"highest rate with p99 <= {P99_TARGET_MS:g} ms", "first rate missed"],
                summary,
            ),
            f"`GET /fibonacci/{FIB_N}` on `fibonacci_service.py` (one process per instance); "
            f"slo_check.py's open-loop generator, {seconds:g} s per step, +{STEP} req/s per "
            f"step, at most {CONCURRENCY} requests in flight; an objective of p99 <= "
            f"{P99_TARGET_MS:g} ms and no errors. Latency counts from each request's "
            "scheduled start. Nothing pinned: the instances, HAProxy and the generator share "
            "the cores.",
            '??? note "Every step"\n\n'
            + "\n".join(
                "    " + line
                for line in markdown_table(
                    ["setup", "rate/s", "p50 ms", "p99 ms", "errors", "generator late", "SLO"],
                    detail,
                ).splitlines()
            ),
        ]
    )


def main() -> None:
    seconds = duration(DEFAULT_SECONDS)
    results = measure(seconds)
    stamp_line = stamp(["sanic", "uvloop", "httpx"], {"haproxy": ["haproxy", "-v"]})
    write_results(RESULTS, report(results, seconds), stamp_line, COMMAND)
