"""recipe-api with the chaos layer: crashes, pauses, delays, errors and drops on demand.

Chapter 1's recipe-api (`GET /recipes/<id>`, `GET /health`, `GET /live`) plus
examples/resilience/chaos.py, which sits beside it: three lines more. With
every rate at 0 (the default) it is chapter 1's service. `GET /health` also
says whether chaos is on (`{"status": "ok", "chaos": "off"}`); SIGUSR1 turns
it off while the process runs, SIGUSR2 on again.

Run it:

    python examples/resilience/chaos_recipe_api.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `CHAOS_CRASH_RATE`: share of requests that end the process with exit code 86
  (default `0`; rates are between 0 and 1, 0.005 is one request in 200).
- `CHAOS_PAUSE_RATE`: share of requests that block the event loop for
  `CHAOS_PAUSE_MS` (default `0`).
- `CHAOS_PAUSE_MS`: how long a pause blocks the loop, in ms (default `300`).
- `CHAOS_DELAY_RATE`: share of requests delayed by `CHAOS_DELAY_MS`, others
  going on meanwhile (default `0`).
- `CHAOS_DELAY_MS`: how long a delay lasts, in ms (default `200`).
- `CHAOS_ERROR_RATE`: share of requests answered 503 `{"error": "chaos"}`
  (default `0`).
- `CHAOS_DROP_RATE`: share of requests whose connection is closed without an
  answer (default `0`).
- `CHAOS_SEED`: seed of the random draws, a whole number (default `0`).

A bad setting (`PORT=abc`, `CHAOS_ERROR_RATE=1.5`, `CHAOS_SEED=-1`) stops it at
start with exit code 2 and one line naming the variable and what it accepts.

Bad input never takes it down: an unknown or malformed id answers 404, an id
outside 1..2**31-1 answers 400, an unknown route 404 and a wrong method 405,
each with a JSON error body. The 503s, drops and crashes above are faults
injected on purpose, on valid requests too, and only when a rate says so.
"""

from __future__ import annotations

import os
import sys

import orjson
from chaos import ChaosSettings, install_chaos  # examples/resilience/chaos.py
from pydantic import Field, ValidationError
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest, NotFound
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(ChaosSettings):
    """HOST, PORT, and the CHAOS_* variables of ChaosSettings."""

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

# --8<-- [start:app]
app = Sanic("recipe-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False
install_chaos(app, settings)  # all rates 0: nothing happens


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "ok", "chaos": "on" if request.app.ctx.chaos.on else "off"})


# --8<-- [end:app]


@app.get("/recipes/<recipe_id:int>")
async def get_recipe(request: Request, recipe_id: int) -> HTTPResponse:
    if not 1 <= recipe_id <= MAX_ID:
        raise BadRequest(f"recipe id must be between 1 and {MAX_ID}")
    recipe = RECIPES.get(recipe_id)
    if recipe is None:
        raise NotFound(f"no recipe with id {recipe_id}")
    return json({"producer_pid": os.getpid(), "recipe": recipe})


@app.get("/live")
async def live(request: Request) -> HTTPResponse:
    return json({"status": "alive"})


def main() -> None:
    app.run(
        host=settings.host,
        port=settings.port,
        single_process=True,  # one process: a crash is this process's exit code
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
