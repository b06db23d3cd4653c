"""A deliberately slow backend, to watch a load balancer queue requests.

`GET /slow?ms=N` waits N milliseconds (without blocking the event loop) and
answers with the pid of the process, how long it waited, how many requests
this process was serving at that moment (`in_flight`, this one included),
and the `X-Forwarded-For` and `X-Forwarded-Proto` headers it received, so
you can see what a proxy in front of it adds. `GET /health` answers 200.

Run it:

    python examples/scaling/slow_service.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4010`).

A bad setting (`PORT=abc`, `PORT=99999`) stops it at start with exit code 2 and
one line naming the variable and what it accepts.

`ms` must be an integer from 0 to 10000: anything else answers 400 with a
JSON error body. An unknown route answers 404 and a wrong method 405, each
with a JSON error body; request bodies are limited to 64 KiB. SIGTERM and
SIGINT stop it with exit code 0, after the requests in flight.
"""

from __future__ import annotations

import asyncio
import os
import sys

import orjson
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT."""

    host: str = "127.0.0.1"
    port: int = Field(4010, ge=1, le=65535)


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

MAX_MS = 10_000

app = Sanic("slow-service", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False
app.ctx.in_flight = 0


# --8<-- [start:slow]
@app.get("/slow")
async def slow(request: Request) -> HTTPResponse:
    raw = request.args.get("ms", "100")
    if not raw.isdigit() or int(raw) > MAX_MS:
        raise BadRequest(f"ms must be an integer from 0 to {MAX_MS}")
    app.ctx.in_flight += 1
    try:
        in_flight = app.ctx.in_flight  # requests this process is serving right now
        await asyncio.sleep(int(raw) / 1000)  # waits without holding the event loop
    finally:
        app.ctx.in_flight -= 1
    return json(
        {
            "pid": os.getpid(),
            "slept_ms": int(raw),
            "in_flight": in_flight,
            "x_forwarded_for": request.headers.get("x-forwarded-for"),
            "x_forwarded_proto": request.headers.get("x-forwarded-proto"),
        }
    )


# --8<-- [end:slow]


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "ok"})


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
