"""A service whose failed background task ends the process, for a supervisor to restart.

A background task refreshes the prices that `GET /prices` serves, every
`REFRESH_INTERVAL` seconds. If that task dies, asyncio's default is to log
"Task exception was never retrieved" and carry on: the service would keep
answering, with prices that never change again, and `/health` would still say
200. Instead, an exception handler installed on the loop applies a policy: one
critical log record naming the error, a stop like SIGTERM's (requests in
flight finish), and exit code 1, so that systemd, Kubernetes or any supervisor
starts a fresh process.

Run it:

    python examples/resilience/crash_policy_service.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `REFRESH_INTERVAL`: seconds between two refreshes (default `1`).
- `FAIL_ON_REFRESH`: make refresh number N raise, to see the policy at work
  (default `0`: never).

A bad setting (`PORT=abc`, `REFRESH_INTERVAL=-1`, `FAIL_ON_REFRESH=abc`) stops
it at start with exit code 2 and one line naming the variable. It stops cleanly
on SIGTERM or Ctrl-C with exit code 0. An unknown route answers 404 and a wrong
method 405, each with a JSON error body; no route accepts a body.
"""

from __future__ import annotations

import asyncio
import sys
import time
from functools import partial
from typing import Any

import orjson
from pydantic import Field, NonNegativeInt, PositiveFloat, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.log import logger as log
from sanic.response import HTTPResponse, json


class Settings(BaseSettings):
    """Read once at start from the environment."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=1, le=65535)
    refresh_interval: PositiveFloat = 1.0
    fail_on_refresh: NonNegativeInt = 0


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

app = Sanic("crash-policy", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.MOTD = False
app.ctx.exit_code = 0
app.ctx.prices = {"refreshes": 0, "refreshed_at": None}


# --8<-- [start:policy]
def crash(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Anything nobody handled: log it once, then stop as SIGTERM would, exit code 1."""
    if app.ctx.exit_code:
        return  # already stopping
    app.ctx.exit_code = 1
    log.critical(
        "fatal: %s (%r); stopping with exit code 1",
        context["message"],
        context.get("exception"),
        exc_info=context.get("exception"),
    )
    loop.call_soon(partial(app.stop, terminate=False))  # Sanic's own SIGTERM handler


@app.before_server_start
async def install_policy(app: Sanic) -> None:
    asyncio.get_running_loop().set_exception_handler(crash)


# --8<-- [end:policy]


# --8<-- [start:task]
async def refresh_prices() -> None:
    while True:
        await asyncio.sleep(settings.refresh_interval)
        count = app.ctx.prices["refreshes"] + 1
        if count == settings.fail_on_refresh:
            raise ConnectionError(f"price feed refused refresh {count}")
        app.ctx.prices = {"refreshes": count, "refreshed_at": time.time()}


background: set[asyncio.Task[None]] = set()


@app.after_server_start
async def start_refresher(app: Sanic) -> None:
    # The asyncio docs' pattern: keep a reference while it runs, drop it when done.
    # Dropped, a failed task is collected, and only then does the handler hear of it.
    task = asyncio.create_task(refresh_prices(), name="refresh_prices")
    background.add(task)
    task.add_done_callback(background.discard)


@app.before_server_stop
async def stop_refresher(app: Sanic) -> None:
    for task in list(background):
        task.cancel()  # a cancelled task is no error: the handler is not called


# --8<-- [end:task]


@app.get("/prices")
async def prices(request: Request) -> HTTPResponse:
    return json(app.ctx.prices)


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "UP"})


def main() -> None:
    app.run(host=settings.host, port=settings.port, single_process=True, access_log=False)
    sys.exit(app.ctx.exit_code)  # 0 after SIGTERM or Ctrl-C, 1 after the policy


if __name__ == "__main__":
    main()
