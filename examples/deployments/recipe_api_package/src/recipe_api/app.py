"""recipe-api, packaged: the site's producer service as the installable `dp-recipe-api`.

The same service as examples/why_distributed/recipe_api.py, laid out as a package:
`GET /recipes/<id>` answers a recipe as JSON, `GET /health` answers
`{"status": "ok", "version": ...}` with the version of the installed package.

Run it, after `pip install dp-recipe-api` (the wheel puts a `recipe-api` command on
the PATH of the environment it is installed in):

    recipe-api

`recipe-api --version` prints the installed version and exits.

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).

A bad setting (`PORT=abc`, `PORT=99999`) stops it at start with exit code 2 and one
line naming the variable and what it accepts. Every error body is JSON; bodies over
64 KiB get 413; SIGTERM stops it cleanly with exit code 0.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import orjson
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest, NotFound
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

from recipe_api import __version__


class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT."""

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


def find_recipe(recipe_id: int) -> dict[str, Any]:
    """The recipe, or the client error to answer: 400 out of range, 404 unknown."""
    if not 1 <= recipe_id <= MAX_ID:
        raise BadRequest(f"recipe id must be between 1 and {MAX_ID}")
    recipe = RECIPES.get(recipe_id)
    if recipe is None:
        raise NotFound(f"no recipe with id {recipe_id}")
    return recipe


# --8<-- [start:routes]
def health() -> dict[str, str]:
    """What GET /health answers: ready, and which release is running."""
    return {"status": "ok", "version": __version__}


app = Sanic("recipe-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024  # larger bodies get 413
app.config.MOTD = False


@app.get("/recipes/<recipe_id:int>")
async def get_recipe(request: Request, recipe_id: int) -> HTTPResponse:
    return json({"recipe": find_recipe(recipe_id)})


@app.get("/health")
async def get_health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json(health())


# --8<-- [end:routes]


# --8<-- [start:main]
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="recipe-api", description="Serve recipes over HTTP.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """The `recipe-api` command: options first, then the environment, then serve."""
    parse_args(argv)
    settings = load_settings()
    app.run(host=settings.host, port=settings.port, single_process=True, access_log=False)


# --8<-- [end:main]
