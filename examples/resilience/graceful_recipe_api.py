"""recipe-api with a graceful shutdown: out of rotation first, then stop.

The same routes as chapter 1's recipe-api (`GET /recipes/<id>`, `GET /health`,
`GET /live`). What changes is the stop. `GET /health` answers 200 once the
service is ready (503 `{"status": "starting"}` before its own signal handlers
are in place). On SIGTERM or SIGINT it does not stop at once:

1. it turns not ready: `GET /health` answers 503 `{"status": "draining"}`, so
   the load balancer's health checks take it out of rotation;
2. for `DRAIN_SECONDS` it goes on serving every request that still reaches it
   (each answer then says `Connection: close`, so a client holding a
   keep-alive connection opens its next one elsewhere), and `/live` still
   answers 200: the process is fine, it is only leaving;
3. then Sanic's own graceful shutdown stops listening, lets the requests in
   flight finish, closes the idle connections, and the process exits with 0.

A second signal during the drain skips what is left of it (Ctrl-C twice):
step 3 still finishes the requests in flight.

Run it:

    python examples/resilience/graceful_recipe_api.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `DRAIN_SECONDS`: seconds between turning not ready and stopping (default `1`:
  five health checks of snippets/resilience/graceful_haproxy.cfg, which takes a
  server out after two). Make it longer than your load balancer needs to
  notice, and shorter than the grace period of whatever sends the signal
  (systemd's `TimeoutStopSec`, Kubernetes' `terminationGracePeriodSeconds`).

A bad setting (`PORT=abc`, `DRAIN_SECONDS=-1`) stops it at start with exit
code 2 and one line naming the variable and what it accepts.

Bad input never takes it down: an unknown or malformed id answers 404, an id
outside 1..2**31-1 answers 400, an unknown route 404 and a wrong method 405,
each with a JSON error body. No route accepts a body; larger bodies than
64 KiB would get 413.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from functools import partial

import orjson
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest, NotFound
from sanic.handlers import ErrorHandler
from sanic.log import logger as log
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, DRAIN_SECONDS."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=1, le=65535)
    # 0 turns the drain off: Sanic's graceful shutdown alone (the page's control).
    drain_seconds: float = Field(1.0, ge=0, le=300)


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

MAX_ID = 2**31 - 1

RECIPES = {
    42: {
        "id": 42,
        "name": "Chicken Tikka Masala",
        "steps": "Throw it in a pot...",
        "ingredients": [
            {"id": 1, "name": "Chicken", "quantity": "1 lb"},
            {"id": 2, "name": "Sauce", "quantity": "2 cups"},
        ],
    },
}

app = Sanic("recipe-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False
app.ctx.state = "starting"  # then "ready", then "draining"


@app.get("/recipes/<recipe_id:int>")
async def get_recipe(request: Request, recipe_id: int) -> HTTPResponse:
    if not 1 <= recipe_id <= MAX_ID:
        raise BadRequest(f"recipe id must be between 1 and {MAX_ID}")
    recipe = RECIPES.get(recipe_id)
    if recipe is None:
        raise NotFound(f"no recipe with id {recipe_id}")
    return json({"producer_pid": os.getpid(), "recipe": recipe})


# --8<-- [start:probes]
@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    # Readiness: "send me traffic?" Not before the signal handlers below are
    # in place, and not from the first signal on.
    if request.app.ctx.state != "ready":
        return json({"status": request.app.ctx.state}, status=503)
    return json({"status": "ok"})


@app.get("/live")
async def live(request: Request) -> HTTPResponse:
    # Liveness: still 200 while draining. A supervisor must not restart a
    # process for doing what it was asked to do.
    return json({"status": "alive"})


@app.on_response
async def close_while_draining(request: Request, response: HTTPResponse) -> None:
    if request.app.ctx.state == "draining":
        # The connection closes after this answer: the client's next request
        # opens a new one, which the load balancer sends elsewhere.
        request.stream.keep_alive = False


# --8<-- [end:probes]


# --8<-- [start:shutdown]
@app.after_server_start
async def drain_on_signals(app: Sanic) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Replaces the handler Sanic installed just before, which stops at once.
        loop.add_signal_handler(sig, partial(begin_drain, app, loop, sig))
    # Only now ready: a signal before this point met Sanic's handler, no drain.
    app.ctx.state = "ready"


def begin_drain(app: Sanic, loop: asyncio.AbstractEventLoop, sig: signal.Signals) -> None:
    if app.ctx.state == "draining":  # a second signal: no more waiting
        log.info("%s again: stopping now", sig.name)
        app.ctx.stop_later.cancel()
        app.stop(terminate=False)
        return
    app.ctx.state = "draining"  # /health answers 503 from now on
    log.info("%s: draining for %gs, then stopping", sig.name, settings.drain_seconds)
    # Sanic's own stop: close the listener, finish the requests in flight
    # (up to GRACEFUL_SHUTDOWN_TIMEOUT, 15 s), close idle connections, exit 0.
    app.ctx.stop_later = loop.call_later(settings.drain_seconds, partial(app.stop, terminate=False))


# --8<-- [end:shutdown]


def main() -> None:
    app.run(
        host=settings.host,
        port=settings.port,
        single_process=True,  # signals reach this very process: no manager in between
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
