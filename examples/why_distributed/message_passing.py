"""Message passing and shared memory between processes, Python's worker threads.

Node.js worker threads talk in two ways: `postMessage`, which copies a value
to the other side, and a `SharedArrayBuffer` that both sides see, kept
consistent with `Atomics`. This program does both with processes: a worker
answers requests that arrive over a `multiprocessing.Pipe`, then four
processes add to one counter in `multiprocessing.shared_memory.SharedMemory`,
taking a lock around each read-modify-write. Only the main process prints, so
the output is the same on every run.

Run it:

    python examples/why_distributed/message_passing.py

No environment variables, no arguments.
"""

from __future__ import annotations

import multiprocessing
import os
import struct
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from multiprocessing.synchronize import Lock


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


# --8<-- [start:messages]
def answer_requests(port: Connection) -> None:
    """The worker: like `parentPort.on("message", ...)` in a Node.js worker."""
    while (message := port.recv()) is not None:  # None: no more work
        message["fib"] = fib(message["n"])  # changes the worker's copy only
        message["worker_pid"] = os.getpid()
        port.send(message)
    port.close()


def message_passing(ctx: multiprocessing.context.SpawnContext) -> None:
    ours, theirs = ctx.Pipe()  # two connected ends, like a MessageChannel's ports
    worker = ctx.Process(target=answer_requests, args=(theirs,))
    worker.start()
    requests = [{"id": i, "n": n} for i, n in enumerate([10, 20, 25], start=1)]
    for request in requests:
        ours.send(request)  # pickled and copied, like postMessage's structured clone
        print(f"main sent      {request}")
    for _ in requests:
        reply = ours.recv()  # one worker, one pipe: replies come back in order
        other = reply.pop("worker_pid") != os.getpid()
        print(f"worker replied {reply}, from another process: {other}")
    print(f"main's copies are unchanged: {requests[0]}")
    ours.send(None)
    worker.join()


# --8<-- [end:messages]


# --8<-- [start:shared]
COUNTER = struct.Struct("q")  # one signed 64-bit integer at offset 0


def add_to_counter(name: str, lock: Lock, times: int) -> None:
    memory = SharedMemory(name=name)  # attach to the block the parent created
    for _ in range(times):
        # Read, add, write back: three steps another process could interleave
        # with. The lock makes them one, as Atomics.add does in JavaScript.
        with lock:
            (value,) = COUNTER.unpack_from(memory.buf, 0)
            COUNTER.pack_into(memory.buf, 0, value + 1)
    memory.close()


def shared_counter(ctx: multiprocessing.context.SpawnContext, workers: int, times: int) -> None:
    memory = SharedMemory(create=True, size=COUNTER.size)
    try:
        COUNTER.pack_into(memory.buf, 0, 0)
        lock = ctx.Lock()
        processes = [
            ctx.Process(target=add_to_counter, args=(memory.name, lock, times))
            for _ in range(workers)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        (total,) = COUNTER.unpack_from(memory.buf, 0)
        print(f"{workers} processes x {times} increments under a lock: counter = {total}")
    finally:
        memory.close()
        memory.unlink()  # the block outlives every process that attached until unlinked


# --8<-- [end:shared]


# --8<-- [start:main]
def main() -> None:
    # spawn: each worker is a fresh interpreter that imports this file, the
    # same on Linux, macOS and Windows. Only the __main__ guard below keeps
    # the workers from running main() again themselves.
    ctx = multiprocessing.get_context("spawn")
    print("-- message passing over a Pipe (postMessage)")
    message_passing(ctx)
    print("-- a counter in shared memory (SharedArrayBuffer + Atomics)")
    shared_counter(ctx, workers=4, times=10_000)


if __name__ == "__main__":
    main()
# --8<-- [end:main]
