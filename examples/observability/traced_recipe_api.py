"""recipe-api with distributed tracing: a server span per request, exported over OTLP.

Chapter 1's recipe-api (`GET /recipes/<id>`, `GET /health`) with the
chapter's `tracing` module: a request that carries a W3C `traceparent` or B3
headers continues that trace; one that carries none starts a new one. Spans
go over OTLP/HTTP to a collector from a background thread; `/health` counts
exports that failed.

Run it:

    python examples/observability/traced_recipe_api.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `OTLP_TRACES_URL`: the collector's OTLP/HTTP traces endpoint, ending in
  `/v1/traces` (default `http://127.0.0.1:4318/v1/traces`).
- `TRACE_SAMPLE`: the share of new traces kept, from 0 to 1 (default `1`).

A bad setting (`PORT=abc`, `TRACE_SAMPLE=all`, `OTLP_TRACES_URL=127.0.0.1:4318`)
stops it at start with exit code 2 and one line naming the variable and what
it accepts. Bad input
never takes it down: an unknown id answers 404, an id outside 1..2**31-1
answers 400, an unknown route 404 and a wrong method 405, each with a JSON
error body (no route accepts a body); malformed trace headers are ignored (a
new trace starts), and a collector that is down or stuck delays no request.
"""

from __future__ import annotations

import os
import sys

import orjson
import tracing
from pydantic import Field, ValidationError
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest, NotFound
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(tracing.TraceSettings):
    """Read once at start from the environment: HOST, PORT, OTLP_TRACES_URL, TRACE_SAMPLE."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=1, le=65535)


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
RECIPES = {42: {"id": 42, "name": "Chicken Tikka Masala", "steps": "Throw it in a pot..."}}

app = Sanic("recipe-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


@app.get("/recipes/<recipe_id:int>")
async def get_recipe(request: Request, recipe_id: int) -> HTTPResponse:
    if not 1 <= recipe_id <= MAX_ID:
        raise BadRequest(f"recipe id must be between 1 and {MAX_ID}")
    recipe = RECIPES.get(recipe_id)
    if recipe is None:
        raise NotFound(f"no recipe with id {recipe_id}")
    return json({"producer_pid": os.getpid(), "recipe": recipe})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "ok", "span_exports_failed": tracing.CountingExporter.failed})


# --8<-- [start:main]
def main() -> None:
    tracing.instrument(app, tracing.make_provider("recipe-api", settings))
    app.run(
        host=settings.host,
        port=settings.port,
        single_process=True,
        access_log=False,
        debug=False,
    )


# --8<-- [end:main]

if __name__ == "__main__":
    main()
