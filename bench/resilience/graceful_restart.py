"""One restart under a steady stream of requests: graceful, or not.

Three instances behind HAProxy started with snippets/resilience/graceful_haproxy.cfg
(checks every 200 ms, two failures take a server out, `retries 0`). Client threads
send GET /recipes/42 through HAProxy, each one request after another; once WARM
requests are answered, one instance is stopped, a replacement is started on its port
once it has exited, and the stream goes on until HAProxy has the replacement UP, then
for TAIL requests more. Three ways to stop it, ROUNDS times each, alternating:

- graceful_recipe_api.py with SIGTERM and its default drain (1 s);
- graceful_recipe_api.py with SIGTERM and DRAIN_SECONDS=0: Sanic's own graceful
  shutdown alone (requests in flight finish, exit code 0, no drain);
- chapter 1's recipe_api.py with SIGKILL: a crash, or a careless script.

Reports the requests sent, those that failed (a 5xx or no answer), how long the old
process took to exit after the signal, and how long until the replacement was back
in rotation. Writes snippets/resilience/graceful_restart.md.
"""

from __future__ import annotations

import signal
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from kit.examples import RunningExample, start_example
from kit.process import wait_until
from kit.services.haproxy import RunningHaproxy

from bench import load
from bench.common import markdown_table, stamp, write_results

RESULTS = "resilience/graceful_restart.md"
COMMAND = "./nox -s bench -- graceful_restart"
CFG = "snippets/resilience/graceful_haproxy.cfg"
BACKEND = "recipe_api"
CLIENTS = 4
WARM = 1000  # requests answered before the restart
TAIL = 1000  # requests after the replacement is UP
ROUNDS = 3
BOUND = 60.0


@dataclass(frozen=True)
class Way:
    name: str
    example: str
    env: dict[str, str]
    sig: signal.Signals


WAYS = [
    Way("graceful, SIGTERM, 1 s drain (default)", "resilience/graceful_recipe_api.py", {},
        signal.SIGTERM),
    Way("graceful, SIGTERM, `DRAIN_SECONDS=0`", "resilience/graceful_recipe_api.py",
        {"DRAIN_SECONDS": "0"}, signal.SIGTERM),
    Way("chapter 1's recipe-api, SIGKILL", "why_distributed/recipe_api.py", {}, signal.SIGKILL),
]  # fmt: skip


@dataclass
class Run:
    requests: int = 0
    failed: int = 0
    stop_seconds: float = 0.0  # signal -> the old process exited
    back_seconds: float = 0.0  # signal -> the replacement UP in HAProxy
    exit_code: int | None = None
    kinds: Counter[str] = field(default_factory=Counter)  # "503", "ReadError"...


@dataclass
class Stream:
    url: str
    answered: int = 0
    failed: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    tail: threading.Event = field(default_factory=threading.Event)
    tail_sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while True:
                with self.lock:
                    if self.tail.is_set():
                        if self.tail_sent >= TAIL:
                            return
                        self.tail_sent += 1
                try:
                    status = client.get("/recipes/42").status_code
                    kind = "" if status == 200 else str(status)
                except httpx.HTTPError as error:
                    kind = type(error).__name__
                with self.lock:
                    if not kind:
                        self.answered += 1
                    else:
                        self.failed += 1
                        self.kinds[kind] += 1


def up(proxy: RunningHaproxy, name: str) -> bool:
    return proxy.server(BACKEND, name)["status"] == "UP"


