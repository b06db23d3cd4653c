"""Memory per worker: one process against N, as RSS, PSS and USS summed over the process tree.

Each server is started with its page's run line (fibonacci_service.py with
WORKERS=1, 2, 4, and the hand-written cluster with WORKERS=2, 4) as a plain
`python script.py` (the test kit's fork server is turned off: a fork of a warm
interpreter would share pages a reader's process does not). Once every worker
has answered requests, psutil reads each process's memory from
/proc/PID/smaps_rollup:

- RSS: resident pages, shared ones (libraries, the interpreter) counted in
  every process that maps them, so a sum over processes counts them N times;
- PSS: each shared page divided among the processes that share it, so the
  sum is what the tree really costs the machine;
- USS: pages only this process has, what its exit would free.

Writes snippets/scaling/bench_worker_memory.md.
"""

from __future__ import annotations

import os
import time

import httpx
import psutil

from bench import load
from bench.common import markdown_table, stamp, write_results

RESULTS = "scaling/bench_worker_memory.md"
COMMAND = "./nox -s bench -- worker_memory"
MIB = 1024 * 1024
SERVERS = [
    ("one process, `WORKERS=1`", "scaling/fibonacci_service.py", 1),
    ("Sanic workers, `WORKERS=2`", "scaling/fibonacci_service.py", 2),
    ("Sanic workers, `WORKERS=4`", "scaling/fibonacci_service.py", 4),
    ("hand-written cluster, `WORKERS=2`", "scaling/fibonacci_cluster.py", 2),
    ("hand-written cluster, `WORKERS=4`", "scaling/fibonacci_cluster.py", 4),
]


def tree(pid: int) -> list[psutil.Process]:
    parent = psutil.Process(pid)
    return [parent, *parent.children(recursive=True)]


def role(process: psutil.Process) -> str:
    """What a process that is neither the started one nor a worker is there for."""
    command = " ".join(process.cmdline())
    if "multiprocessing.resource_tracker" in command:
        return "resource tracker"
    if "multiprocessing.spawn" in command:
        return "spawned helper"  # under Sanic: the multiprocessing Manager it starts
    return command


def warm_every_worker(url: str, workers: int) -> set[int]:
    """Requests on fresh connections until every worker has answered some."""
    pids: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = httpx.get(f"{url}/fibonacci/20", headers={"Connection": "close"}, timeout=10)
        answer.raise_for_status()
        pids.add(answer.json()["pid"])
        if len(pids) >= workers:
            break
    if len(pids) < workers:
        raise RuntimeError(f"only {len(pids)} of {workers} workers answered")
    for _ in range(50 * workers):  # the same work in each, whichever worker takes it
        httpx.get(f"{url}/fibonacci/20", headers={"Connection": "close"}, timeout=10)
    return pids


# --8<-- [start:measure]
def measure(example: str, workers: int) -> dict:
    with load.Servers("worker-memory") as servers:
        server = servers.example(example, env={"WORKERS": str(workers)})
        pids = warm_every_worker(server.url, workers)
        time.sleep(1)  # let start-up garbage settle
        processes = tree(server.pid)
        if not pids <= {process.pid for process in processes}:
            raise RuntimeError(f"workers {pids} are not all in the tree of {server.pid}")
        infos = [process.memory_full_info() for process in processes]
        workers_info = [
            info for process, info in zip(processes, infos, strict=True) if process.pid in pids
        ]
        return {
            "processes": len(processes),
            "rss": sum(info.rss for info in infos) / MIB,
            "pss": sum(info.pss for info in infos) / MIB,
            "uss": sum(info.uss for info in infos) / MIB,
            "worker_uss": [info.uss / MIB for info in workers_info],
            "worker_rss": [info.rss / MIB for info in workers_info],
            "helpers": [
                role(process) for process in processes if process.pid not in pids | {server.pid}
            ],
        }


# --8<-- [end:measure]


def main() -> None:
    os.environ["KIT_FORKSERVER"] = "0"  # fresh interpreters, as `python script.py` starts
    rows = []
    for name, example, workers in SERVERS:
        run = measure(example, workers)
        print(f"{name}: {run}", flush=True)
        rows.append(
            [
                name,
                run["processes"],
                ", ".join(run["helpers"]) or "none",
                f"{max(run['worker_rss']):.0f}",
                f"{max(run['worker_uss']):.0f}",
                f"{run['uss'] - sum(run['worker_uss']):.0f}",
                f"{run['rss']:.0f}",
                f"{run['pss']:.0f}",
                f"{run['uss']:.0f}",
            ]
        )
    header = ["server", "processes", "besides manager and workers", "one worker RSS"]
    header += ["one worker USS", "manager and helpers USS"]
    header += ["tree RSS (sum)", "tree PSS (sum)", "tree USS (sum)"]
    body = "\n\n".join(
        [
            markdown_table(header, rows),
            "MiB, read with psutil (`memory_full_info()`, from /proc/PID/smaps_rollup) after "
            "every worker answered requests for `GET /fibonacci/20`; the tree is the "
            "started process and all its children (Sanic's manager, the cluster's master, "
            "and any helper process), each a fresh interpreter. One worker's figures are "
            "the largest among the workers. With one process, that process is the worker "
            "and there is no manager. Sanic's spawned helper is the `multiprocessing` "
            "Manager it starts for state shared between workers; the resource tracker is "
            "multiprocessing's own.",
        ]
    )
    stamp_line = stamp(["sanic", "uvloop", "psutil"])
    write_results(RESULTS, body, stamp_line, COMMAND)
