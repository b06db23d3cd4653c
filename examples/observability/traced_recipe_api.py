"""recipe-api with distributed tracing: a server span per request, exported to Zipkin.

Chapter 1's recipe-api (`GET /recipes/<id>`, `GET /health`) with the
chapter's `tracing` module: a request that carries a W3C `traceparent` or B3
headers continues that trace; one that carries none starts a new one. Spans
go to Zipkin as v2 JSON from a background thread; `/health` counts exports
that failed.

Run it:

    ZIPKIN=http://127.0.0.1:9411/api/v2/spans python examples/observability/traced_recipe_api.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `ZIPKIN`: the Zipkin v2 spans endpoint (default
  `http://127.0.0.1:9411/api/v2/spans`).
- `TRACE_SAMPLE`: the share of new traces kept, from 0 to 1 (default `1`).

A bad setting stops it at start-up with a message and exit code 2. Bad
input never takes it down: an unknown id answers 404, an id outside
1..2**31-1 answers 400, malformed trace headers are ignored (a new trace
starts), and a Zipkin that is down or stuck delays no request.
"""

from __future__ import annotations

import os
import sys

import orjson
import tracing
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest, NotFound
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

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
    return json({"status": "ok", "span_exports_failed": tracing.CountingExporter.failed})


# --8<-- [start:main]
def main() -> None:
    try:
        settings = tracing.settings_from(os.environ)
    except ValueError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        sys.exit(2)
    tracing.instrument(app, tracing.make_provider("recipe-api", settings))
    app.run(
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "4000")),
        single_process=True,
        access_log=False,
        debug=False,
    )


# --8<-- [end:main]

if __name__ == "__main__":
    main()
