"""recipe-api over GraphQL: one endpoint, a schema file, and limits on what a query may cost.

`POST /graphql` runs a GraphQL request (`query`, `variables`, `operationName`
in a JSON body) against the schema in `recipe.graphql`, which sits beside this
file. `GET /graphql` serves the GraphiQL explorer to a browser, and `GET
/health` answers 200 once the server is ready.

Run it:

    python examples/protocols/graphql_producer.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4001`).

A bad setting (`PORT=abc`, `PORT=99999`) stops it at start with exit code 2 and
one line naming the variable and what it accepts.

What each mistake gets:

- a query that does not parse or does not validate against the schema, a
  variable of the wrong type, a body without a query: 400 with `errors`;
- a query nested deeper than 5 fields or costing more than 50: 400 with `errors`;
- a resolver that fails: 200, the data it could get, and the error with the
  `path` of the failed field; a failure of our own code is logged and
  answered as "internal error", without its details;
- malformed JSON, or JSON that is not an object: 400;
- a `Content-Type` other than `application/json`: 415;
- a body over 64 KiB on `POST /graphql` (the route that accepts a body): 413;
  an unknown route: 404; a wrong method: 405; each error body is JSON.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import ariadne
import orjson
from ariadne import MutationType, ObjectType, QueryType
from ariadne.explorer import ExplorerGraphiQL
from ariadne.validation import cost_validator
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLResolveInfo,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_operation_ast,
    get_variable_values,
)
from graphql.validation import ASTValidationRule, ValidationContext, ValidationRule
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.log import error_logger
from sanic.response import HTTPResponse, html, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT."""

    host: str = "127.0.0.1"
    port: int = Field(4001, ge=1, le=65535)


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


RECIPES: dict[str, dict[str, Any]] = {
    "42": {
        "id": "42",
        "name": "Chicken Tikka Masala",
        "steps": "Throw it in a pot...",
        "ingredients": [
            {"id": "1", "name": "Chicken", "quantity": "1 lb"},
            {"id": "2", "name": "Sauce", "quantity": "2 cups"},
        ],
    },
}
INGREDIENT_IDS = {"chicken": "1", "sauce": "2"}  # one id per ingredient name

# --8<-- [start:resolvers]
query = QueryType()
mutation = MutationType()
recipe_type = ObjectType("Recipe")
ingredient_type = ObjectType("Ingredient")


@query.field("pid")
def resolve_pid(_root: None, _info: GraphQLResolveInfo) -> int:
    return os.getpid()


@query.field("recipe")
def resolve_recipe(_root: None, _info: GraphQLResolveInfo, id: str) -> dict | None:
    return RECIPES.get(id)


@query.field("recipes")
def resolve_recipes(_root: None, _info: GraphQLResolveInfo, limit: int) -> list[dict]:
    if limit < 0:
        raise GraphQLError("limit must not be negative")
    return list(RECIPES.values())[:limit]


@recipe_type.field("calories")
def resolve_calories(recipe: dict, _info: GraphQLResolveInfo) -> int:
    # Stands in for a call to nutrition-api, which is down: the exception is
    # the one a real call would raise, internal address included.
    raise ConnectionError("nutrition-api at 10.0.0.7:4100 refused the connection")


@ingredient_type.field("usedIn")
def resolve_used_in(ingredient: dict, _info: GraphQLResolveInfo) -> list[dict]:
    # Called once per ingredient in the answer: the N+1 pattern.
    return [
        recipe
        for recipe in RECIPES.values()
        if any(item["id"] == ingredient["id"] for item in recipe["ingredients"])
    ]


# --8<-- [end:resolvers]


# --8<-- [start:mutation]
@mutation.field("addRecipe")
def resolve_add_recipe(_root: None, _info: GraphQLResolveInfo, recipe: dict) -> dict:
    if not recipe["name"].strip():
        raise GraphQLError("a recipe needs a name")
    recipe_id = str(max(int(key) for key in RECIPES) + 1)
    ingredients = []
    for item in recipe["ingredients"]:
        ingredient_id = INGREDIENT_IDS.setdefault(
            item["name"].lower(), str(len(INGREDIENT_IDS) + 1)
        )
        ingredients.append({"id": ingredient_id, **item})
    RECIPES[recipe_id] = {**recipe, "id": recipe_id, "ingredients": ingredients}
    return RECIPES[recipe_id]


# --8<-- [end:mutation]


# --8<-- [start:schema]
# The schema file sits beside this one, wherever it is run from.
type_defs = ariadne.load_schema_from_path(Path(__file__).with_name("recipe.graphql"))
schema = ariadne.make_executable_schema(type_defs, query, mutation, recipe_type, ingredient_type)
# --8<-- [end:schema]


# --8<-- [start:budgets]
MAX_DEPTH = 5
MAX_COST = 50
# One unit per lookup in the store, times the `limit` of the lists above it.
# Scalar fields are free (cost_validator's default_cost is 0).
COST_MAP = {
    "Query": {
        "recipe": {"complexity": 1},
        "recipes": {"complexity": 1, "multipliers": ["limit"]},
    },
    "Recipe": {"ingredients": {"complexity": 1}, "calories": {"complexity": 1}},
    "Ingredient": {"usedIn": {"complexity": 1}},
}
# --8<-- [end:budgets]


