"""Resilience testing with chaos (docs/resilience/chaos.md), done for real.

Three examples/resilience/chaos_recipe_api.py behind HAProxy started with
snippets/resilience/chaos_haproxy.cfg (retries on another server, a breaker per
server, health checks), each instance injecting crashes, pauses, delays, 503s
and dropped connections at the rates of CHAOS below. This module plays the
supervisor: a thread restarts every instance that crashed (exit code 86) on its
port, as systemd's `Restart=on-failure` or Kubernetes would.

The claims are counts, never durations: the share of requests that fail as a
client sees them, with and without retries, and all of the next requests after
chaos is switched off. Seeds make each instance's faults reproducible; which
requests they fall on depends on how the requests interleave.
"""

from __future__ import annotations

import re
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
import stamina
from kit.examples import RunningExample, StartExample
from kit.process import ROOT, wait_until
from kit.services.haproxy import RunningHaproxy, StartHaproxy

EXAMPLE = "resilience/chaos_recipe_api.py"
CFG = "snippets/resilience/chaos_haproxy.cfg"
PAGE = ROOT / "docs/resilience/chaos.md"
BACKEND = "recipe_api"
NAMES = ("recipe1", "recipe2", "recipe3")
CRASH_EXIT_CODE = 86
CHAOS = {
    "CHAOS_CRASH_RATE": "0.005",
    "CHAOS_PAUSE_RATE": "0.01",
    "CHAOS_PAUSE_MS": "100",
    "CHAOS_DELAY_RATE": "0.05",
    "CHAOS_DELAY_MS": "50",
    "CHAOS_ERROR_RATE": "0.05",
    "CHAOS_DROP_RATE": "0.02",
}
REQUESTS = 600  # GET /recipes/42 per run
CLIENTS = 4  # concurrent client threads
BOUND = 0.05  # the stated bound on the share of requests a client sees fail
RECOVERY = 100  # requests after chaos is off: every one must succeed
WAIT = 30.0  # seconds: a generous bound for a state to be reached, never a verdict


# --- three supervised instances behind HAProxy, for the whole module --------------------


