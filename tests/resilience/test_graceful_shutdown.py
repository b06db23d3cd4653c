"""Graceful shutdown under load (docs/resilience/graceful_shutdown.md), done for real.

HAProxy runs with snippets/resilience/graceful_haproxy.cfg, started by the page's
own script, in front of three examples/resilience/graceful_recipe_api.py on free
ports. A client thread sends GET /recipes/42 through HAProxy, one request after
another, while one instance gets SIGTERM and a replacement starts on its port, as
a supervisor's restart does. The stream runs until the replacement is back in
rotation plus a fixed number of requests (and never past a hard cap).

An observer thread samples HAProxy's stats page all along: the restarted server's
status and `stot` (requests HAProxy has sent it), with whether the old process was
still running at that moment. The claims are orderings read from those samples,
never durations: no outcome depends on the machine's speed.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from kit.examples import RunningExample, StartExample
from kit.process import ROOT, wait_until
from kit.services.haproxy import RunningHaproxy, StartHaproxy

EXAMPLE = "resilience/graceful_recipe_api.py"
CFG = "snippets/resilience/graceful_haproxy.cfg"
PAGE = ROOT / "docs/resilience/graceful_shutdown.md"
BACKEND = "recipe_api"
BOUND = 30.0  # seconds: a generous bound for a state to be reached, never a verdict
TAIL = 200  # requests the stream sends once the replacement is back in rotation
CAP = 20_000  # a hard cap on the stream's requests, whatever happens
# The instance each test restarts, and its DRAIN_SECONDS ("" keeps the default).
GRACEFUL, CONTROL = "recipe1", "recipe3"
DRAINS = {"recipe1": "", "recipe2": "", "recipe3": "0"}


# --- three instances behind HAProxy, for the whole module ------------------------------


@dataclass
class Pool:
    proxy: RunningHaproxy
    start: StartExample
    instances: dict[str, RunningExample]

    def state(self, name: str) -> str:
        """UP, DOWN...: without the check counter ("UP 1/2" is still in rotation)."""
        return self.proxy.server(BACKEND, name)["status"].split()[0]

    def all_up(self) -> bool:
        return all(self.proxy.server(BACKEND, name)["status"] == "UP" for name in self.instances)

    def launch(self, name: str, port: int | None = None) -> RunningExample:
        env = {"DRAIN_SECONDS": DRAINS[name]} if DRAINS[name] else {}
        self.instances[name] = self.start(EXAMPLE, env=env, port=port, ready="")
        return self.instances[name]


@pytest.fixture(scope="module")
def pool(
    run_shared_example: StartExample, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pool]:
    pool = Pool(None, run_shared_example, {})  # type: ignore[arg-type]
    for name in DRAINS:  # started together, then waited for
        pool.launch(name)
    for instance in pool.instances.values():
        wait_until(lambda i=instance: answers(i.url + "/health"), BOUND, f"{instance.port}")
    ports = {f"BACKEND{i}_PORT": str(pool.instances[f"recipe{i}"].port) for i in (1, 2, 3)}
    pool.proxy = StartHaproxy(tmp_path_factory.mktemp("haproxy"))(CFG, ports)
    try:
        wait_until(pool.all_up, BOUND, "the three instances UP")
        yield pool
    finally:
        assert pool.proxy.stop() == 0, pool.proxy.output()
        # One signal each, all at once, so that their drains run side by side; then
        # each exit. (A second SIGTERM once Sanic's shutdown is under way would meet
        # no handler any more: the default action, exit by signal.)
        for instance in pool.instances.values():
            if instance.alive():
                instance.process.send_signal(signal.SIGTERM)
        for instance in pool.instances.values():
            if not instance.stopped:
                instance.process.wait(BOUND)
                assert instance.stop() == 0, instance.output()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


# --- a client and an observer ------------------------------------------------------------


@dataclass
class Stream:
    """A thread sending GET /recipes/42 through HAProxy, one request after another."""

    url: str
    pids: list[int] = field(default_factory=list)  # who answered each request
    failures: list[str] = field(default_factory=list)  # 5xx, or no answer at all
    late: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def run(self) -> None:
        tail = 0
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while tail < TAIL and len(self.pids) + len(self.failures) < CAP:
                tail += self.late.is_set()
                try:
                    answer = client.get("/recipes/42")
                except httpx.HTTPError as error:
                    self.failures.append(repr(error))
                    continue
                if answer.status_code == 200:
                    self.pids.append(answer.json()["producer_pid"])
                else:
                    self.failures.append(f"{answer.status_code} {answer.text[:100]}")

    def __enter__(self) -> Stream:
        self.thread = threading.Thread(target=self.run)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.late.set()  # TAIL more requests, then stop
        assert self.thread is not None
        self.thread.join(BOUND)
        assert not self.thread.is_alive(), "the stream did not stop"


@dataclass(frozen=True)
class Sample:
    status: str  # "UP", "UP 1/2", "DOWN", "DOWN 1/2"...
    stot: int  # requests HAProxy has sent this server so far
    alive: bool  # the old process, read after the stats: still running then
    replaced: bool  # the replacement had been started


class Observer:
    """Samples one server's row of HAProxy's stats in a thread, as often as it can."""

    def __init__(self, pool: Pool, name: str) -> None:
        self.pool, self.name = pool, name
        self.old = pool.instances[name]
        self.replaced = threading.Event()
        self.samples: list[Sample] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        while not self.done.is_set():
            replaced = self.replaced.is_set()
            row = self.pool.proxy.server(BACKEND, self.name)
            self.samples.append(Sample(row["status"], int(row["stot"]), self.old.alive(), replaced))
            time.sleep(0.01)

    def __enter__(self) -> Observer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(BOUND)


def restart(pool: Pool, name: str, observer: Observer, sig: int = signal.SIGTERM) -> int:
    """Stop one instance with `sig`, start its replacement on the same port once it has
    exited, and wait until HAProxy has the replacement UP. Returns the old exit code."""
    old = pool.instances[name]
    code = old.stop(sig, timeout=BOUND)
    # HAProxy must have seen it leave first: right after a quick exit its state can
    # still read UP from the last check, and that UP says nothing of the replacement.
    wait_until(lambda: pool.state(name) != "UP", BOUND, f"HAProxy to take {name} out")
    observer.replaced.set()
    pool.launch(name, port=old.port)
    wait_until(lambda: pool.state(name) == "UP", BOUND, f"{name}'s replacement UP")
    return code


# --- the graceful restart ----------------------------------------------------------------


def test_a_graceful_restart_drops_no_request(pool: Pool) -> None:
    wait_until(pool.all_up, BOUND, "the three instances UP")
    old = pool.instances[GRACEFUL]
    with Stream(pool.proxy.url) as stream, Observer(pool, GRACEFUL) as observer:
        wait_until(lambda: old.pid in stream.pids, BOUND, "the stream to reach the old instance")
        code = restart(pool, GRACEFUL, observer)
    new = pool.instances[GRACEFUL]

    assert stream.failures == [], stream.failures[:5]  # zero failed requests
    assert code == 0, old.output()
    assert "SIGTERM: draining for 1s, then stopping" in old.output()
    # HAProxy took it out of rotation (its /health said 503) while it still ran...
    down = [s for s in observer.samples if s.status == "DOWN" and not s.replaced]
    assert down, observer.samples
    assert down[0].alive, "HAProxy saw it DOWN only after it had stopped"
    # ...and from then on sent it no request at all, until the replacement came.
    assert {s.stot for s in down} == {down[0].stot}, down
    # Every instance served, the old one before and the replacement after.
    assert set(stream.pids) == {i.pid for i in pool.instances.values()} | {old.pid}
    assert new.pid in stream.pids[-TAIL:]


def test_without_the_drain_requests_fail(pool: Pool) -> None:
    """The control: the same restart with DRAIN_SECONDS=0 is Sanic's own graceful
    shutdown alone. The process still finishes its requests in flight and exits with
    0, but HAProxy goes on sending it new ones until its checks fail."""
    wait_until(pool.all_up, BOUND, "the three instances UP")
    old = pool.instances[CONTROL]
    with Stream(pool.proxy.url) as stream, Observer(pool, CONTROL) as observer:
        wait_until(lambda: old.pid in stream.pids, BOUND, "the stream to reach the old instance")
        code = restart(pool, CONTROL, observer)

    assert code == 0, old.output()  # a clean exit, as far as the process can tell
    assert stream.failures, "no request failed: this test could not tell a lossy restart"
    for failure in stream.failures:  # refused by the closed port, or cut off
        assert re.match(r"50[23] |(ReadError|RemoteProtocolError|ConnectError)", failure)
    assert pool.instances[CONTROL].pid in stream.pids[-TAIL:]


# --- one instance, on its own ------------------------------------------------------------


def test_draining_answers_503_on_health_and_still_serves(run_example: StartExample) -> None:
    """During the drain: /health 503 "draining", /recipes still 200 (closing the
    connection), /live 200. A second signal ends the drain at once, exit code 0."""
    instance = run_example(EXAMPLE, env={"DRAIN_SECONDS": "60"})
    instance.process.send_signal(signal.SIGTERM)
    with httpx.Client(base_url=instance.url, timeout=5) as client:
        wait_until(lambda: client.get("/health").status_code == 503, BOUND, "503")
        assert client.get("/health").json() == {"status": "draining"}
        recipe = client.get("/recipes/42")
        assert recipe.status_code == 200
        assert recipe.json()["producer_pid"] == instance.pid
        assert recipe.headers["connection"] == "close"
        assert client.get("/live").json() == {"status": "alive"}
    assert instance.alive()
    assert instance.stop(signal.SIGINT) == 0  # 60 s of drain left: skipped
    assert "SIGINT again: stopping now" in instance.output()


def test_the_default_drain_outlasts_the_checks() -> None:
    """DRAIN_SECONDS' default covers the cfg's `fall` checks `inter` apart, with room."""
    cfg = (ROOT / CFG).read_text()
    match = re.search(r"check inter (\d+)ms fall (\d+) rise (\d+)", cfg)
    assert match, "no `check inter ...ms fall ... rise ...` in the cfg"
    inter, fall = int(match.group(1)) / 1000, int(match.group(2))
    source = (ROOT / "examples" / EXAMPLE).read_text()
    default = float(re.search(r"drain_seconds: float = Field\(([\d.]+),", source).group(1))  # type: ignore[union-attr]
    assert fall * inter * 2 <= default  # out of rotation in half the drain at most
    assert "retries 0" in cfg  # nothing hides a lost request
    assert re.search(r"\(default `1`:\s+five health checks", source)
    assert default / inter == 5


def test_the_page_shows_what_the_tests_run() -> None:
    text = PAGE.read_text()
    for included in [
        "snippets/resilience/graceful_haproxy.sh",
        f"{CFG}:backend",
        f"examples/{EXAMPLE}:shutdown",
        f"examples/{EXAMPLE}:probes",
        "snippets/resilience/graceful_restart.md",
    ]:
        assert f'--8<-- "{included}"' in text, included
    assert f"python examples/{EXAMPLE}" in text
