"""The same rate limit kept in the process's memory: right for one instance, wrong for two.

`GET /recipes/<id>` allows each client `RATE_LIMIT` requests per sliding
window of `RATE_WINDOW` seconds, counted in a dict of this process. Behind a
load balancer with N instances, a client gets N budgets: the negative control
of the "Rate limiting" page, run by the same test as the Redis limiter.

- The client is the `X-Client-Id` header (1 to 64 letters, digits or `-_.:`;
  anything else is 400) or, without one, the peer address.
- At most 10,000 clients are remembered (the least recently seen is
  forgotten first), so a flood of new ids cannot grow the dict without bound.

Run it:

    python examples/primitives/rate_limit_in_memory.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4031`).
- `RATE_LIMIT`: requests each client may make per window (default `10`).
- `RATE_WINDOW`: the window, in seconds (default `60`).

A bad setting (`PORT=abc`, `RATE_LIMIT=-1`) stops it at start with exit code 2
and one line naming the variable and what it accepts. It stops cleanly on
SIGTERM or Ctrl-C. An unknown route answers 404 and a wrong method 405, each
with a JSON error body.
"""

from __future__ import annotations

import math
import re
import sys
import time
from collections import OrderedDict, deque

import orjson
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


class Settings(BaseSettings):
    """Read once at start from the environment."""

    host: str = "127.0.0.1"
    port: int = Field(4031, ge=1, le=65535)
    rate_limit: int = Field(10, ge=1, le=100_000)
    rate_window: float = Field(60.0, gt=0, le=86_400)


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

app = Sanic(
    "rate-limit-in-memory", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer)
)
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False

CLIENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_CLIENTS = 10_000


# --8<-- [start:limiter]
# client -> times of its requests in the window. One event loop, no await
# inside: nothing runs between the check and the append, so no race here.
# The flaw is elsewhere: every process has its own dict.
seen: OrderedDict[str, deque[float]] = OrderedDict()


def take(client: str) -> float:
    """0 if the request may go ahead, else the seconds until it may."""
    now = time.monotonic()
    times = seen.setdefault(client, deque())
    seen.move_to_end(client)
    while times and times[0] <= now - settings.rate_window:
        times.popleft()
    if len(times) < settings.rate_limit:
        times.append(now)
        if len(seen) > MAX_CLIENTS:
            seen.popitem(last=False)  # forget the least recently seen client
        return 0.0
    return times[0] + settings.rate_window - now


# --8<-- [end:limiter]


@app.on_request
async def rate_limit(request: Request) -> HTTPResponse | None:
    if request.path == "/health" or request.route is None:
        return None
    given = request.headers.get("x-client-id")
    if given is not None and not CLIENT_ID.fullmatch(given):
        return json({"error": "X-Client-Id: 1 to 64 of A-Z a-z 0-9 - _ . :"}, status=400)
    wait = take(f"id:{given}" if given else f"ip:{request.ip}")
    if wait:
        retry_after = max(1, math.ceil(wait))
        return json(
            {"error": "too many requests", "retry_after": retry_after},
            status=429,
            headers={"Retry-After": str(retry_after)},
        )
    return None


@app.get("/recipes/<recipe_id:int>")
async def recipe(request: Request, recipe_id: int) -> HTTPResponse:
    return json({"id": recipe_id, "name": "tofu and rice", "steps": 3})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "UP"})


def main() -> None:
    app.run(
        host=settings.host,
        port=settings.port,
        single_process=True,
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