@dataclass
class Fleet:
    start: StartExample
    instances: dict[str, RunningExample] = field(default_factory=dict)
    chaos_on: dict[str, bool] = field(default_factory=dict)  # how each was started
    crashes: list[tuple[str, int | None]] = field(default_factory=list)  # (name, exit code)
    chaos: bool = True  # what a restart gets
    proxy: RunningHaproxy | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)

    def launch(self, name: str, port: int | None = None) -> None:
        """Start (or restart) one instance without waiting: its own seed each time."""
        seed = 100 * (NAMES.index(name) + 1) + len(self.crashes)
        env = {**CHAOS, "CHAOS_SEED": str(seed)} if self.chaos else {}
        self.instances[name] = self.start(EXAMPLE, env=env, port=port, ready="")
        self.chaos_on[name] = self.chaos

    def supervise(self) -> None:
        """The supervisor: restart whatever exited, on the same port, until told to stop."""
        while not self.done.wait(0.02):
            with self.lock:
                for name, instance in list(self.instances.items()):
                    if not instance.alive():
                        self.crashes.append((name, instance.stop()))  # records the exit code
                        self.launch(name, port=instance.port)

    def serving(self, name: str) -> bool:
        try:
            return httpx.get(self.instances[name].url + "/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def all_up(self) -> bool:
        assert self.proxy is not None
        return all(self.proxy.server(BACKEND, name)["status"] == "UP" for name in NAMES)

    def backend(self) -> dict[str, str]:
        """The backend's row of HAProxy's stats: `wretr` counts its retries."""
        assert self.proxy is not None
        return self.proxy.server(BACKEND, "BACKEND")

    def chaos_off(self) -> None:
        """SIGUSR1 to every instance started with chaos, once it serves (its handler is in
        place by then); a restart from now on starts without chaos. Returns once each
        instance says so on /health."""
        with self.lock:
            self.chaos = False
            started_with_chaos = [n for n in NAMES if self.chaos_on[n]]
        for name in started_with_chaos:
            wait_until(lambda n=name: self.serving(n) or not self.chaos_on[n], WAIT, name)
            with self.lock:
                if self.chaos_on[name] and self.instances[name].alive():
                    self.instances[name].process.send_signal(signal.SIGUSR1)
        for name in NAMES:
            wait_until(lambda n=name: health(self.instances[n]) == "off", WAIT, f"{name} off")

    def log(self) -> str:
        """Every instance's output so far, the crashed ones' too (a restart on the same
        port appends to the same log file)."""
        return "".join({i.log_path: i.output() for i in self.instances.values()}.values())


def health(instance: RunningExample) -> str | None:
    """The chaos state /health reports (none while it says "starting")."""
    try:
        return httpx.get(instance.url + "/health", timeout=1).json().get("chaos")
    except (httpx.TransportError, ValueError):
        return None


@pytest.fixture(scope="module")
def fleet(
    run_shared_example: StartExample, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    fleet = Fleet(run_shared_example)
    for name in NAMES:  # started together, then waited for
        fleet.launch(name)
    for name in NAMES:
        wait_until(lambda n=name: fleet.serving(n), WAIT, f"{name} to serve")
    supervisor = threading.Thread(target=fleet.supervise)
    supervisor.start()
    ports = {f"BACKEND{i}_PORT": str(fleet.instances[n].port) for i, n in enumerate(NAMES, 1)}
    fleet.proxy = StartHaproxy(tmp_path_factory.mktemp("haproxy"))(CFG, ports)
    try:
        wait_until(fleet.all_up, WAIT, "the three instances UP")
        yield fleet
    finally:
        fleet.chaos_off()  # no crash during the clean stop the fixture requires
        fleet.done.set()
        supervisor.join(WAIT)
        assert fleet.proxy.stop() == 0, fleet.proxy.output()


# --- clients ---------------------------------------------------------------------------


class Failed(Exception):
    """A 5xx or no answer at all, raised so that stamina retries it."""


@dataclass
class Outcomes:
    """What the client saw: per request, its first attempt and its final result."""

    first: Counter[str] = field(default_factory=Counter)
    final: Counter[str] = field(default_factory=Counter)

    @staticmethod
    def share_failed(counts: Counter[str]) -> float:
        return (sum(counts.values()) - counts["200"]) / sum(counts.values())


def outcome(call: Callable[[], httpx.Response]) -> str:
    """ "200", "503"... or the client's exception: "RemoteProtocolError" (no answer)."""
    try:
        return str(call().status_code)
    except httpx.HTTPError as error:
        return type(error).__name__


def stream(url: str, requests: int, client_retries: bool) -> Outcomes:
    """`requests` GET /recipes/42 from CLIENTS threads; with `client_retries`, each
    retried with stamina (3 more attempts, backoff from 50 ms) on a 5xx or no answer."""
    seen = Outcomes()
    lock = threading.Lock()

    def one(client: httpx.Client) -> None:
        first = final = None
        try:
            for attempt in stamina.retry_context(
                on=Failed,
                attempts=4 if client_retries else 1,
                wait_initial=0.05,
                wait_max=0.5,
            ):
                with attempt:
                    final = outcome(lambda: client.get("/recipes/42"))
                    first = first or final
                    if not final.startswith("2"):
                        raise Failed(final)
        except Failed:
            pass
        with lock:
            seen.first[first or ""] += 1
            seen.final[final or ""] += 1

    def worker(count: int) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            for _ in range(count):
                one(client)

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(worker, [requests // CLIENTS] * CLIENTS))
    return seen


def injected(log: str) -> Counter[str]:
    return Counter(re.findall(r"chaos: (crash|pause|delay|error|drop)", log))


# --- the run ---------------------------------------------------------------------------


def test_under_chaos_clients_behind_haproxy_stay_under_the_bound(fleet: Fleet) -> None:
    """Faults of every kind are injected; HAProxy's retries, breaker and checks (and a
    client retrying its GETs) keep the share of failed requests under BOUND."""
    wait_until(fleet.all_up, WAIT, "the three instances UP")
    retried = int(fleet.backend()["wretr"])
    seen = stream(fleet.proxy.url, REQUESTS, client_retries=True)  # type: ignore[union-attr]

    assert sum(seen.final.values()) == REQUESTS
    assert Outcomes.share_failed(seen.final) < BOUND, seen.final
    assert Outcomes.share_failed(seen.first) < BOUND, seen.first  # HAProxy's retries alone
    faults = injected(fleet.log())
    assert faults["error"] + faults["drop"] >= 0.02 * REQUESTS, faults  # chaos was real
    assert faults["delay"], faults
    assert faults["pause"], faults
    assert int(fleet.backend()["wretr"]) > retried  # HAProxy did retry: that is why


def test_without_retries_the_same_chaos_breaks_the_bound(fleet: Fleet) -> None:
    """The control: the same requests straight at one instance, no retry anywhere."""
    recipe1 = fleet.instances["recipe1"]
    wait_until(lambda: fleet.serving("recipe1"), WAIT, "recipe1 to serve")
    before = injected(fleet.log())
    seen = stream(fleet.instances["recipe1"].url, REQUESTS, client_retries=False)

    assert Outcomes.share_failed(seen.final) > BOUND, seen.final
    faults = injected(fleet.log()) - before
    assert seen.final["503"] == faults["error"], (seen.final, faults)  # every 503 is chaos
    assert recipe1.url == fleet.instances["recipe1"].url  # a restart keeps the port


def test_crashed_instances_were_restarted(fleet: Fleet) -> None:
    """Every exit so far was the layer's crash (86), logged first; the supervisor
    restarted each one, and HAProxy has all three back in rotation."""
    assert fleet.crashes, "no crash in the runs so far: raise CHAOS_CRASH_RATE"
    assert {code for _, code in fleet.crashes} == {CRASH_EXIT_CODE}, fleet.crashes
    assert injected(fleet.log())["crash"] == len(fleet.crashes)
    wait_until(fleet.all_up, WAIT, "the three instances UP again")


def test_when_chaos_stops_the_service_recovers(fleet: Fleet) -> None:
    fleet.chaos_off()
    wait_until(fleet.all_up, WAIT, "the three instances UP")
    before = injected(fleet.log())
    with httpx.Client(base_url=fleet.proxy.url, timeout=10) as client:  # type: ignore[union-attr]
        statuses = Counter(outcome(lambda: client.get("/recipes/42")) for _ in range(RECOVERY))
    assert statuses == {"200": RECOVERY}  # no retry needed: every one succeeds
    assert injected(fleet.log()) == before  # and no fault was injected


# --- the layer, one instance at a time --------------------------------------------------


def faults_in_order(instance: RunningExample, count: int) -> list[str]:
    with httpx.Client(base_url=instance.url, timeout=10) as client:
        return [outcome(lambda: client.get("/recipes/42")) for _ in range(count)]


def test_a_seed_replays_the_same_faults(run_example: StartExample) -> None:
    env = {"CHAOS_ERROR_RATE": "0.3", "CHAOS_DROP_RATE": "0.2", "CHAOS_SEED": "7"}
    envs = [env, env, {**env, "CHAOS_SEED": "8"}]
    instances = [run_example(EXAMPLE, env=e, ready="") for e in envs]  # started side by side
    for instance in instances:
        wait_until(lambda i=instance: health(i) == "on", WAIT, f"{instance.port} to serve")
    *runs, other = [faults_in_order(instance, 40) for instance in instances]
    assert runs[0] == runs[1]
    assert other != runs[0]
    assert {"200", "503", "RemoteProtocolError"} == set(runs[0])  # a drop: no answer


def test_a_crash_exits_86_after_a_log_line(run_example: StartExample) -> None:
    instance = run_example(EXAMPLE, env={"CHAOS_CRASH_RATE": "1"})
    assert httpx.get(instance.url + "/health").json() == {"status": "ok", "chaos": "on"}
    with pytest.raises(httpx.RemoteProtocolError):  # the connection ends, no answer
        httpx.get(instance.url + "/recipes/42")
    instance.process.wait(WAIT)
    assert instance.stop() == CRASH_EXIT_CODE  # it had exited: this reads the code
    assert "chaos: crash, exit code 86" in instance.output()


def test_the_page_shows_what_the_tests_run() -> None:
    text = PAGE.read_text()
    for included in [
        "snippets/resilience/chaos_haproxy.sh",
        f"{CFG}:backend",
        "examples/resilience/chaos.py:inject",
        "examples/resilience/chaos.py:settings",
        f"examples/{EXAMPLE}:app",
        "snippets/resilience/chaos.md",
    ]:
        assert f'--8<-- "{included}"' in text, included
    assert f"python examples/{EXAMPLE}" in text
