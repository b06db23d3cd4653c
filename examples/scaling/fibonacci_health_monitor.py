"""Sanic's manager with sanic-ext's health monitor: a dead or stuck worker is replaced.

The same app as examples/scaling/fibonacci_service.py (`GET /fibonacci/<n>`,
`GET /visits`, `GET /health`, each answer with the pid), always under Sanic's
worker manager. sanic-ext's health monitor, one more process beside the
workers, expects a heartbeat from each worker every `HEALTH_REPORT_INTERVAL`
seconds. A worker that stays silent for `HEALTH_MISSED_THRESHOLD` seconds
misses a check; after `HEALTH_MAX_MISSES` missed checks in a row the monitor
asks the manager to restart it, and a new worker process takes its place.
A worker killed with SIGKILL goes silent, and so does one whose event loop is
blocked: both are restarted.

It needs sanic-ext, which the book's other examples do without (installed, it
changes every Sanic app in the environment: see the page). Install it with:

    pip install sanic-ext==25.12.0

Run it:

    python examples/scaling/fibonacci_health_monitor.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `WORKERS`: worker processes (default `2`).
- `HEALTH_REPORT_INTERVAL`: seconds between a worker's heartbeats (default `5`).
- `HEALTH_MISSED_THRESHOLD`: seconds of silence that count as a missed check
  (default `10`); it must be longer than any request may block the event loop.
- `HEALTH_MAX_MISSES`: missed checks in a row before a restart (default `3`).

A bad setting (`PORT=abc`, `WORKERS=0`, `HEALTH_MAX_MISSES=0`) stops it at start
with exit code 2 and one line naming the variable and what it accepts.

n must be between 1 and 35: anything else answers 400, a path that is not a
number 404, a wrong method 405, each with a JSON error body. SIGTERM and
SIGINT stop the manager, every worker and the monitor with exit code 0.
"""

from __future__ import annotations

import os
import signal
import sys

import orjson
from pydantic import Field, PositiveFloat, PositiveInt, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json
from sanic.worker.multiplexer import WorkerMultiplexer
from sanic_ext import Extend
from sanic_ext.extensions.health.extension import HealthExtension


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment; the health monitor's timing is here too."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=1, le=65535)
    workers: PositiveInt = 2
    health_report_interval: PositiveFloat = 5.0
    health_missed_threshold: PositiveFloat = 10.0
    health_max_misses: PositiveInt = 3


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

app = Sanic(
    "fibonacci-monitored", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer)
)
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 16 * 1024
app.config.MOTD = False

# --8<-- [start:monitor]
# The health monitor and nothing else of sanic-ext: no OpenAPI pages, no
# automatic HEAD and OPTIONS routes, no CORS. Extending the app here also stops
# Sanic from extending it with everything (its AUTO_EXTEND) when sanic-ext is
# installed. This line runs in every process: the manager starts the monitor,
# each worker sends its heartbeats.
Extend(
    app,
    extensions=[HealthExtension],
    built_in_extensions=False,
    config={
        "health": True,  # the monitor; its HTTP endpoint stays off: /health is ours
        "health_report_interval": settings.health_report_interval,
        "health_missed_threshhold": settings.health_missed_threshold,  # sic
        "health_max_misses": settings.health_max_misses,
    },
)
# --8<-- [end:monitor]


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


@app.main_process_ready
async def stop_through_the_monitor(app: Sanic, _: object) -> None:
    """SIGTERM and SIGINT ask the manager to stop, as in fibonacci_service.py."""
    manager = WorkerMultiplexer(app.manager.monitor_publisher, {})

    def terminate(signum: int, frame: object) -> None:
        manager.terminate()

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)


def main() -> None:
    app.run(
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