def one_round(way: Way, servers: load.Servers) -> Run:
    instances: list[RunningExample] = []
    try:
        for _ in range(3):
            instances.append(start_example(way.example, servers.log_dir, env=way.env))
        ports = {f"BACKEND{i}_PORT": str(o.port) for i, o in enumerate(instances, start=1)}
        proxy = servers.haproxy(CFG, ports)
        wait_until(lambda: all(up(proxy, f"recipe{i}") for i in (1, 2, 3)), BOUND, "all UP")
        stream = Stream(proxy.url)
        threads = [threading.Thread(target=stream.run, daemon=True) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        wait_until(lambda: stream.answered >= WARM, BOUND, f"{WARM} answers")

        old = instances[0]
        run = Run()
        started = time.monotonic()
        old.process.send_signal(way.sig)
        old.process.wait(BOUND)
        run.stop_seconds = time.monotonic() - started
        run.exit_code = old.stop()  # it has exited: this records it
        instances.append(start_example(way.example, servers.log_dir, env=way.env, port=old.port))
        wait_until(lambda: up(proxy, "recipe1"), BOUND, "the replacement UP")
        run.back_seconds = time.monotonic() - started
        stream.tail.set()
        for thread in threads:
            thread.join(BOUND)
        run.requests = stream.answered + stream.failed
        run.failed = stream.failed
        run.kinds = stream.kinds
        assert proxy.stop() == 0, proxy.output()
        return run
    finally:
        # A signal each, all at once, so that the drains run side by side; then
        # each exit. (A second SIGTERM once Sanic's shutdown is under way would
        # meet no handler any more: the default action, exit by signal.)
        for instance in instances:
            if instance.alive():
                instance.process.send_signal(signal.SIGTERM)
        for instance in instances:
            if not instance.stopped:
                instance.process.wait(BOUND)
                assert instance.stop() == 0, instance.output()


def kinds(runs: list[Run]) -> str:
    total = sum((r.kinds for r in runs), Counter())
    return ", ".join(f"{count} {kind}" for kind, count in total.most_common()) or "nothing"


def report(results: dict[str, list[Run]]) -> str:
    rows = []
    for way in WAYS:
        runs = results[way.name]
        rows.append(
            [
                way.name,
                f"{sum(r.requests for r in runs):,}",
                ", ".join(str(r.failed) for r in runs),
                kinds(runs),
                ", ".join(str(r.exit_code) for r in runs),
                f"{statistics.median(r.stop_seconds for r in runs):.2f}",
                f"{statistics.median(r.back_seconds for r in runs):.2f}",
            ]
        )
    table = markdown_table(
        [
            "how the instance stops",
            "requests",
            "failed, per round",
            "what failed",
            "exit code",
            "signal to exit, s",
            "signal to back in rotation, s",
        ],
        rows,
    )
    return (
        f"{table}\n\n"
        f"{ROUNDS} rounds each, alternating; in each round {CLIENTS} client threads send "
        f"`GET /recipes/42` through HAProxy ({CFG}, `retries 0`), one request after another, "
        f"and one of the three instances is stopped after {WARM:,} answers and replaced on "
        f"its port once it has exited; the stream goes on until HAProxy has the replacement "
        f"UP, then {TAIL:,} requests more. A failed request is a 5xx or no "
        f"answer at all: a status code, or the client's exception (`ReadError`, "
        f"`RemoteProtocolError`: the connection closed without an answer). "
        f"The times are medians of the {ROUNDS} rounds; the last column includes the "
        f"replacement's start and the two health checks HAProxy needs to put it back."
    )


def main() -> None:
    results: dict[str, list[Run]] = {way.name: [] for way in WAYS}
    with load.Servers("graceful") as servers:
        for round_number in range(1, ROUNDS + 1):
            for way in WAYS:
                run = one_round(way, servers)
                results[way.name].append(run)
                print(
                    f"round {round_number}, {way.name}: {run.requests} requests, "
                    f"{run.failed} failed, exit {run.exit_code}, stop {run.stop_seconds:.2f}s, "
                    f"back {run.back_seconds:.2f}s",
                    flush=True,
                )
    stamp_line = stamp(["sanic", "httpx"], {"haproxy": ["haproxy", "-v"]})
    write_results(RESULTS, report(results), stamp_line, COMMAND)