# --8<-- [start:depth]
class DepthLimit(ValidationRule):
    """Refuse an operation whose fields nest deeper than MAX_DEPTH, fragments included."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self.fragment_depths: dict[str, int] = {}

    def enter_operation_definition(self, operation: OperationDefinitionNode, *_: Any) -> None:
        depth = self.depth(operation.selection_set, frozenset())
        if depth > MAX_DEPTH:
            message = f"the query is {depth} fields deep; the limit is {MAX_DEPTH}"
            self.report_error(GraphQLError(message, operation))

    def depth(self, selections: SelectionSetNode | None, visiting: frozenset[str]) -> int:
        deepest = 0
        for selection in selections.selections if selections else ():
            if isinstance(selection, FieldNode):
                # Introspection (the explorer's own query is 13 levels deep) has
                # its own limit in graphql-core: MaxIntrospectionDepthRule.
                if not selection.name.value.startswith("__"):
                    deepest = max(deepest, 1 + self.depth(selection.selection_set, visiting))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self.depth(selection.selection_set, visiting))
            else:  # a fragment spread: as deep as the fragment it names
                deepest = max(deepest, self.fragment_depth(selection.name.value, visiting))
        return deepest

    def fragment_depth(self, name: str, visiting: frozenset[str]) -> int:
        # Memoized: a fragment spread a thousand times is measured once.
        if name not in self.fragment_depths:
            fragment = self.context.get_fragment(name)
            if fragment is None or name in visiting:  # unknown or cyclic: other rules say so
                return 0
            self.fragment_depths[name] = self.depth(fragment.selection_set, visiting | {name})
        return self.fragment_depths[name]


# --8<-- [end:depth]


# --8<-- [start:limits]
def limits(_context: Any, document: DocumentNode, data: dict) -> list[type[ASTValidationRule]]:
    """The rules for one request: its cost depends on its variables."""
    rules: list[type[ASTValidationRule]] = [DepthLimit]
    # Price the query with the variables execution will use: coerced, and with
    # the operation's own defaults (`query ($n: Int! = 1000)`) filled in.
    operation = get_operation_ast(document, data.get("operationName"))
    if operation is not None:
        variables = get_variable_values(
            schema, operation.variable_definitions or (), data.get("variables") or {}
        )
        # A list is errors: then execution refuses the request, with a clear message.
        if not isinstance(variables, list):
            rules.append(cost_validator(MAX_COST, variables=variables.coerced, cost_map=COST_MAP))
    return rules


# --8<-- [end:limits]


# --8<-- [start:errors]
# ariadne logs every error it reports, a client's typo included, with its
# traceback. format_error logs the server's own failures instead, and only those.
logging.getLogger("ariadne").setLevel(logging.CRITICAL)


def format_error(error: GraphQLError, debug: bool = False) -> dict:
    """What a client sees of an error: ours in full, an unexpected one hidden."""
    cause = error.original_error
    while isinstance(cause, GraphQLError):  # a GraphQLError a resolver raised, wrapped
        cause = cause.original_error
    if cause is None:  # a request error, or one we raised for the client to read
        return error.formatted
    error_logger.error("resolver failed at %s", error.path, exc_info=cause)
    return {**error.formatted, "message": "internal error"}


def status_for(result: dict) -> int:
    """400 for a request error, which never ran; 200 once execution started."""
    errors = result.get("errors", [])
    # Only an error raised while a field was resolved has a `path`.
    if errors and not any("path" in error for error in errors):
        return 400
    return 200


def request_error(message: str, status: int) -> HTTPResponse:
    return json({"errors": [{"message": message}]}, status=status)


# --8<-- [end:errors]


# --8<-- [start:routes]
# Sanic's own errors (404, 405, 413) are JSON too, whatever the client accepts.
app = Sanic("recipe-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024  # larger bodies get 413
app.config.MOTD = False

EXPLORER_HTML = ExplorerGraphiQL(title="recipe-api").html(None)


@app.post("/graphql")
async def run_graphql(request: Request) -> HTTPResponse:
    # Requiring JSON also stops a cross-site HTML form from posting a mutation:
    # a browser sends application/json cross-site only if CORS allows it.
    if request.content_type.split(";")[0].strip() != "application/json":
        return request_error("send the request as JSON (Content-Type: application/json)", 415)
    try:
        data = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        return request_error("the body is not valid JSON", 400)
    _success, result = await ariadne.graphql(
        schema,
        data,  # ariadne checks its shape: an object, with a query string
        validation_rules=limits,
        error_formatter=format_error,
        debug=False,  # no stack traces in answers
    )
    return json(result, status=status_for(result))


@app.get("/graphql")
async def explorer(request: Request) -> HTTPResponse:
    return html(EXPLORER_HTML)


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
