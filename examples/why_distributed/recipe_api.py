"""recipe-api: the producer service used across the whole site.

It answers `GET /recipes/<id>` with a recipe as JSON, including the pid of the
process that served it, and `GET /health` with 200 once it is ready.
`GET /live` answers 200 while the process and its event loop run, looking at nothing else.

Run it:

    python examples/why_distributed/recipe_api.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `ACCESS_LOG`: `1` logs a line per request (default `0`: off, for throughput).

A bad setting (`PORT=abc`, `PORT=99999`, `ACCESS_LOG=maybe`) stops it at start
with exit code 2 and one line naming the variable and what it accepts.

Bad input never takes it down: an unknown or malformed id answers 404, an id
outside 1..2**31-1 answers 400, an unknown route 404 and a wrong method 405,
each with a JSON error body. No route here accepts a body; the limit that
answers 413 on routes that accept a body is set anyway (64 KiB), as on every
service of the site.
"""

from __future__ import annotations

import os
import sys

import orjson
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest, NotFound
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, ACCESS_LOG."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=1, le=65535)
    access_log: bool = False


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


# --8<-- [start:setup]
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

# Every error body is JSON, whatever the client's Accept header says: the
# fallback format alone still answers text when a client does not accept JSON.
app = Sanic("recipe-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024  # larger bodies get 413
app.config.MOTD = False
# --8<-- [end:setup]


# --8<-- [start:routes]
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
    return json({"status": "ok"})


# --8<-- [end:routes]
# --8<-- [start:live]
@app.get("/live")
async def live(request: Request) -> HTTPResponse:
    # Looks at nothing: if this handler runs, the process and its event loop answer.
    return json({"status": "alive"})


# --8<-- [end:live]


# --8<-- [start:run]
def main() -> None:
    app.run(
        host=settings.host,
        port=settings.port,
        single_process=True,  # one process: the pid in each answer is this one
        # A log line per request costs a large share of throughput: see the benchmark.
        access_log=settings.access_log,
        debug=False,
    )


if __name__ == "__main__":
    main()
# --8<-- [end:run]
