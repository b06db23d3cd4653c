"""Threads, processes and the GIL: the same CPU-bound work three ways.

Runs `fib(n)` `jobs` times serially, on a `ThreadPoolExecutor` and on a
`ProcessPoolExecutor`, and prints for each way whether the results agree
with the serial ones, how many distinct processes and threads did the work,
and how long it took. On a CPython with a GIL, the threads share one process
and take turns, so they are no faster than the serial loop; the processes
each have their own interpreter and GIL, and run in parallel on as many CPUs
as there are.

Run it:

    python examples/why_distributed/gil_pools.py

Options:

- `--jobs`: how many times to compute fib(n) (default `12`).
- `--n`: the argument of fib (default `31`, a fraction of a second each).
- `--workers`: threads or processes per pool (default: the number of CPUs).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import NamedTuple


# --8<-- [start:work]
def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


class Done(NamedTuple):
    result: int
    pid: int  # which process did the work
    thread: int  # which thread, inside that process


def job(n: int) -> Done:
    return Done(fib(n), os.getpid(), threading.get_ident())


# --8<-- [end:work]


# --8<-- [start:measure]
def measure(name: str, run: Callable[[], Iterable[Done]], expected: list[int]) -> None:
    started = time.perf_counter()
    done = list(run())
    elapsed = time.perf_counter() - started
    agree = "agree" if [d.result for d in done] == expected else "DIFFER"
    pids = len({d.pid for d in done})
    threads = len({(d.pid, d.thread) for d in done})
    print(f"{name:<22} results {agree}, {pids} process(es), {threads} thread(s), {elapsed:.2f} s")


def in_pool(pool: Executor, jobs: int, n: int) -> Callable[[], Iterator[Done]]:
    return lambda: pool.map(job, [n] * jobs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--n", type=int, default=31)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    expected = [fib(args.n)] * args.jobs
    print(f"fib({args.n}) x {args.jobs} jobs, {args.workers} workers per pool")

    measure("serial", lambda: (job(args.n) for _ in range(args.jobs)), expected)
    with ThreadPoolExecutor(args.workers) as threads:
        measure("ThreadPoolExecutor", in_pool(threads, args.jobs, args.n), expected)
    # spawn: a fresh interpreter per worker, the same on Linux, macOS and Windows.
    # Starting them is part of the time measured, as it is for a real program.
    spawn = multiprocessing.get_context("spawn")
    # The pool starts a worker per job submitted, up to `workers`. Each waits at
    # the barrier until all have started: otherwise the first one up could finish
    # short jobs before the others had even imported this file.
    everyone = spawn.Barrier(min(args.workers, args.jobs))
    with ProcessPoolExecutor(
        args.workers, mp_context=spawn, initializer=everyone.wait
    ) as processes:
        measure("ProcessPoolExecutor", in_pool(processes, args.jobs, args.n), expected)


if __name__ == "__main__":
    main()
# --8<-- [end:measure]
