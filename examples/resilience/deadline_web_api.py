"""web-api that gives each request a deadline and passes what is left of it to recipe-api.

`GET /` asks recipe-api (at `TARGET`) for recipe 42. The request's budget is
`REQUEST_TIMEOUT` seconds, or less when its own caller sent a smaller
`Request-Timeout-Ms`. web-api waits for recipe-api no longer than the time left,
and tells recipe-api how long that is, minus `MARGIN_MS` for the answer's way
back, in the same header. recipe-api can then stop its own work (and its
database query) when web-api stops waiting, instead of finishing an answer
nobody will read.

Run it (with examples/resilience/deadline_recipe_api.py on port 4000):

    TARGET=http://127.0.0.1:4000 python examples/resilience/deadline_web_api.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `3000`).
- `TARGET`: base URL of recipe-api (default `http://127.0.0.1:4000`).
- `REQUEST_TIMEOUT`: seconds a request may take in all (default `2`).
- `MARGIN_MS`: milliseconds kept back for recipe-api's answer to reach web-api
  and web-api's own answer (default `20`).
- `PROPAGATE`: `false` to keep the deadline to itself, for comparison (default `true`).

A missed deadline answers 504, recipe-api unreachable or failing 502, each
with a JSON error. A bad setting (`PORT=abc`, `REQUEST_TIMEOUT=0`,
`TARGET=not-a-url`) stops it at start with exit code 2 and one line. A
`Request-Timeout-Ms` that is not a whole number from 1 to 600000 gets 400; an
unknown route 404, a wrong method 405. It stops cleanly on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import sys
import time

import httpx
import orjson
from pydantic import Field, HttpUrl, PositiveFloat, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest
from sanic.handlers import ErrorHandler
from sanic.log import logger as log
from sanic.response import HTTPResponse, json


class Settings(BaseSettings):
    """Read once at start from the environment."""

    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    target: HttpUrl = HttpUrl("http://127.0.0.1:4000")
    request_timeout: PositiveFloat = 2.0
    margin_ms: int = Field(20, ge=0, le=10_000)
    propagate: bool = True


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

app = Sanic("deadline-web-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 16 * 1024
app.config.MOTD = False
HEADER = "Request-Timeout-Ms"
MAX_MS = 600_000


@app.before_server_start
async def open_client(app: Sanic) -> None:
    # No client-wide timeout: each call gets the time its request has left.
    app.ctx.recipes = httpx.AsyncClient(base_url=str(settings.target))


@app.after_server_stop
async def close_client(app: Sanic) -> None:
    await app.ctx.recipes.aclose()


# --8<-- [start:propagate]
def budget(request: Request) -> float:
    """Seconds this request may take: ours, or less if our caller is in more of a hurry."""
    value = request.headers.get(HEADER)
    if value is None:
        return settings.request_timeout
    if not value.isdigit() or not 1 <= int(value) <= MAX_MS:
        raise BadRequest(f"{HEADER} must be a whole number of milliseconds, 1 to {MAX_MS}")
    return min(settings.request_timeout, int(value) / 1000)


@app.get("/")
async def index(request: Request) -> HTTPResponse:
    deadline = time.monotonic() + budget(request)
    # ... any work of web-api's own spends from the same deadline ...
    left = deadline - time.monotonic()
    headers = {}
    if settings.propagate:  # what recipe-api may spend: the rest, minus the way back
        headers[HEADER] = str(max(1, int(left * 1000) - settings.margin_ms))
    try:
        response = await app.ctx.recipes.get(
            "/recipes/42", headers=headers, timeout=httpx.Timeout(max(left, 0.001))
        )
    except httpx.TimeoutException:
        log.warning("recipe-api: no answer within the %.0f ms left", left * 1000)
        return json({"error": "deadline exceeded", "where": "waiting for recipe-api"}, status=504)
    except httpx.TransportError as error:
        return json({"error": "recipe-api unreachable", "reason": type(error).__name__}, status=502)
    if response.status_code == 504:
        return json({"error": "deadline exceeded", "where": "in recipe-api"}, status=504)
    if response.status_code != 200:
        return json({"error": f"recipe-api answered {response.status_code}"}, status=502)
    try:
        return json({"producer_data": response.json()})
    except ValueError:
        return json({"error": "recipe-api answered something that is not JSON"}, status=502)


# --8<-- [end:propagate]


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "ok"})


def main() -> None:
    app.run(host=settings.host, port=settings.port, single_process=True, access_log=False)


if __name__ == "__main__":
    main()
