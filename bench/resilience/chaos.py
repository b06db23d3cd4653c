"""A longer chaos run: what clients see under injected faults, and after they stop.

Three examples/resilience/chaos_recipe_api.py behind HAProxy started with
snippets/resilience/chaos_haproxy.cfg, each injecting faults at the rates of
tests/resilience/test_chaos.py (crash 0.5 %, pause 1 % for 100 ms, delay 5 % for
50 ms, 503 5 %, drop 2 %). This program plays the supervisor: an instance that
exits is started again on its port (with the next seed). CLIENTS threads each
send GET /recipes/42 at a steady pace (RATE requests per second each, as real
clients do, rather than as fast as they can), for DURATION seconds per phase:

1. straight at one instance, no retry anywhere;
2. through HAProxy: each request's first attempt is what a client without
   retries sees; its final result is after stamina's retries (3 more attempts,
   backoff from 50 ms) for the GET;
3. chaos switched off (SIGUSR1 to every instance): the time until every instance
   says so and HAProxy has all three UP, then RECOVERY requests more.

Reports the faults injected per kind (counted from the instances' log lines),
the failed requests per phase and what they were, and the recovery. Writes
snippets/resilience/chaos.md.
"""

from __future__ import annotations

import re
import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import stamina
from kit.examples import RunningExample, start_example
from kit.process import wait_until
from kit.services.haproxy import RunningHaproxy

from bench import load
from bench.common import duration, markdown_table, stamp, write_results

RESULTS = "resilience/chaos.md"
COMMAND = "./nox -s bench -- chaos"
EXAMPLE = "resilience/chaos_recipe_api.py"
CFG = "snippets/resilience/chaos_haproxy.cfg"
BACKEND = "recipe_api"
NAMES = ("recipe1", "recipe2", "recipe3")
CHAOS = {
    "CHAOS_CRASH_RATE": "0.005",
    "CHAOS_PAUSE_RATE": "0.01",
    "CHAOS_PAUSE_MS": "100",
    "CHAOS_DELAY_RATE": "0.05",
    "CHAOS_DELAY_MS": "50",
    "CHAOS_ERROR_RATE": "0.05",
    "CHAOS_DROP_RATE": "0.02",
}
KINDS = ("crash", "pause", "delay", "error", "drop")
CLIENTS = 4
RATE = 50.0  # requests per second per client thread
RECOVERY = 1000
WAIT = 60.0


class Fleet:
    """Three instances, restarted when they exit; chaos on or off for the next start."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.instances: dict[str, RunningExample] = {}
        self.chaos = True
        self.crashes: list[int | None] = []
        self.restart_seconds: list[float] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.supervise, daemon=True)

    def launch(self, name: str, port: int | None = None) -> RunningExample:
        seed = 100 * (NAMES.index(name) + 1) + len(self.crashes)
        env = {**CHAOS, "CHAOS_SEED": str(seed)} if self.chaos else {}
        self.instances[name] = start_example(EXAMPLE, self.log_dir, env=env, port=port, ready="")
        return self.instances[name]

    def supervise(self) -> None:
        while not self.done.wait(0.02):
            with self.lock:
                exited = [(n, i) for n, i in self.instances.items() if not i.alive()]
                for name, instance in exited:
                    self.crashes.append(instance.stop())
                    found = time.monotonic()
                    new = self.launch(name, port=instance.port)
                    threading.Thread(target=self.time_restart, args=(new, found)).start()

    def time_restart(self, instance: RunningExample, found: float) -> None:
        try:
            wait_until(lambda: health(instance) is not None, WAIT, "restart")
        except Exception:  # it crashed again meanwhile: not counted
            return
        self.restart_seconds.append(time.monotonic() - found)

    def chaos_off(self) -> None:
        with self.lock:
            self.chaos = False
        for name in NAMES:
            wait_until(lambda n=name: health(self.instances[n]) is not None, WAIT, name)
            with self.lock:
                if self.instances[name].alive():
                    self.instances[name].process.send_signal(signal.SIGUSR1)
        for name in NAMES:
            wait_until(lambda n=name: health(self.instances[n]) == "off", WAIT, f"{name} off")

    def log(self) -> str:
        return "".join({i.log_path: i.output() for i in self.instances.values()}.values())

    def stop(self) -> None:
        self.done.set()
        self.thread.join(WAIT)
        for instance in self.instances.values():
            assert instance.stop() == 0, instance.output()[-2000:]


def health(instance: RunningExample) -> str | None:
    try:
        return httpx.get(instance.url + "/health", timeout=1).json()["chaos"]
    except (httpx.TransportError, ValueError):
        return None


def injected(log: str) -> Counter[str]:
    return Counter(re.findall(r"chaos: (crash|pause|delay|error|drop)", log))


def outcome(call: Callable[[], httpx.Response]) -> str:
    try:
        return str(call().status_code)
    except httpx.HTTPError as error:
        return type(error).__name__


class Failed(Exception):
    pass


def paced(url: str, seconds: float, client_retries: bool) -> tuple[Counter[str], Counter[str]]:
    """CLIENTS threads at RATE requests per second each, for `seconds`: the first
    attempts' outcomes and the final ones."""
    first: Counter[str] = Counter()
    final: Counter[str] = Counter()
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            start = time.monotonic()
            for n in range(int(seconds * RATE)):
                time.sleep(max(0.0, start + n / RATE - time.monotonic()))
                attempts: list[str] = []
                try:
                    for attempt in stamina.retry_context(
                        on=Failed, attempts=4 if client_retries else 1, wait_initial=0.05,
                        wait_max=0.5,
                    ):  # fmt: skip
                        with attempt:
                            attempts.append(outcome(lambda: client.get("/recipes/42")))
                            if attempts[-1] != "200":
                                raise Failed(attempts[-1])
                except Failed:
                    pass
                with lock:
                    first[attempts[0]] += 1
                    final[attempts[-1]] += 1

    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return first, final


