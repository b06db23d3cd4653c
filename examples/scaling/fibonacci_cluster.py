"""A worker manager written by hand: a master process and N workers on one port.

The master starts `WORKERS` processes and then only watches them. Each worker
opens its own listening socket on the same HOST:PORT with `SO_REUSEPORT`, and
the kernel spreads new connections between those sockets. Each worker serves
the same app as examples/scaling/fibonacci_service.py, in a single process:
`GET /fibonacci/<n>`, `GET /visits`, `GET /health`, each answer with the pid.

When a worker dies, the master prints `worker 1234 exited with -9; restarting
in 0.1 s` and starts another. A worker that dies again and again right after
starting is restarted with a growing delay, and after `MAX_QUICK_EXITS` such
exits in a row the master gives up: it stops the other workers and exits with
code 1. On SIGTERM or SIGINT it forwards SIGTERM to every worker, waits for
them to finish their requests, and exits with code 0.

Run it:

    python examples/scaling/fibonacci_cluster.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `WORKERS`: worker processes (default `2`).

n must be between 1 and 35: anything else answers 400, a path that is not a
number 404, a wrong method 405, each with a JSON error body.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

import orjson
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

MAX_N = 35
# Seconds: a worker that exits sooner counts as a quick exit. Generous on purpose:
# starting a worker (imports, binding) can itself take over a second on a busy machine.
MIN_UPTIME = 5.0
BACKOFF = 0.1  # seconds before a restart, doubled for every further quick exit in a row
MAX_QUICK_EXITS = 5  # in a row, for one worker: then the master gives up
STOP_TIMEOUT = 10.0  # seconds a worker gets to finish its requests after SIGTERM

# --- the app every worker serves (the same as fibonacci_service.py) ------

app = Sanic("fibonacci-cluster", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 16 * 1024
app.config.MOTD = False


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@app.get("/fibonacci/<n:int>")
async def fibonacci(request: Request, n: int) -> HTTPResponse:
    if not 1 <= n <= MAX_N:
        raise BadRequest(f"n must be between 1 and {MAX_N}")
    return json({"n": n, "fib": fib(n), "pid": os.getpid()})


visits = 0


@app.get("/visits")
async def count_visit(request: Request) -> HTTPResponse:
    global visits
    visits += 1
    return json({"visits": visits, "pid": os.getpid()})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    return json({"status": "ok", "pid": os.getpid()})


# --8<-- [start:worker]
def serve(host: str, port: int) -> None:
    """One worker: its own socket on the shared address, and a one-process server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Every worker sets SO_REUSEPORT before bind, so all of them may bind the
    # same address; the kernel then hashes each new connection to one of them.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    print(f"worker {os.getpid()} started", flush=True)
    # Sanic listens on the socket it is given; single_process: this worker is
    # the whole server, with its own event loop and SIGTERM handling.
    app.run(sock=sock, single_process=True, access_log=False, debug=False)


# --8<-- [end:worker]


# --8<-- [start:master]
@dataclass
class Slot:
    """One of the N places for a worker, and its restart history."""

    process: BaseProcess | None = None
    started: float = 0.0
    quick_exits: int = 0  # exits in a row within MIN_UPTIME of starting
    restart_at: float = 0.0


def supervise(host: str, port: int, count: int) -> int:
    # spawn: each worker is a fresh interpreter that imports this file; nothing
    # of the master (threads, open files) is copied into it, as fork would.
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, frame: stopping.set())

    def start(slot: Slot) -> None:
        slot.process = context.Process(target=serve, args=(host, port), daemon=True)
        slot.process.start()
        slot.started = time.monotonic()

    slots = [Slot() for _ in range(count)]
    for slot in slots:
        start(slot)
    code = 0
    while not stopping.is_set():
        # Sleep until a worker exits (its sentinel becomes readable) or a
        # restart is due; a signal sets `stopping` and ends the loop.
        sentinels = [slot.process.sentinel for slot in slots if slot.process]
        multiprocessing.connection.wait(sentinels, timeout=0.2)
        if stopping.is_set():
            break
        now = time.monotonic()
        for slot in slots:
            if slot.process is not None and not slot.process.is_alive():
                quick = now - slot.started < MIN_UPTIME
                slot.quick_exits = slot.quick_exits + 1 if quick else 0
                pid, exitcode = slot.process.pid, slot.process.exitcode
                slot.process = None
                if slot.quick_exits >= MAX_QUICK_EXITS:
                    print(
                        f"worker {pid} exited with {exitcode}; {slot.quick_exits} quick exits "
                        "in a row, giving up",
                        flush=True,
                    )
                    stopping.set()
                    code = 1
                    break
                # 0.1 s, then 0.2, 0.4, 0.8 s while it keeps dying young
                delay = BACKOFF * 2 ** max(0, slot.quick_exits - 1)
                print(
                    f"worker {pid} exited with {exitcode}; restarting in {delay:.1f} s", flush=True
                )
                slot.restart_at = now + delay
            elif slot.process is None and now >= slot.restart_at:
                start(slot)
    stop_all([slot.process for slot in slots if slot.process is not None])
    return code


def stop_all(processes: list[BaseProcess]) -> None:
    """Forward SIGTERM to every worker, then wait for each to finish."""
    for process in processes:
        process.terminate()  # SIGTERM: the worker's server stops gracefully
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():  # pragma: no cover - a worker stuck past the deadline
            process.kill()
            process.join()
        print(f"worker {process.pid} stopped with {process.exitcode}", flush=True)


# --8<-- [end:master]


def main() -> None:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "4000"))
    count = int(os.environ.get("WORKERS", "2"))
    print(f"master {os.getpid()} starting {count} workers on {host}:{port}", flush=True)
    sys.exit(supervise(host, port, count))


if __name__ == "__main__":
    main()
