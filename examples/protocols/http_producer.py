"""recipe-api, speaking JSON over HTTP with explicit schemas in both directions.

`GET /recipes/<id>` answers a recipe, `POST /recipes` creates one from a JSON
body, and `GET /health` answers 200 once the server is ready. The store keeps
fields no client may see (what the supplier charges, an internal note): every
answer is built from an explicit response schema, never from the record
itself, so those fields cannot leave the process by accident.

Run it:

    python examples/protocols/http_producer.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).

A bad setting (`PORT=abc`, `PORT=99999`) stops it at start with exit code 2 and
one line naming the variable and what it accepts.

What each mistake gets, always with a JSON error body:

- malformed JSON: 400;
- valid JSON that is not a valid recipe (missing, unknown or mistyped fields,
  a text too long, too many ingredients): 422, with each problem (at most 20)
  listed under `context.errors` with its path (`loc`), checked by a pydantic
  model that refuses unknown fields;
- a recipe name that already exists: 409;
- a body over 16 KiB (on routes that accept a body: `POST /recipes`): 413;
- a `Content-Type` other than `application/json`: 415;
- an `Accept` header that excludes JSON: 406;
- an unknown recipe or route: 404; a wrong method: 405.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Any, TypedDict

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest, NotFound, SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
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


settings = load_settings()
# --8<-- [end:settings]


class ClientError(SanicException):
    """A 4xx: answered with a JSON body, and no traceback in the log."""

    quiet = True


MAX_ID = 2**31 - 1


# --8<-- [start:record]
@dataclass
class Ingredient:
    id: int
    name: str
    quantity: str


@dataclass
class RecipeRecord:
    """A recipe as the store keeps it: more than any client may see."""

    id: int
    name: str
    steps: str
    ingredients: list[Ingredient]
    supplier_price_cents: int  # what we pay for it: a business secret
    internal_note: str  # for staff only


# --8<-- [end:record]


# --8<-- [start:schema]
class PublicIngredient(TypedDict):
    id: int
    name: str
    quantity: str


class PublicRecipe(TypedDict):
    """The response schema: every field a client sees, listed once, here."""

    id: int
    name: str
    steps: str
    ingredients: list[PublicIngredient]


def to_public(record: RecipeRecord) -> PublicRecipe:
    # A field added to RecipeRecord tomorrow stays private until someone adds
    # it here, on purpose. Serializing the record itself would publish it.
    return {
        "id": record.id,
        "name": record.name,
        "steps": record.steps,
        "ingredients": [
            {"id": item.id, "name": item.name, "quantity": item.quantity}
            for item in record.ingredients
        ],
    }


# --8<-- [end:schema]

RECIPES: dict[int, RecipeRecord] = {
    42: RecipeRecord(
        id=42,
        name="Chicken Tikka Masala",
        steps="Throw it in a pot...",
        ingredients=[Ingredient(1, "Chicken", "1 lb"), Ingredient(2, "Sauce", "2 cups")],
        supplier_price_cents=1234,
        internal_note="Supplier gives us 30% off until March; do not publish",
    ),
}


# --8<-- [start:model]
# Unknown fields are errors; every string is stripped, then may not be empty.
FORBID_EXTRA = ConfigDict(extra="forbid", str_strip_whitespace=True, str_min_length=1)


class NewIngredient(BaseModel):
    model_config = FORBID_EXTRA

    name: str = Field(max_length=100)
    quantity: str = Field(max_length=50)


class NewRecipe(BaseModel):
    """What a client may send to create a recipe: these fields and nothing else."""

    model_config = FORBID_EXTRA

    name: str = Field(max_length=100)
    steps: str = Field(max_length=2000)
    ingredients: list[NewIngredient] = Field(min_length=1, max_length=50)


# --8<-- [end:model]


# --8<-- [start:problems]
MAX_PROBLEMS = 20  # a 16 KiB body of unknown fields must not get a 200 KiB answer


def recipe_problems(error: ValidationError) -> list[dict[str, Any]]:
    """Each problem with its path (`loc`) and pydantic's message, never the input."""
    problems = error.errors(
        include_url=False,  # a link to pydantic's documentation: noise for a client
        include_input=False,  # what the client sent: it knows already
        include_context=False,  # the same limits again, as data
    )
    return problems[:MAX_PROBLEMS]


