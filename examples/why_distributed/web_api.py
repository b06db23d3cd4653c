"""web-api: the consumer service used across the whole site.

`GET /` asks recipe-api (at `TARGET`) for recipe 42 through one shared HTTP
client, and answers with its own pid beside the producer's answer.
`GET /live` answers 200 while the process and its event loop run, never calling recipe-api.

Run it (with recipe-api already listening on port 4000):

    TARGET=http://127.0.0.1:4000 python examples/why_distributed/web_api.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `3000`).
- `TARGET`: base URL of recipe-api (default `http://127.0.0.1:4000`).
- `TARGET_TIMEOUT`: seconds to wait for recipe-api, per call (default `2`).

When recipe-api is down, refuses the connection, times out or answers
something unusable, web-api answers 502 with a JSON error at once: it never
hangs and never answers 500. An unknown route answers 404 and a wrong method
405, each with a JSON error body; no route accepts a body.

A bad setting (`PORT=abc`, `TARGET=not-a-url`, `TARGET_TIMEOUT=-1`) stops it at
start with exit code 2 and one line naming the variable and what it accepts.
"""

from __future__ import annotations

import os
import sys

import httpx
import orjson
from pydantic import Field, HttpUrl, PositiveFloat, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, TARGET, TARGET_TIMEOUT."""

    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    target: HttpUrl = HttpUrl("http://127.0.0.1:4000")
    target_timeout: PositiveFloat = 2.0


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


# --8<-- [start:client]

# Every error body is JSON, whatever the client's Accept header says: the
# fallback format alone still answers text when a client does not accept JSON.
app = Sanic("web-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


@app.before_server_start
async def open_client(app: Sanic) -> None:
    # One client for the life of the process: it keeps connections to
    # recipe-api alive between requests instead of a new TCP handshake each time.
    app.ctx.recipes = httpx.AsyncClient(
        base_url=str(settings.target), timeout=settings.target_timeout
    )


@app.after_server_stop
async def close_client(app: Sanic) -> None:
    await app.ctx.recipes.aclose()


# --8<-- [end:client]


# --8<-- [start:routes]
def bad_gateway(reason: str) -> HTTPResponse:
    return json({"error": "recipe-api unavailable", "reason": reason}, status=502)


@app.get("/")
async def index(request: Request) -> HTTPResponse:
    try:
        response = await app.ctx.recipes.get("/recipes/42")
        response.raise_for_status()
        producer_data = response.json()
    except httpx.TimeoutException:
        return bad_gateway(f"no answer within {settings.target_timeout:g}s")
    except httpx.HTTPStatusError as error:
        return bad_gateway(f"answered {error.response.status_code}")
    except httpx.TransportError as error:  # refused, reset, DNS...
        return bad_gateway(type(error).__name__)
    except ValueError:  # the body was not JSON
        return bad_gateway("answered something that is not JSON")
    return json({"consumer_pid": os.getpid(), "producer_data": producer_data})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "ok"})


@app.get("/live")
async def live(request: Request) -> HTTPResponse:
    # Looks at nothing: if this handler runs, the process and its event loop answer.
    return json({"status": "alive"})


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
