"""web-api with distributed tracing: its spans and recipe-api's make one trace.

Chapter 1's web-api (`GET /` asks recipe-api at `TARGET` for recipe 42) with
the chapter's `tracing` module: a server span for each request it answers, a
client span for its call to recipe-api, and the trace passed on in that call
as a W3C `traceparent` header and as B3 headers. Spans go over OTLP/HTTP to
a collector (the OpenTelemetry Collector, Jaeger or Zipkin) from a background
thread.

Run it (with traced_recipe_api.py already listening on port 4000):

    TARGET=http://127.0.0.1:4000 python examples/observability/traced_web_api.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `3000`).
- `TARGET`: base URL of recipe-api (default `http://127.0.0.1:4000`).
- `TARGET_TIMEOUT`: seconds to wait for recipe-api, per call (default `2`).
- `OTLP_TRACES_URL`: the collector's OTLP/HTTP traces endpoint, ending in
  `/v1/traces` (default `http://127.0.0.1:4318/v1/traces`).
- `TRACE_SAMPLE`: the share of new traces kept, from 0 to 1 (default `1`).

A bad setting (`PORT=abc`, `TARGET=not-a-url`, `TARGET_TIMEOUT=-1`,
`TRACE_SAMPLE=all`, `OTLP_TRACES_URL=127.0.0.1:4318`) stops it at start with
exit code 2 and one line naming the variable and what it accepts.

When recipe-api is down, times out or answers something unusable, web-api
answers 502 with a JSON error at once, and the trace shows where it failed.
An unknown route answers 404 and a wrong method 405, each with a JSON error
body; no route accepts a body.
"""

from __future__ import annotations

import os
import sys

import httpx
import orjson
import tracing
from pydantic import Field, HttpUrl, PositiveFloat, ValidationError
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(tracing.TraceSettings):
    """Read once at start from the environment: HOST, PORT, TARGET..., OTLP_TRACES_URL..."""

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

app = Sanic("web-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


# --8<-- [start:client]
@app.before_server_start
async def open_client(app: Sanic) -> None:
    app.ctx.recipes = httpx.AsyncClient(
        base_url=str(settings.target), timeout=settings.target_timeout
    )
    # Each call through this client gets a client span and carries the trace headers.
    tracing.instrument_client(app.ctx.recipes, app.ctx.tracer_provider)


@app.after_server_stop
async def close_client(app: Sanic) -> None:
    await app.ctx.recipes.aclose()


# --8<-- [end:client]


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
    return json({"status": "ok", "span_exports_failed": tracing.CountingExporter.failed})


def main() -> None:
    app.ctx.tracer_provider = tracing.make_provider("web-api", settings)
    tracing.instrument(app, app.ctx.tracer_provider)
    app.run(
        host=settings.host,
        port=settings.port,
        single_process=True,
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