def failed(counts: Counter[str]) -> str:
    total = sum(counts.values())
    bad = total - counts["200"]
    return f"{bad:,} of {total:,} ({100 * bad / total:.2f} %)"


def what(counts: Counter[str]) -> str:
    kinds = [(k, c) for k, c in counts.most_common() if k != "200"]
    return ", ".join(f"{c} {k}" for k, c in kinds) or "nothing"


def all_up(proxy: RunningHaproxy) -> bool:
    return all(proxy.server(BACKEND, n)["status"] == "UP" for n in NAMES)


def main() -> None:
    seconds = duration(30)
    with load.Servers("chaos") as servers:
        fleet = Fleet(servers.log_dir)
        try:
            for name in NAMES:
                fleet.launch(name)
            for name in NAMES:
                wait_until(lambda n=name: health(fleet.instances[n]) == "on", WAIT, name)
            fleet.thread.start()
            ports = {
                f"BACKEND{i}_PORT": str(fleet.instances[n].port) for i, n in enumerate(NAMES, 1)
            }
            proxy = servers.haproxy(CFG, ports)
            wait_until(lambda: all_up(proxy), WAIT, "all UP")

            before = injected(fleet.log())
            _, alone = paced(fleet.instances["recipe1"].url, seconds, client_retries=False)
            alone_faults = injected(fleet.log()) - before
            print(f"one instance: {failed(alone)}: {what(alone)}", flush=True)

            wait_until(lambda: all_up(proxy), WAIT, "all UP")
            before = injected(fleet.log())
            retried = int(proxy.server(BACKEND, "BACKEND")["wretr"])
            first, final = paced(proxy.url, seconds, client_retries=True)
            fleet_faults = injected(fleet.log()) - before
            retries = int(proxy.server(BACKEND, "BACKEND")["wretr"]) - retried
            print(f"HAProxy: {failed(first)}; + stamina: {failed(final)}", flush=True)

            switched = time.monotonic()
            fleet.chaos_off()
            wait_until(lambda: all_up(proxy), WAIT, "all UP")
            recovered = time.monotonic() - switched
            before = injected(fleet.log())
            with httpx.Client(base_url=proxy.url, timeout=10) as client:
                after = Counter(outcome(lambda: client.get("/recipes/42")) for _ in range(RECOVERY))
            after_faults = sum((injected(fleet.log()) - before).values())
            print(f"recovery {recovered:.2f}s; then {failed(after)}", flush=True)
        finally:
            fleet.stop()

    def faults(counts: Counter[str]) -> str:
        return ", ".join(f"{counts[k]} {k}" for k in KINDS)

    rows = [
        ["straight at one instance, no retry", faults(alone_faults),
         failed(alone), what(alone)],
        ["through HAProxy (its retries), no client retry", faults(fleet_faults),
         failed(first), what(first)],
        ["through HAProxy + stamina retries in the client", "(the same run)",
         failed(final), what(final)],
        [f"chaos off, the next {RECOVERY:,} through HAProxy", f"{after_faults} faults",
         failed(after), what(after)],
    ]  # fmt: skip
    restart = statistics.median(fleet.restart_seconds) if fleet.restart_seconds else float("nan")
    body = (
        markdown_table(["clients", "faults injected meanwhile", "failed", "what failed"], rows)
        + f"\n\n{CLIENTS} client threads, each sending `GET /recipes/42` {RATE:g} times a "
        f"second for {seconds:g} s per run (chaos rates as in `tests/resilience/test_chaos.py`: "
        + ", ".join(f"`{k}={v}`" for k, v in CHAOS.items())
        + "). A failed request is a 5xx or no answer at all: the status, or the client's "
        "exception (`ConnectError`: refused while the instance restarts; `RemoteProtocolError`, "
        "`ReadError`: the connection closed without an answer). "
        f"HAProxy retried {retries:,} times during its run. "
        f"Crashed instances were restarted by the benchmark, in {restart:.2f} s "
        f"(median of {len(fleet.restart_seconds)}: from the exit seen to `/health` answering). "
        f"Chaos switched off (SIGUSR1 to each instance) to every instance off and all three UP "
        f"in HAProxy: {recovered:.2f} s."
    )
    stamp_line = stamp(["sanic", "httpx", "stamina"], {"haproxy": ["haproxy", "-v"]})
    write_results(RESULTS, body, stamp_line, COMMAND)
