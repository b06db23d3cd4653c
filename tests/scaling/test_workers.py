"""Worker processes: what the page claims about fibonacci_service.py and fibonacci_cluster.py.

Everything goes over real sockets. A request on a fresh connection may land on
any worker; one kept-alive connection always lands on the same one.
"""

from __future__ import annotations

import os
import re
import signal
import socket
from collections import defaultdict

import httpx
import psutil
import pytest
from kit.examples import RunningExample, StartExample, assert_output_is_shown
from kit.process import LOOPBACK, ROOT, free_port, wait_until

SERVICE = "scaling/fibonacci_service.py"
CLUSTER = "scaling/fibonacci_cluster.py"
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
        seen.add(fresh(f"{service.url}/health").json()["pid"])
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


def test_visits_are_counted_separately_by_each_worker(run_example: StartExample) -> None:
    for key in MANAGERS:
        service = start(run_example, MANAGERS, key)
        counts: dict[int, list[int]] = defaultdict(list)
        for _ in range(ATTEMPTS):
            body = fresh(f"{service.url}/visits").json()
            counts[body["pid"]].append(body["visits"])
            if len(counts) == 2 and sum(len(c) for c in counts.values()) >= 10:
                break
        assert len(counts) == 2, key
        total = sum(len(c) for c in counts.values())
        for seen in counts.values():
            # each process counts from 1 on its own: no answer knows the total
            assert seen == list(range(1, len(seen) + 1)), key
            assert max(seen) < total, key


def test_a_keep_alive_connection_sticks_to_one_worker(run_example: StartExample) -> None:
    for key in MANAGERS:
        service = start(run_example, MANAGERS, key)
        assert len(pids_answering(service)) == 2, key  # two workers are serving...
        with httpx.Client(base_url=service.url, timeout=30) as client:
            pids = {client.get("/fibonacci/10").json()["pid"] for _ in range(50)}
        assert len(pids) == 1, key  # ...but one connection only ever reaches one of them


def test_the_cluster_replaces_a_killed_worker(run_example: StartExample) -> None:
    service = run_example(CLUSTER, env={"WORKERS": "2"})
    before = pids_answering(service)
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: bool(pids_answering(service, want=3) - before),
        timeout=15,
        what="a new worker pid after SIGKILL",
    )
    assert service.alive()
    assert f"worker {victim} exited with -9; restarting in 0.1 s" in service.output()
    assert victim not in worker_pids(service)
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
    with socket.socket() as blocker:
        port = free_port()
        blocker.bind((LOOPBACK, port))
        blocker.listen()
        service = run_example(CLUSTER, env={"PORT": str(port)}, ready="")
        service.process.wait(timeout=60)
    assert service.stop() == 1
    output = service.output()
    assert "Address already in use" in output
    delays = re.findall(r"exited with 1; restarting in (\d\.\d) s", output)
    # the worker that gives up went through every delay; the other one is cut short
    assert {"0.1", "0.2", "0.4", "0.8"} <= set(delays) <= {"0.1", "0.2", "0.4", "0.8"}
    assert re.search(r"exited with 1; 5 quick exits in a row, giving up", output)


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
