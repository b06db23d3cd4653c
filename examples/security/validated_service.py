"""A recipe service where every input passes a schema before any code uses it.

`POST /recipes` takes a recipe as JSON, `GET /recipes/<id>` returns one and
`GET /recipes?tag=...&limit=...` lists them. Bodies, path and query parameters
are each validated by a pydantic model: unknown fields are refused, strings
and lists have a maximum length, numbers a range, and the body a maximum size.

Whatever is wrong, the answer is a 4xx with a JSON body that names the field:
`422` with `{"error": ..., "problems": [{"loc": [...], "msg": ..., "type": ...}]}`
for a value the schema refuses, `400` for a body that is not JSON, `413` for a
body over the limit, `404` for an unknown recipe or route, `405` for a wrong
method. The rejected value itself is never echoed back.

Run it:

    python examples/security/validated_service.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `MAX_BODY_BYTES`: largest request body accepted, in bytes (default `16384`).

A bad setting (`PORT=abc`, `MAX_BODY_BYTES=-1`) stops it at start with exit
code 2 and one line naming the variable and what it accepts. It stops cleanly
on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import Annotated, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import NotFound, PayloadTooLarge
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, MAX_BODY_BYTES."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=1, le=65535)
    max_body_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)


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


# --8<-- [start:models]
Name = Annotated[str, Field(min_length=1, max_length=100)]
Tag = Annotated[str, Field(min_length=1, max_length=30, pattern=r"^[a-z0-9-]+$")]


class Strict(BaseModel):
    # extra="forbid": a field the schema does not know is an error, not ignored.
    # strict=True: "42" is not an int and 42 is not a str; no guessing.
    model_config = ConfigDict(extra="forbid", strict=True)


class Ingredient(Strict):
    name: Name
    quantity: Annotated[str, Field(min_length=1, max_length=30)]


class NewRecipe(Strict):
    name: Name
    steps: Annotated[str, Field(max_length=2000)] = ""
    ingredients: Annotated[list[Ingredient], Field(min_length=1, max_length=50)]
    tags: Annotated[list[Tag], Field(max_length=10)] = []


class ListQuery(BaseModel):
    # Query strings are text: lax mode turns "10" into 10, and still refuses "ten".
    model_config = ConfigDict(extra="forbid")
    tag: Tag | None = None
    limit: int = Field(20, ge=1, le=100)


class RecipePath(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recipe_id: int = Field(ge=1, le=2**31 - 1)


# --8<-- [end:models]


# --8<-- [start:errors]
class Invalid(Exception):
    """A request the schema refused: 422 with where and why, never the value."""

    def __init__(self, error: ValidationError, where: str) -> None:
        self.problems = [
            {"loc": [where, *problem["loc"]], "msg": problem["msg"], "type": problem["type"]}
            for problem in error.errors(include_url=False, include_input=False)
        ]


class NotJSON(Exception):
    """A body that does not parse as JSON at all: 400."""


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], where: str, data: object) -> M:
    """`data` checked against `model`: JSON bytes (a body) or a dict (path, query)."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data)  # parses and validates in one pass
        return model.model_validate(data)
    except ValidationError as error:
        if any(problem["type"] == "json_invalid" for problem in error.errors()):
            raise NotJSON from None
        raise Invalid(error, where) from None


# --8<-- [end:errors]


# --8<-- [start:handlers]
app = Sanic("validated-service", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = settings.max_body_bytes  # larger bodies get 413, unread
app.config.MOTD = False


@app.exception(Invalid)
async def invalid(request: Request, error: Invalid) -> HTTPResponse:
    return json({"error": "invalid request", "problems": error.problems}, status=422)


@app.exception(PayloadTooLarge)
async def too_large(request: Request, error: PayloadTooLarge) -> HTTPResponse:
    # Refused from the Content-Length header (or the bytes counted so far): never read whole.
    limit = f"at most {settings.max_body_bytes} bytes"
    return json({"error": "body too large", "problems": [{"loc": ["body"], "msg": limit}]}, 413)


@app.exception(NotJSON)
async def not_json(request: Request, error: NotJSON) -> HTTPResponse:
    return json({"error": "the body is not valid JSON", "problems": [{"loc": ["body"]}]}, 400)


# --8<-- [end:handlers]


# --8<-- [start:routes]
# At most this many recipes are kept: a client cannot grow the memory without bound.
MAX_RECIPES = 1000
RECIPES: OrderedDict[int, dict] = OrderedDict()


@app.post("/recipes")
async def create_recipe(request: Request) -> HTTPResponse:
    recipe = parse(NewRecipe, "body", request.body)
    recipe_id = max(RECIPES, default=0) + 1
    RECIPES[recipe_id] = {"id": recipe_id, **recipe.model_dump()}
    while len(RECIPES) > MAX_RECIPES:
        RECIPES.popitem(last=False)
    return json(RECIPES[recipe_id], status=201)


@app.get("/recipes/<recipe_id>")
async def get_recipe(request: Request, recipe_id: str) -> HTTPResponse:
    path = parse(RecipePath, "path", {"recipe_id": recipe_id})
    if path.recipe_id not in RECIPES:
        raise NotFound(f"no recipe with id {path.recipe_id}")
    return json(RECIPES[path.recipe_id])


@app.get("/recipes")
async def list_recipes(request: Request) -> HTTPResponse:
    # A repeated parameter (?limit=1&limit=2) stays a list, and the schema refuses it.
    raw = {key: values[0] if len(values) == 1 else values for key, values in request.args.items()}
    query = parse(ListQuery, "query", raw)
    found = [r for r in reversed(RECIPES.values()) if query.tag is None or query.tag in r["tags"]]
    return json({"recipes": found[: query.limit]})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "ok"})


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
