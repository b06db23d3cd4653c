"""Worker processes: what the page claims about fibonacci_service.py, fibonacci_cluster.py
and fibonacci_health_monitor.py.

Everything goes over real sockets. A request on a fresh connection may land on
any worker; one kept-alive connection always lands on the same one. Waits are
shortened by the examples' own settings (the health monitor's intervals), never
by dropping a check.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections import defaultdict

import httpx
import psutil
import pytest
from kit.examples import (
    RunningExample,
    StartExample,
    assert_output_is_shown,
    assert_refuses_to_start,
    extra_packages,
)
from kit.process import LOOPBACK, ROOT, free_port, wait_until
from kit.snippets import command, install_line

SERVICE = "scaling/fibonacci_service.py"
CLUSTER = "scaling/fibonacci_cluster.py"
MONITORED = "scaling/fibonacci_health_monitor.py"
INSTALL_SANIC_EXT = "snippets/scaling/workers_sanic_ext.sh"
ATTEMPTS = 200  # fresh connections before concluding that only one process answers
SHOWN_RESTART = ROOT / "snippets" / "scaling" / "workers_cluster_restart.out"

# (example, extra environment): the same app served by two worker managers
MANAGERS = {
    "sanic-workers": (SERVICE, {"WORKERS": "2"}),
    "hand-written-cluster": (CLUSTER, {"WORKERS": "2"}),
}
ALL_MODES = {"one-process": (SERVICE, {}), **MANAGERS}


def fresh(url: str) -> httpx.Response:
    """One request on a new TCP connection, closed afterwards."""
    return httpx.get(url, headers={"Connection": "close"}, timeout=30)


def pids_answering(service: RunningExample, want: int = 2, attempts: int = ATTEMPTS) -> set[int]:
    """Pids seen over fresh connections, until `want` distinct ones or `attempts` requests."""
    seen: set[int] = set()
    for _ in range(attempts):
        answer = fresh(f"{service.url}/health")
        if answer.status_code == 200:  # a restarted worker says 503 "starting" at first
            seen.add(answer.json()["pid"])
        if len(seen) >= want:
            break
    return seen


def start(run: StartExample, mode: dict[str, tuple[str, dict[str, str]]], key: str):
    example, env = mode[key]
    return run(example, env=env)


@pytest.fixture(scope="module", params=list(ALL_MODES))
def shared(request: pytest.FixtureRequest, run_shared_example: StartExample) -> RunningExample:
    return start(run_shared_example, ALL_MODES, request.param)


@pytest.fixture(params=list(MANAGERS))
def managed(request: pytest.FixtureRequest, run_example: StartExample) -> RunningExample:
    return start(run_example, MANAGERS, request.param)


def a_new_pid_answers(service: RunningExample, known: set[int]) -> bool:
    """True as soon as a fresh connection reaches a pid not in `known`.

    A bounded batch per call: `wait_until` calls it again, so a slow restart is
    waited for, while a quick one is seen at once.
    """
    for _ in range(20):
        try:
            answer = fresh(f"{service.url}/health")
        except httpx.TransportError:  # the killed worker's connection, already accepted
            continue
        if answer.status_code == 200 and answer.json()["pid"] not in known:
            return True
    return False


def worker_pids(service: RunningExample) -> set[int]:
    return {child.pid for child in psutil.Process(service.pid).children(recursive=True)}


def test_one_process_serves_every_request_itself(run_example: StartExample) -> None:
    service = run_example(SERVICE)
    assert pids_answering(service, attempts=50) == {service.pid}


def test_several_workers_answer_none_of_them_the_master(managed: RunningExample) -> None:
    pids = pids_answering(managed)
    assert len(pids) == 2
    assert managed.pid not in pids
    assert pids <= worker_pids(managed)


def test_fibonacci_answers_with_the_pid(shared: RunningExample) -> None:
    body = fresh(f"{shared.url}/fibonacci/20").json()
    assert body["n"] == 20
    assert body["fib"] == 6765
    assert isinstance(body["pid"], int)


def test_visits_are_counted_separately_by_each_worker(managed: RunningExample) -> None:
    counts: dict[int, list[int]] = defaultdict(list)
    for _ in range(ATTEMPTS):
        body = fresh(f"{managed.url}/visits").json()
        counts[body["pid"]].append(body["visits"])
        if len(counts) == 2 and sum(len(c) for c in counts.values()) >= 10:
            break
    assert len(counts) == 2
    total = sum(len(c) for c in counts.values())
    for seen in counts.values():
        # each process counts from 1 on its own: no answer knows the total
        assert seen == list(range(1, len(seen) + 1))
        assert max(seen) < total


def test_a_keep_alive_connection_sticks_to_one_worker(managed: RunningExample) -> None:
    assert len(pids_answering(managed)) == 2  # two workers are serving...
    with httpx.Client(base_url=managed.url, timeout=30) as client:
        pids = {client.get("/fibonacci/10").json()["pid"] for _ in range(50)}
    assert len(pids) == 1  # ...but one connection only ever reaches one of them


def test_the_cluster_replaces_a_killed_worker(run_example: StartExample) -> None:
    service = run_example(CLUSTER, env={"WORKERS": "2"})
    before = pids_answering(service)
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: a_new_pid_answers(service, before), 15, "a new worker pid after SIGKILL")
    assert service.alive()
    assert f"worker {victim} exited with -9; restarting in 0.1 s" in service.output()
    assert victim not in worker_pids(service)
    assert len(pids_answering(service)) == 2  # two workers again: the survivor and the new one
    assert service.stop() == 0
    master_lines = "".join(
        line
        for line in service.output().splitlines(keepends=True)
        if line.startswith(("master ", "worker "))
    )
    assert_output_is_shown(master_lines, SHOWN_RESTART, normalize=anonymous)


def anonymous(output: str) -> str:
    """Pids and the port change on every run; the story does not."""
    output = re.sub(r"(master|worker) \d+", r"\1 1234", output)
    return re.sub(r"on 127\.0\.0\.1:\d+", "on 127.0.0.1:4000", output)


def test_sanics_manager_does_not_replace_a_killed_worker(run_example: StartExample) -> None:
    service = run_example(SERVICE, env={"WORKERS": "2"})
    before = pids_answering(service)
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(victim), timeout=10, what="the worker to die")
    survivors = pids_answering(service, want=2, attempts=50)
    assert survivors == before - {victim}  # the other worker serves every request now
    assert service.alive()


def test_sigterm_stops_the_master_and_every_worker(managed: RunningExample) -> None:
    assert len(pids_answering(managed)) == 2
    children = psutil.Process(managed.pid).children(recursive=True)
    assert managed.stop() == 0
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []


def test_a_crash_loop_makes_the_master_give_up(run_example: StartExample) -> None:
    # A socket without SO_REUSEPORT holds the port: every worker fails to bind.
    # One worker: the policy is per worker, and one worker's exits come in order.
    with socket.socket() as blocker:
        port = free_port()
        blocker.bind((LOOPBACK, port))
        blocker.listen()
        service = run_example(CLUSTER, env={"PORT": str(port), "WORKERS": "1"}, ready="")
        service.process.wait(timeout=60)
    assert service.stop() == 1
    output = service.output()
    assert "Address already in use" in output
    delays = re.findall(r"exited with 1; restarting in (\d\.\d) s", output)
    assert delays == ["0.1", "0.2", "0.4", "0.8"]  # doubled after every quick exit in a row
    assert re.search(r"exited with 1; 5 quick exits in a row, giving up", output)


@pytest.mark.parametrize(
    ("example", "env", "message"),
    [
        (SERVICE, {"PORT": "abc"}, "PORT: Input should be a valid integer"),
        (SERVICE, {"PORT": "99999"}, "PORT: Input should be less than or equal to 65535"),
        (SERVICE, {"WORKERS": "0"}, "WORKERS: Input should be greater than 0"),
        (CLUSTER, {"WORKERS": "two"}, "WORKERS: Input should be a valid integer"),
        (CLUSTER, {"MIN_UPTIME": "-1"}, "MIN_UPTIME: Input should be greater than 0"),
        (CLUSTER, {"BACKOFF": "0"}, "BACKOFF: Input should be greater than 0"),
        (CLUSTER, {"MAX_QUICK_EXITS": "0"}, "MAX_QUICK_EXITS: Input should be greater than 0"),
        (CLUSTER, {"STOP_TIMEOUT": "soon"}, "STOP_TIMEOUT: Input should be a valid number"),
    ],
)
def test_a_bad_setting_exits_2_naming_it(example: str, env: dict[str, str], message: str) -> None:
    assert_refuses_to_start(example, env, message)


BAD_REQUESTS = [
    ("GET", "/fibonacci/0", 400),
    ("GET", "/fibonacci/36", 400),
    ("GET", "/fibonacci/many", 404),
    ("GET", "/nowhere", 404),
    ("POST", "/fibonacci/5", 405),
]


@pytest.mark.parametrize(("method", "path", "status"), BAD_REQUESTS)
def test_bad_input_gets_a_json_4xx(shared: RunningExample, method: str, path: str, status: int):
    response = httpx.request(method, shared.url + path, headers={"Connection": "close"})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    if status == 400:
        assert response.json()["message"] == "n must be between 1 and 35"
    assert fresh(f"{shared.url}/health").status_code == 200


# --- sanic-ext's health monitor -------------------------------------------------
# sanic-ext is not in the examples' dependencies: installed, it extends every Sanic
# app in the environment. The tests install the requirement of the page's
# `pip install` line, with uv (the test environment has no pip), into a directory
# of their own, and put it on PYTHONPATH for the processes that should have it.

# Heartbeats every 0.25 s; 4 s of silence is a missed check and one missed check
# a restart. 4 s, not less: the replacement must start and report within it, or
# the monitor restarts it again, and starting a worker on a busy machine takes
# seconds (the page explains this).
FAST_MONITOR = {
    "WORKERS": "2",
    "HEALTH_REPORT_INTERVAL": "0.25",
    "HEALTH_MISSED_THRESHOLD": "4",
    "HEALTH_MAX_MISSES": "1",
}


@pytest.fixture(scope="module")
def sanic_ext() -> dict[str, str]:
    """The environment that adds sanic-ext, as the page's `pip install` line asks (the
    kit installs an example's docstring install line for its processes only)."""
    _, argv = command(INSTALL_SANIC_EXT)
    assert argv[:2] == ["pip", "install"], argv
    assert install_line(MONITORED) == argv[2:], "the docstring's install line differs"
    env = extra_packages(MONITORED)
    probe = subprocess.run(
        [sys.executable, "-c", "import sanic_ext; print(sanic_ext.__version__)"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert argv[2:] == [f"sanic-ext=={probe.stdout.strip()}"]
    return env


@pytest.fixture(scope="module")
def monitored(run_shared_example: StartExample) -> RunningExample:
    return run_shared_example(MONITORED, env=FAST_MONITOR)  # the kit adds sanic-ext


def test_the_health_monitor_adds_nothing_else_of_sanic_ext(monitored: RunningExample) -> None:
    # bad input: the same JSON errors as fibonacci_service, and no route sanic-ext adds
    for method, path, status in [*BAD_REQUESTS, ("OPTIONS", "/fibonacci/5", 405)]:
        response = httpx.request(method, monitored.url + path, headers={"Connection": "close"})
        assert response.status_code == status, (method, path)
        assert response.headers["content-type"] == "application/json"
    assert fresh(f"{monitored.url}/docs").status_code == 404  # no OpenAPI pages either
    assert "Sanic Extensions:" not in monitored.output()  # the banner of a full extension


def test_the_health_monitor_replaces_a_killed_worker(monitored: RunningExample) -> None:
    before = pids_answering(monitored)
    assert len(before) == 2
    assert managed_by(monitored) >= before
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: a_new_pid_answers(monitored, before), 15, "a new worker pid after SIGKILL")
    assert monitored.alive()
    assert "Missed health check for Sanic-Server-" in monitored.output()
    after = pids_answering(monitored)
    assert len(after) == 2  # two workers again: the survivor and the new one
    assert victim not in after
    assert after <= managed_by(monitored)
    assert monitored.stop() == 0


def managed_by(service: RunningExample) -> set[int]:
    return {child.pid for child in psutil.Process(service.pid).children()}


def test_installed_sanic_ext_extends_every_other_app(
    run_example: StartExample, sanic_ext: dict[str, str]
) -> None:
    """Why sanic-ext stays out of the shared dependencies: it changes other examples."""
    plain = run_example(SERVICE)
    extended = run_example(SERVICE, env=sanic_ext)
    assert httpx.options(f"{plain.url}/fibonacci/5").status_code == 405
    assert fresh(f"{plain.url}/docs").status_code == 404
    assert httpx.options(f"{extended.url}/fibonacci/5").status_code == 204  # automatic OPTIONS
    assert httpx.head(f"{extended.url}/fibonacci/5").status_code == 200  # automatic HEAD
    assert fresh(f"{extended.url}/docs").status_code == 200  # OpenAPI pages
    assert fresh(f"{extended.url}/docs/openapi.json").json()["openapi"].startswith("3.")
