"""web-api with a circuit breaker: when recipe-api is down, stop calling it for a while.

`GET /` asks recipe-api (at `TARGET`) for recipe 42 through a purgatory circuit
breaker:

- **closed** (normal): every call goes to recipe-api. A call that fails (refused,
  reset, timed out, or a 5xx answer) counts; a success resets the count. After
  `BREAKER_THRESHOLD` failures in a row the breaker opens.
- **opened**: no call reaches recipe-api. `GET /` answers 503 at once, with
  `Retry-After`, for `BREAKER_RECOVERY` seconds.
- **half-opened**: after that, the next request is let through as a probe, one
  at a time (the others still get 503 at once). Its success closes the breaker;
  its failure opens it again for another `BREAKER_RECOVERY` seconds.

A 4xx from recipe-api is recipe-api working (it is our request that is wrong):
it answers 502 and does not count. `GET /health` answers 200 with the breaker's
state: the breaker being open says nothing about this process's health. Every
state change is logged, one line each.

Run it (with recipe-api already listening on port 4000):

    TARGET=http://127.0.0.1:4000 python examples/resilience/breaker_web_api.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `3000`).
- `TARGET`: base URL of recipe-api (default `http://127.0.0.1:4000`).
- `TARGET_TIMEOUT`: seconds to wait for recipe-api, per call (default `2`).
- `BREAKER_THRESHOLD`: failures in a row that open the breaker (default `5`).
- `BREAKER_RECOVERY`: seconds the breaker stays open before a probe (default `30`).

A failed call answers 502 (504 on a timeout) with a JSON error; an open breaker
503. A bad setting stops it at start with exit code 2 and one line naming the
variable. It stops cleanly on SIGTERM or Ctrl-C. An unknown route answers 404
and a wrong method 405, each with a JSON error body; no route accepts a body.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from pydantic import Field, HttpUrl, PositiveFloat, PositiveInt, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.log import logger as log
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment."""

    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    target: HttpUrl = HttpUrl("http://127.0.0.1:4000")
    target_timeout: PositiveFloat = 2.0
    breaker_threshold: PositiveInt = 5
    breaker_recovery: PositiveFloat = 30.0


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

app = Sanic("breaker-web-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False
CIRCUIT = "recipe-api"


# --8<-- [start:breaker]
@app.before_server_start
async def open_client(app: Sanic) -> None:
    app.ctx.recipes = httpx.AsyncClient(
        base_url=str(settings.target), timeout=settings.target_timeout
    )
    app.ctx.breakers = AsyncCircuitBreakerFactory(
        default_threshold=settings.breaker_threshold, default_ttl=settings.breaker_recovery
    )
    app.ctx.breakers.add_listener(log_state_changes())
    app.ctx.probing = False


def log_state_changes() -> Callable[[str, str, Any], None]:
    """A purgatory listener: one log line per state change, saying why."""
    state, failures = "closed", 0

    def listener(name: str, event_type: str, event: Any) -> None:
        nonlocal state, failures
        if event_type == "failed":
            failures = event.failure_count
        elif event_type == "state_changed":
            why = {
                ("closed", "opened"): f"after {failures} failures in a row",
                ("opened", "half-opened"): "recovery timeout over: this request is the probe",
                ("half-opened", "opened"): "the probe failed",
                ("half-opened", "closed"): "the probe succeeded",
            }.get((state, event.state), "")
            log.warning("breaker %s: %s -> %s (%s)", name, state, event.state, why)
            state = event.state

    return listener


@app.after_server_stop
async def close_client(app: Sanic) -> None:
    await app.ctx.recipes.aclose()


# --8<-- [end:breaker]


# --8<-- [start:call]
class UpstreamFailed(Exception):
    """A failure of recipe-api itself: it counts towards opening the breaker."""

    def __init__(self, reason: str, status: int = 502) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


class ProbeInFlight(Exception):
    """Half-open, and another request is already the probe."""


async def fetch_recipe() -> httpx.Response:
    breaker = await app.ctx.breakers.get_breaker(CIRCUIT)
    probe = breaker.context.state != "closed"
    if probe:
        # purgatory lets every request through while half-open: allow one.
        if app.ctx.probing:
            raise ProbeInFlight
        app.ctx.probing = True
    try:
        async with breaker:  # raises OpenedState at once while open
            try:
                response = await app.ctx.recipes.get("/recipes/42")
            except httpx.TimeoutException:
                raise UpstreamFailed(
                    f"no answer within {settings.target_timeout:g}s", 504
                ) from None
            except httpx.TransportError as error:  # refused, reset...
                raise UpstreamFailed(type(error).__name__) from None
            if response.status_code >= 500:
                raise UpstreamFailed(f"answered {response.status_code}")
    finally:
        if probe:
            app.ctx.probing = False
    return response


# --8<-- [end:call]


# --8<-- [start:routes]
def unavailable(reason: str, status: int, retry_after: float | None = None) -> HTTPResponse:
    answer = json({"error": "recipe-api unavailable", "reason": reason}, status=status)
    if retry_after is not None:
        answer.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    return answer


@app.get("/")
async def index(request: Request) -> HTTPResponse:
    try:
        response = await fetch_recipe()
    except OpenedState as opened:  # fail fast: recipe-api is not called
        remaining = opened.opened_at + settings.breaker_recovery - time.time()
        return unavailable("circuit open", 503, remaining)
    except ProbeInFlight:
        return unavailable("circuit half-open, probe in flight", 503, 1)
    except UpstreamFailed as failed:
        return unavailable(failed.reason, failed.status)
    if response.status_code != 200:  # a 4xx: recipe-api works, it does not count
        return unavailable(f"answered {response.status_code}", 502)
    try:
        return json({"producer_data": response.json()})
    except ValueError:
        return unavailable("answered something that is not JSON", 502)


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    breaker = await app.ctx.breakers.get_breaker(CIRCUIT)
    return json({"status": "ok", "breaker": breaker.context.state})


# --8<-- [end:routes]


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
