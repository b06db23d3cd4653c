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
- `MIN_UPTIME`: seconds; a worker that exits sooner counts as a quick exit
  (default `5`).
- `BACKOFF`: seconds before restarting a worker after its first quick exit,
  doubled for each further one in a row (default `0.1`).
- `MAX_QUICK_EXITS`: quick exits in a row of one worker after which the
  master gives up (default `5`).
- `STOP_TIMEOUT`: seconds a worker gets to finish its requests after SIGTERM
  before it is killed (default `10`).

A bad setting (`PORT=abc`, `WORKERS=0`, `MIN_UPTIME=-1`) stops it at start with
exit code 2 and one line naming the variable and what it accepts.

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
from pydantic import Field, PositiveFloat, PositiveInt, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment; the master's restart policy is here too."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=1, le=65535)
    workers: PositiveInt = 2
    # Generous on purpose: starting a worker (imports, binding) can itself take
    # over a second on a busy machine, and must not count as dying young.
    min_uptime: PositiveFloat = 5.0
    backoff: PositiveFloat = 0.1
    max_quick_exits: PositiveInt = 5
    stop_timeout: PositiveFloat = 10.0


def load_settings() -> Settings:
    """The settings, or exit code 2 with one line per bad variable and no traceback."""
    try:
        return Settings()
    except ValidationError as error:
        for problem in error.errors():
            name = str(problem["loc"][0]).upper()
            print(f"configuration error: {name}: {problem['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


settings = load_settings()
# --8<-- [end:settings]

MAX_N = 35

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
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
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


# --8<-- [start:slots]
@dataclass
class Slot:
    """One of the N places for a worker, and its restart history."""

    process: BaseProcess | None = None
    started: float = 0.0
    quick_exits: int = 0  # exits in a row within MIN_UPTIME seconds of starting
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
    # --8<-- [end:slots]
    # --8<-- [start:loop]
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
                quick = now - slot.started < settings.min_uptime
                slot.quick_exits = slot.quick_exits + 1 if quick else 0
                pid, exitcode = slot.process.pid, slot.process.exitcode
                slot.process = None
                if slot.quick_exits >= settings.max_quick_exits:
                    print(
                        f"worker {pid} exited with {exitcode}; {slot.quick_exits} quick exits "
                        "in a row, giving up",
                        flush=True,
                    )
                    stopping.set()
                    code = 1
                    break
                # BACKOFF, then twice as long for every further quick exit in a row
                # (0.1 s, 0.2, 0.4, 0.8 s by default)
                delay = settings.backoff * 2 ** max(0, slot.quick_exits - 1)
                print(
                    f"worker {pid} exited with {exitcode}; restarting in {delay:.1f} s", flush=True
                )
                slot.restart_at = now + delay
            elif slot.process is None and now >= slot.restart_at:
                start(slot)
    stop_all([slot.process for slot in slots if slot.process is not None])
    return code
    # --8<-- [end:loop]


# --8<-- [start:stop]
def stop_all(processes: list[BaseProcess]) -> None:
    """Forward SIGTERM to every worker, then wait for each to finish."""
    for process in processes:
        process.terminate()  # SIGTERM: the worker's server stops gracefully
    deadline = time.monotonic() + settings.stop_timeout
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():  # pragma: no cover - a worker stuck past the deadline
            process.kill()
            process.join()
        print(f"worker {process.pid} stopped with {process.exitcode}", flush=True)


# --8<-- [end:stop]


def main() -> None:
    host, port, count = settings.host, settings.port, settings.workers
    print(f"master {os.getpid()} starting {count} workers on {host}:{port}", flush=True)
    sys.exit(supervise(host, port, count))


if __name__ == "__main__":
    main()
