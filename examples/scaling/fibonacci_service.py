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

n must be between 1 and 35: anything else answers 400, a path that is not a
number 404, a wrong method 405, each with a JSON error body.
"""

from __future__ import annotations

import os
import signal

import orjson
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

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
    return json({"status": "ok", "pid": os.getpid()})


# --8<-- [end:routes]


# --8<-- [start:signals]
@app.main_process_ready
async def stop_through_the_monitor(app: Sanic, _: object) -> None:
    """Make SIGTERM and SIGINT safe during the manager's start-up.

    Sanic 25.12's own handler updates the workers' shared state from inside the
    signal handler; when the signal lands in the middle of such an update (most
    likely while the workers are still starting) the manager waits forever
    (sanic-org/sanic#2997). Here the handler only posts the message a worker's
    `app.m.terminate()` would send, and the manager's loop stops everything.
    """
    publisher = app.manager.monitor_publisher

    def terminate(signum: int, frame: object) -> None:
        publisher.send("__TERMINATE__")

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)


# --8<-- [end:signals]


# --8<-- [start:run]
def main() -> None:
    workers = int(os.environ.get("WORKERS", "1"))
    app.run(
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "4000")),
        # One process: the server runs right here. Several: this process becomes
        # the manager, and each worker it starts imports this file and serves.
        single_process=workers == 1,
        workers=workers,
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
# --8<-- [end:run]