# --8<-- [end:problems]


# --8<-- [start:accept]
QVALUE = re.compile(r"0(\.\d{0,3})?|1(\.0{0,3})?")
JSON_RANGES = {("application", "json"): 2, ("application", "*"): 1, ("*", "*"): 0}


def json_quality(accept: str | None) -> float:
    """How much the client wants JSON (0 to 1), from its Accept header.

    The most specific range that matches wins: in `application/json;q=0, */*`
    JSON is refused, even though `*/*` alone would allow it. A header with no
    readable range at all is treated as absent, which RFC 9110 permits.
    """
    specificity, quality, readable = -1, 0.0, False
    for item in (accept or "").split(","):
        media_range, *params = item.split(";")
        kind, _, subtype = media_range.strip().lower().partition("/")
        q = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                q = float(value) if QVALUE.fullmatch(value.strip()) else -1.0
        if not kind or not subtype or q < 0:
            continue  # unreadable: ignore this range
        readable = True
        rank = JSON_RANGES.get((kind, subtype), -1)
        if rank > specificity:
            specificity, quality = rank, q
    return quality if readable else 1.0


# --8<-- [end:accept]


# --8<-- [start:negotiation]
def require_json_acceptable(request: Request) -> None:
    if json_quality(request.headers.get("accept")) == 0:
        message = "this resource is only available as application/json"
        raise ClientError(message, status_code=406)


def require_json_body(request: Request) -> Any:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ClientError(
            "send the recipe as application/json",
            status_code=415,
            headers={"Accept-Post": "application/json"},
        )
    try:
        return orjson.loads(request.body)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"malformed JSON: {error}") from None


# --8<-- [end:negotiation]


# --8<-- [start:app]
# Sanic picks an error's format from the request's Accept header, and falls back
# to plain text when JSON is not acceptable; JSONRenderer as the base makes every
# error body JSON, the 406 that refuses a client's Accept header included.
errors_as_json = ErrorHandler(base=JSONRenderer)
app = Sanic("recipe-api", dumps=orjson.dumps, error_handler=errors_as_json)
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 16 * 1024  # a recipe is well under 16 KiB; more is 413
app.config.MOTD = False
# --8<-- [end:app]


# --8<-- [start:read]
# HEAD is GET without the body (Sanic strips it); Sanic serves it only where asked.
@app.route("/recipes/<recipe_id:int>", methods=["GET", "HEAD"])
async def get_recipe(request: Request, recipe_id: int) -> HTTPResponse:
    require_json_acceptable(request)
    if not 1 <= recipe_id <= MAX_ID:
        raise BadRequest(f"recipe id must be between 1 and {MAX_ID}")
    record = RECIPES.get(recipe_id)
    if record is None:
        raise NotFound(f"no recipe with id {recipe_id}")
    return json({"producer_pid": os.getpid(), "recipe": to_public(record)})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "ok"})


# --8<-- [end:read]


# --8<-- [start:create]
@app.post("/recipes")
async def create_recipe(request: Request) -> HTTPResponse:
    require_json_acceptable(request)
    body = require_json_body(request)
    try:
        recipe = NewRecipe.model_validate(body)
    except ValidationError as error:
        problems = {"errors": recipe_problems(error)}
        message = "the JSON is not a valid recipe"
        raise ClientError(message, status_code=422, context=problems) from None
    # No await between this check and the insert: no other request can run in
    # between on the event loop, so two POSTs cannot both take the same name or id.
    if any(r.name.casefold() == recipe.name.casefold() for r in RECIPES.values()):
        message = f"a recipe named {recipe.name!r} already exists"
        raise ClientError(message, status_code=409)
    numbered = enumerate(recipe.ingredients, 1)
    record = RecipeRecord(
        id=max(RECIPES) + 1,
        name=recipe.name,
        steps=recipe.steps,
        ingredients=[Ingredient(i, item.name, item.quantity) for i, item in numbered],
        supplier_price_cents=0,
        internal_note=f"created through the API by {request.ip}; price not negotiated",
    )
    RECIPES[record.id] = record
    return json(
        {"producer_pid": os.getpid(), "recipe": to_public(record)},
        status=201,
        headers={"Location": f"/recipes/{record.id}"},
    )


# --8<-- [end:create]


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
