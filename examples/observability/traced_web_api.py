"""web-api with distributed tracing: its spans and recipe-api's make one trace.

Chapter 1's web-api (`GET /` asks recipe-api at `TARGET` for recipe 42) with
the chapter's `tracing` module: a server span for each request it answers, a
client span for its call to recipe-api, and the trace passed on in that call
as a W3C `traceparent` header and as B3 headers. Spans go to Zipkin as v2
JSON from a background thread.

Run it (with traced_recipe_api.py already listening on port 4000):

    TARGET=http://127.0.0.1:4000 python examples/observability/traced_web_api.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `3000`).
- `TARGET`: base URL of recipe-api (default `http://127.0.0.1:4000`).
- `TARGET_TIMEOUT`: seconds to wait for recipe-api, per call (default `2`).
- `ZIPKIN`: the Zipkin v2 spans endpoint (default
  `http://127.0.0.1:9411/api/v2/spans`).
- `TRACE_SAMPLE`: the share of new traces kept, from 0 to 1 (default `1`).

When recipe-api is down, times out or answers something unusable, web-api
answers 502 with a JSON error at once, and the trace shows where it failed.
"""

from __future__ import annotations

import os
import sys

import httpx
import orjson
import tracing
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

TARGET = os.environ.get("TARGET", "http://127.0.0.1:4000")
TARGET_TIMEOUT = float(os.environ.get("TARGET_TIMEOUT", "2"))

app = Sanic("web-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


# --8<-- [start:client]
@app.before_server_start
async def open_client(app: Sanic) -> None:
    app.ctx.recipes = httpx.AsyncClient(base_url=TARGET, timeout=TARGET_TIMEOUT)
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
        return bad_gateway(f"no answer within {TARGET_TIMEOUT:g}s")
    except httpx.HTTPStatusError as error:
        return bad_gateway(f"answered {error.response.status_code}")
    except httpx.TransportError as error:  # refused, reset, DNS...
        return bad_gateway(type(error).__name__)
    except ValueError:  # the body was not JSON
        return bad_gateway("answered something that is not JSON")
    return json({"consumer_pid": os.getpid(), "producer_data": producer_data})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    return json({"status": "ok", "span_exports_failed": tracing.CountingExporter.failed})


def main() -> None:
    try:
        settings = tracing.settings_from(os.environ)
    except ValueError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        sys.exit(2)
    app.ctx.tracer_provider = tracing.make_provider("web-api", settings)
    tracing.instrument(app, app.ctx.tracer_provider)
    app.run(
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "3000")),
        single_process=True,
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
