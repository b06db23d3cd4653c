"""Schema evolution: an old client's query against a strict schema and an evolved one.

The Node.js book's web-api sends its kitchen-sink query with `$id: ID`, a
nullable variable, because the book's schema says `recipe(id: ID)`. This
site's `recipe.graphql` says `recipe(id: ID!)`, and GraphQL refuses to pass a
nullable variable to a non-null argument: the old query no longer validates.
The evolved schema keeps `recipe(id: ID)` nullable (deprecated), refuses a
null id in its resolver with a clear error, and adds `recipeById(id: ID!)`
for new clients. This program runs the old query against both schemas with
graphql-core, the engine inside the producer, and prints each answer.

Run it:

    python examples/protocols/graphql_evolution.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ariadne import QueryType, make_executable_schema
from graphql import GraphQLError, GraphQLResolveInfo, GraphQLSchema, graphql_sync

# --8<-- [start:book_query]
# The query of the book's web-api (consumer-graphql.js), as deployed.
BOOK_QUERY = """query kitchenSink ($id:ID) {
  recipe(id: $id) {
    id name
    ingredients {
      name quantity
    }
  }
  pid
}"""
# --8<-- [end:book_query]

STRICT = (Path(__file__).parent / "recipe.graphql").read_text()  # recipe-api's own schema

# --8<-- [start:evolved]
# In place of `recipe(id: ID!): Recipe` (and its description), the change that broke
# old clients:
EVOLVED_FIELDS = """
  "Kept for old clients, whose queries declare $id: ID. A null id is refused."
  recipe(id: ID): Recipe @deprecated(reason: "Use recipeById: its id is required.")
  "null when there is no such recipe: a missing recipe is an answer, not an error."
  recipeById(id: ID!): Recipe
"""
# --8<-- [end:evolved]
STRICT_FIELD = (  # the field with its description, as recipe.graphql has it
    '  "null when there is no such recipe: a missing recipe is an answer, not an error."\n'
    "  recipe(id: ID!): Recipe\n"
)
EVOLVED = STRICT.replace(STRICT_FIELD, EVOLVED_FIELDS.removeprefix("\n"))
if EVOLVED == STRICT:  # the file changed under us: this program would compare nothing
    raise RuntimeError("recipe.graphql no longer declares recipe(id: ID!)")

RECIPES = {"42": {"id": "42", "name": "Chicken Tikka Masala", "steps": "Throw it in a pot...",
                  "ingredients": [{"id": "1", "name": "Chicken", "quantity": "1 lb"}]}}  # fmt: skip

# --8<-- [start:resolvers]
query = QueryType()


@query.field("recipe")
def resolve_recipe(_root: None, _info: GraphQLResolveInfo, id: str | None = None) -> Any:
    # The schema can no longer refuse a null id for us: the resolver does, with
    # an error the client can read (a field error: 200, null, and the path).
    if id is None:
        raise GraphQLError("recipe: id is required (and recipe is deprecated: use recipeById)")
    return RECIPES.get(id)


@query.field("pid")
def resolve_pid(_root: None, _info: GraphQLResolveInfo) -> int:
    return os.getpid()


@query.field("recipeById")
def resolve_recipe_by_id(_root: None, _info: GraphQLResolveInfo, id: str) -> Any:
    return RECIPES.get(id)


# --8<-- [end:resolvers]


def run(schema: GraphQLSchema, variables: dict[str, Any]) -> dict[str, Any]:
    answer = graphql_sync(schema, BOOK_QUERY, variable_values=variables).formatted
    for error in answer.get("errors", []):
        error.pop("locations", None)  # line numbers of the query: noise here
    return answer


def main() -> None:
    strict = make_executable_schema(STRICT)  # no resolver runs: validation refuses first
    evolved = make_executable_schema(EVOLVED, query)
    for title, schema, variables in [
        ("strict schema, id 42", strict, {"id": "42"}),
        ("evolved schema, id 42", evolved, {"id": "42"}),
        ("evolved schema, id null", evolved, {"id": None}),
    ]:
        print(f"{title}:\n  {json.dumps(run(schema, variables))}")


if __name__ == "__main__":
    main()
