"""The load kit: servers under load, autocannon, and the CPU they all used.

Every benchmark that loads a server uses this module and nothing else for it:

- `Servers`: start what is measured through the test kit (an example with its
  run line, `kit.examples.start_example`; another program, `kit.process.Process`;
  HAProxy with a page's cfg, `kit.services.haproxy`), optionally pinned to CPUs,
  and stop it all at the end, each required to exit 0.
- `autocannon()`: the one autocannon runner (JSON output parsed, CPU measured).
- `CpuUse`: the CPU that process trees (psutil: a process and its children) and
  the load tester used meanwhile.
- `alternate()`: rounds of autocannon runs taking turns between targets.
- `pick_cpus()`, `wait_for_quiet()` and the formatting of autocannon's figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import psutil
from kit import sysdeps
from kit.examples import RunningExample, start_example
from kit.process import LOOPBACK, ROOT, Process, StartupError, free_port, http_ok, port_open
from kit.services.haproxy import RunningHaproxy, StartHaproxy

CONNECTIONS = 10
QUIET_BELOW = 0.10  # share of all CPUs busy that counts as a quiet machine
STARVED_BELOW = 0.80  # server and load tester both under this share of a CPU: crowded out

P = TypeVar("P", bound=Process)


# --- CPUs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cpus:
    """Where servers and the load tester run; empty tuples: not pinned."""

    server: tuple[int, ...]
    load: tuple[int, ...]
    sentence: str


def pick_cpus() -> Cpus:
    """Servers on the first CPU, the load tester on the second (shared when there is one)."""
    sysdeps.require("taskset")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        one = (cpus[0],)
        return Cpus(one, one, f"servers and autocannon share CPU {cpus[0]} (one CPU available)")
    return Cpus(
        (cpus[0],),
        (cpus[1],),
        f"each server pinned to CPU {cpus[0]}, autocannon to CPU {cpus[1]}",
    )


def taskset(cpus: Sequence[int]) -> list[str]:
    """The argv prefix that runs a program on `cpus` (nothing when empty)."""
    return ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []


def pin(pid: int, cpus: Sequence[int]) -> None:
    """Pin every thread of a running process and of its children to `cpus`."""
    if not cpus:
        return
    parent = psutil.Process(pid)
    for process in [parent, *parent.children(recursive=True)]:
        for thread in process.threads():
            os.sched_setaffinity(thread.id, cpus)


def busy_share(interval: float = 0.5) -> float:
    """Share of all CPUs busy over `interval` seconds."""
    return psutil.cpu_percent(interval=interval) / 100


def wait_for_quiet(limit: float) -> bool:
    """Wait until nothing else keeps the CPUs busy (our servers idle between runs).

    Other work on the machine would steal the pinned CPUs in the middle of a run.
    Gives up after `limit` seconds and returns False: the run goes ahead and the
    CPU columns of the table show what the servers got.
    """
    deadline = time.monotonic() + limit
    while True:
        busy = busy_share()
        if busy < QUIET_BELOW:
            return True
        if time.monotonic() > deadline:
            print(f"machine still {busy:.0%} busy; measuring anyway", flush=True)
            return False
        time.sleep(1)


# --- CPU use ---------------------------------------------------------------------------


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process and all its children; None once it is gone."""
    try:
        parent = psutil.Process(pid)
        processes = [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return None
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def finished_children_cpu_seconds() -> float:
    """CPU seconds of the programs this process ran to completion (the load testers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuUse:
    """CPU used while the block runs: by each watched process tree (label -> pid), and
    by the programs run to completion meanwhile (`load`, the load tester)."""

    def __init__(self, watch: Mapping[str, int] | None = None) -> None:
        self.watch = dict(watch or {})
        self.wall = 0.0

    def __enter__(self) -> CpuUse:
        self.before = {name: tree_cpu_seconds(pid) for name, pid in self.watch.items()}
        self.load_before = finished_children_cpu_seconds()
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.monotonic() - self.started
        self.after = {name: tree_cpu_seconds(pid) for name, pid in self.watch.items()}
        self.load_after = finished_children_cpu_seconds()

    def share(self, name: str, seconds: float | None = None) -> float | None:
        """Share of one CPU the `name` tree used over `seconds` (default: the block's time)."""
        before, after = self.before[name], self.after[name]
        if before is None or after is None:
            return None
        return (after - before) / (seconds or self.wall)

    def load_share(self, seconds: float | None = None) -> float:
        return (self.load_after - self.load_before) / (seconds or self.wall)


# --- autocannon ------------------------------------------------------------------------


def autocannon_path() -> Path:
    """autocannon as package-lock.json pins it (installed by `npm ci` when missing)."""
    return sysdeps.require_npm_tools()["autocannon"]


# prints the installed version alone ("9.0.0"), where `autocannon --version` adds a prefix
AUTOCANNON_VERSION = [
    "node",
    "-p",
    f"require({json.dumps(str(ROOT / 'node_modules/autocannon/package.json'))}).version",
]


def autocannon(
    url: str,
    seconds: int,
    *,
    connections: int = CONNECTIONS,
    cpus: Sequence[int] = (),
    headers: Sequence[str] = (),
    method: str | None = None,
    body: str | None = None,
    env: Mapping[str, str] | None = None,
    watch: Mapping[str, int] | None = None,
) -> dict:
    """One autocannon run; its JSON result, plus the CPU used meanwhile.

    `watch` names process trees (label -> pid) whose share of one CPU over the run is
    added as `<label>_cpu`; autocannon's own share (start-up included) is `client_cpu`.
    `env` adds variables for autocannon (NODE_EXTRA_CA_CERTS for a private CA).
    """
    argv = [*taskset(cpus), str(autocannon_path()), "-c", str(connections), "-d", str(seconds)]
    for header in headers:
        argv += ["-H", header]
    if method:
        argv += ["-m", method]
    if body is not None:
        argv += ["-b", body]
    argv += ["-j", url]
    with CpuUse(watch) as cpu:
        result = subprocess.run(
            argv, capture_output=True, text=True, check=False, env={**os.environ, **(env or {})}
        )
    if result.returncode != 0:
        raise RuntimeError(f"autocannon failed ({result.returncode}):\n{result.stderr}")
    run = json.loads(result.stdout)
    for name in cpu.watch:
        run[f"{name}_cpu"] = cpu.share(name, run["duration"])
    run["client_cpu"] = cpu.load_share()
    return run


def failures(run: dict) -> int:
    """Socket errors, timeouts and non-2xx answers of one autocannon run."""
    return run["errors"] + run["timeouts"] + run["non2xx"]


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def milliseconds(value: float) -> str:
    """autocannon records latency in whole milliseconds: 0 means under one."""
    return "<1" if value < 1 else f"{value:g}"


def median_known(values: Sequence[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def crowded_out(run: dict, server: str = "server") -> bool:
    """Neither the server nor autocannon kept its CPU busy: something else had it."""
    server_cpu = run[f"{server}_cpu"]
    return (
        server_cpu is not None and server_cpu < STARVED_BELOW and run["client_cpu"] < STARVED_BELOW
    )


@dataclass
class Target:
    """A URL under load, the process trees whose CPU counts, and the runs against it."""

    name: str
    url: str
    watch: dict[str, int]
    headers: Sequence[str] = ()
    key: str = ""
    runs: list[dict] = field(default_factory=list)

    def median(self, *keys: str) -> float:
        def pick(run: dict) -> float:
            value = run
            for key in keys:
                value = value[key]
            return value  # type: ignore[return-value]

        return statistics.median(pick(run) for run in self.runs)

    def requests_per_second(self) -> float:
        return self.median("requests", "average")


def alternate(
    targets: Sequence[Target],
    *,
    seconds: int,
    warmup: int,
    rounds: int,
    cpus: Sequence[int] = (),
    env: Mapping[str, str] | None = None,
    quiet_budget: float = 30.0,
) -> None:
    """Warm each target up, then `rounds` rounds taking turns, so background noise hits
    all; waits for a quiet machine before each run, `quiet_budget` seconds in all."""
    for target in targets:
        print(f"warm-up {target.name}: {warmup} s", flush=True)
        autocannon(target.url, warmup, cpus=cpus, headers=target.headers, env=env)
    for round_number in range(1, rounds + 1):
        for target in targets:
            waited = time.monotonic()
            wait_for_quiet(quiet_budget)
            quiet_budget = max(0.0, quiet_budget - (time.monotonic() - waited))
            run = autocannon(
                target.url, seconds, cpus=cpus, headers=target.headers, env=env, watch=target.watch
            )
            target.runs.append(run)
            shares = ", ".join(
                f"{name} {percent(run[f'{name}_cpu'])}" for name in [*target.watch, "client"]
            )
            print(
                f"round {round_number} {target.name}: {run['requests']['average']:.0f} req/s, "
                f"p50 {run['latency']['p50']} ms, p99 {run['latency']['p99']} ms, "
                f"{failures(run)} errors, CPU: {shares}",
                flush=True,
            )


# --- servers ---------------------------------------------------------------------------


class Program(Process):
    """A server that is not an example (node_server.js, a bench wrapper): HOST and PORT
    in its environment, like an example."""

    def __init__(self, name: str, argv: Sequence[str], log_dir: Path, env: Mapping[str, str]):
        self.port = free_port()
        env = {**env, "HOST": LOOPBACK, "PORT": str(self.port)}
        super().__init__(name, argv, log_dir / f"{name}.{self.port}.log", env=env)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


class Servers:
    """The servers of one benchmark: started through the kit, pinned to `cpus` if given,
    and at the end stopped (last started first), each required to exit 0."""

    def __init__(self, name: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=f"bench-{name}-")
        self.log_dir = Path(self._tmp.name)
        self.started: list[Process] = []
        self._haproxy: StartHaproxy | None = None

    def __enter__(self) -> Servers:
        return self

    def example(
        self,
        example: str,
        *,
        env: Mapping[str, str] | None = None,
        ready: str = "/health",
        cpus: Sequence[int] = (),
    ) -> RunningExample:
        """`examples/<example>` started with its run line (see kit.examples.start_example)."""
        running = start_example(example, self.log_dir, env=dict(env or {}), ready=ready)
        return self._started(running, cpus)

    def program(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        ready: str = "port",
        cpus: Sequence[int] = (),
    ) -> Program:
        """Another program: `ready` is an HTTP path answering 2xx, or "port"."""
        program = Program(name, argv, self.log_dir, env or {})
        if ready == "port":
            program.start(lambda: port_open(program.port))
        else:
            program.start(http_ok(program.url + ready))
        return self._started(program, cpus)

    def haproxy(
        self, cfg: str, env: Mapping[str, str] | None = None, cpus: Sequence[int] = ()
    ) -> RunningHaproxy:
        """HAProxy with a page's cfg (checked with `haproxy -c` first), as its script runs it."""
        if self._haproxy is None:
            self._haproxy = StartHaproxy(self.log_dir)
        return self._started(self._haproxy(cfg, dict(env or {})), cpus)

    def _started(self, process: P, cpus: Sequence[int]) -> P:
        self.started.append(process)
        pin(process.pid, cpus)  # type: ignore[arg-type]
        return process

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        problems = []
        for process in reversed(self.started):
            try:
                code = process.stop()
            except (AssertionError, StartupError) as error:
                problems.append(str(error))
                continue
            if code != 0:
                problems.append(f"{process.name} exited with {code}:\n{process.output()[-2000:]}")
        self._tmp.cleanup()
        if problems and exc is None:
            raise RuntimeError("\n\n".join(problems))
        for problem in problems:  # the measurement's own error is the one raised
            print(problem, file=sys.stderr, flush=True)
