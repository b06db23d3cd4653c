"""A CPU-bound service, run as one process or as several Sanic workers.

`GET /fibonacci/<n>` computes the n-th Fibonacci number the slow way, in pure
Python, on the event loop: one request keeps one core busy. Every answer says
which process (`pid`) served it. `GET /visits` counts visits in a module-level
variable, which shows that each worker process has its own copy.
`GET /health` answers 200 once the service is ready.

The same file runs two ways: as one process (the default, `WORKERS=1`), or
with Sanic's worker manager starting `WORKERS` processes that share the port.

Run it:

    python examples/scaling/fibonacci_service.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `WORKERS`: `1` runs one process (default); `2` or more starts that many
  worker processes under Sanic's manager.

A bad setting (`PORT=abc`, `PORT=99999`, `WORKERS=0`) stops it at start with
exit code 2 and one line naming the variable and what it accepts.

n must be between 1 and 35: anything else answers 400, a path that is not a
number 404, a wrong method 405, each with a JSON error body. SIGTERM and
SIGINT stop it (every worker, under the manager) with exit code 0.
"""

from __future__ import annotations

import os
import signal
import sys

import orjson
from pydantic import Field, PositiveInt, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json
from sanic.worker.multiplexer import WorkerMultiplexer


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, WORKERS."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=1, le=65535)
    workers: PositiveInt = 1


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

MAX_N = 35  # fib(35) is seconds of CPU: bounded, so a client cannot ask for an hour

app = Sanic("fibonacci-service", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 16 * 1024  # no route reads a body; a small limit all the same
app.config.MOTD = False


# --8<-- [start:routes]
def fib(n: int) -> int:
    """Pure-Python CPU work: it holds this process's only event loop until it returns."""
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@app.get("/fibonacci/<n:int>")
async def fibonacci(request: Request, n: int) -> HTTPResponse:
    if not 1 <= n <= MAX_N:
        raise BadRequest(f"n must be between 1 and {MAX_N}")
    return json({"n": n, "fib": fib(n), "pid": os.getpid()})


visits = 0  # one counter per process: workers do not share it


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


# --8<-- [end:routes]


# --8<-- [start:signals]
@app.main_process_ready
async def stop_through_the_monitor(app: Sanic, _: object) -> None:
    """Make SIGTERM and SIGINT safe during the manager's start-up.

    Sanic 25.12's own handler stops the workers from inside the signal handler
    and posts a stop message that the manager, while it still waits for its
    workers to start, passes back to itself forever (sanic-org/sanic#2997).
    Here the handler only asks the manager to stop, the way a worker's
    `app.m.terminate()` does: `app.m` is a WorkerMultiplexer, and this is one
    built on the manager's own pipe. The manager's loop then stops everything,
    once the workers have started.
    """
    manager = WorkerMultiplexer(app.manager.monitor_publisher, {})

    def terminate(signum: int, frame: object) -> None:
        manager.terminate()

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)


# --8<-- [end:signals]


# --8<-- [start:run]
def main() -> None:
    app.run(
        host=settings.host,
        port=settings.port,
        # One process: the server runs right here. Several: this process becomes
        # the manager, and each worker it starts imports this file and serves.
        single_process=settings.workers == 1,
        workers=settings.workers,
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
# --8<-- [end:run]
