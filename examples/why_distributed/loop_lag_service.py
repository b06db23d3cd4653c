"""Blocking the event loop, measuring it, and moving the work off it.

A Sanic service with the same CPU-bound function behind two routes:
`GET /blocking/fib/<n>` computes it on the event loop, so nothing else runs
until it returns; `GET /offloaded/fib/<n>` sends it to a process pool and
awaits the result, so the loop stays free. A monitor task sleeps for a short
interval over and over and measures how late it wakes up; when the worst delay
in a report period reaches a threshold it prints a line such as
`loop lag: max 812.4 ms over the last 1.0 s`. `GET /health` answers 200.

Run it:

    python examples/why_distributed/loop_lag_service.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4100`).
- `LAG_INTERVAL`: seconds the monitor sleeps between checks (default `0.05`).
- `LAG_REPORT_EVERY`: seconds per report period (default `1.0`).
- `LAG_REPORT_MS`: print a period's line only when its worst lag reaches this
  many milliseconds (default `100`; `0` prints every period).
- `POOL_WORKERS`: processes in the pool, 1 or more (default: the number of CPUs).

A bad setting (`PORT=abc`, `LAG_INTERVAL=0`, `POOL_WORKERS=-1`) stops it at
start with exit code 2 and one line naming the variable and what it accepts.

n must be between 1 and 35; anything else answers 400 with a JSON error body,
and a path that is not a number answers 404. An unknown route answers 404 and
a wrong method 405, with a JSON error body; no route accepts a body.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, LAG_*, POOL_WORKERS."""

    host: str = "127.0.0.1"
    port: int = Field(4100, ge=1, le=65535)
    lag_interval: PositiveFloat = 0.05
    lag_report_every: PositiveFloat = 1.0
    lag_report_ms: NonNegativeFloat = 100.0
    pool_workers: PositiveInt | None = None  # None: one per CPU


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

MAX_N = 35  # fib(35) takes a second or two in CPython: slow enough to see, still bounded


# --8<-- [start:fib]
def fib(n: int) -> int:
    """Pure-Python CPU work: holds the GIL for its whole run, never awaits."""
    return n if n < 2 else fib(n - 1) + fib(n - 2)


# --8<-- [end:fib]


def checked(n: int) -> int:
    if not 1 <= n <= MAX_N:
        raise BadRequest(f"n must be between 1 and {MAX_N}")
    return n


app = Sanic("loop-lag-service", error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"  # every error body is JSON
app.config.REQUEST_MAX_SIZE = 64 * 1024  # no route reads a body: a small limit
app.config.MOTD = False


# --8<-- [start:routes]
@app.get("/blocking/fib/<n:int>")
async def blocking_fib(request: Request, n: int) -> HTTPResponse:
    # No await between here and the return: while fib runs, this process
    # accepts no connection, answers no request and fires no timer.
    return json({"n": n, "fib": fib(checked(n)), "ran_on": "event loop"})


@app.get("/offloaded/fib/<n:int>")
async def offloaded_fib(request: Request, n: int) -> HTTPResponse:
    loop = asyncio.get_running_loop()
    # The pool pickles (fib, n), a worker process computes it, and this
    # coroutine is suspended until the answer comes back: the loop runs on.
    result = await loop.run_in_executor(request.app.ctx.pool, fib, checked(n))
    return json({"n": n, "fib": result, "ran_on": "process pool"})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "ok"})


# --8<-- [end:routes]


# --8<-- [start:monitor]
async def monitor_lag(interval: float, report_every: float, report_ms: float) -> None:
    """Sleep `interval` again and again; report how late the wake-ups were."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    period_start = loop.time()
    while True:
        expected = loop.time() + interval
        await asyncio.sleep(interval)
        now = loop.time()
        # A timer can only fire when the loop gets back to its timer queue:
        # anything that held the loop shows up here as lateness.
        worst = max(worst, now - expected)
        if now - period_start >= report_every:
            if worst * 1000 >= report_ms:
                print(
                    f"loop lag: max {worst * 1000:.1f} ms over the last {now - period_start:.1f} s",
                    flush=True,
                )
            worst, period_start = 0.0, now


# --8<-- [end:monitor]


# --8<-- [start:lifecycle]
@app.before_server_start
async def start_pool(app: Sanic) -> None:
    workers = settings.pool_workers or os.cpu_count() or 1
    app.ctx.pool = ProcessPoolExecutor(
        max_workers=workers,
        # spawn: fresh interpreters, the same on Linux, macOS and Windows, and
        # nothing of this process's sockets or threads copied into them.
        mp_context=multiprocessing.get_context("spawn"),
        # Ctrl-C in a terminal reaches the whole process group; the workers
        # leave it to this process, which shuts them down in order.
        initializer=signal.signal,
        initargs=(signal.SIGINT, signal.SIG_IGN),
    )


@app.after_server_start
async def start_monitor(app: Sanic) -> None:
    app.ctx.monitor = asyncio.create_task(
        monitor_lag(
            interval=settings.lag_interval,
            report_every=settings.lag_report_every,
            report_ms=settings.lag_report_ms,
        )
    )


@app.before_server_stop
async def stop_monitor(app: Sanic) -> None:
    app.ctx.monitor.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await app.ctx.monitor


@app.after_server_stop
async def stop_pool(app: Sanic) -> None:
    # In-flight requests have finished; waiting for the workers to exit in a
    # thread keeps the loop free for Sanic's own shutdown.
    await asyncio.to_thread(app.ctx.pool.shutdown, wait=True, cancel_futures=True)


# --8<-- [end:lifecycle]


# --8<-- [start:run]
def main() -> None:
    app.run(
        host=settings.host,
        port=settings.port,
        single_process=True,  # one event loop, the one this page is about
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
# --8<-- [end:run]
