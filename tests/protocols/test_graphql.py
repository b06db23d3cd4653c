"""recipe-api and web-api over GraphQL behave as the GraphQL page says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from graphql import get_introspection_query
from kit import sysdeps
from kit.examples import RunningExample, assert_output_is_shown, run_program
from kit.process import LOOPBACK, ROOT, Process, connections_to, free_port, http_ok
from kit.snippets import EXAMPLES

PRODUCER = "protocols/graphql_producer.py"
CONSUMER = "protocols/graphql_consumer.py"
SNIPPETS = ROOT / "snippets/protocols"

# Depth 5 (recipe, ingredients, usedIn, ingredients, name): the deepest allowed.
DEPTH_5 = "{ recipe(id: 42) { ingredients { usedIn { ingredients { name } } } } }"
DEPTH_6 = "{ recipe(id: 42) { ingredients { usedIn { ingredients { usedIn { name } } } } } }"


@pytest.fixture(scope="module")
def producer(run_shared_example) -> RunningExample:
    """One recipe-api for the tests that only read (no mutation)."""
    return run_shared_example(PRODUCER)


def post(service: RunningExample, body: object, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{service.url}/graphql", json=body, timeout=30, **kwargs)


def assert_request_error(response: httpx.Response, message: str | None = None) -> dict:
    """A 400 with `errors` and no data: nothing ran, and nothing leaked."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["errors"], body
    assert body.get("data") is None
    assert all("path" not in error for error in body["errors"])
    assert "Traceback" not in response.text
    if message is not None:
        assert any(message in error["message"] for error in body["errors"]), body
    return body


# --- queries ------------------------------------------------------------------


def test_query_with_a_variable_returns_only_the_fields_asked(producer: RunningExample) -> None:
    response = post(
        producer,
        {
            "query": "query ($id: ID!) { recipe(id: $id) { name ingredients { name } } }",
            "variables": {"id": "42"},
        },
    )
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "recipe": {
                "name": "Chicken Tikka Masala",
                "ingredients": [{"name": "Chicken"}, {"name": "Sauce"}],
            }
        }
    }


def test_aliases_fragments_and_pid(producer: RunningExample) -> None:
    query = """
    query twoRecipes {
      producer_pid: pid
      tikka: recipe(id: 42) { ...card }
      missing: recipe(id: "7") { ...card }
      menu: recipes { ... on Recipe { name } }
    }
    fragment card on Recipe { id name }
    """
    response = post(producer, {"query": query, "operationName": "twoRecipes"})
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "producer_pid": producer.pid,
            "tikka": {"id": "42", "name": "Chicken Tikka Masala"},
            "missing": None,  # an unknown recipe is null, not an error
            "menu": [{"name": "Chicken Tikka Masala"}],
        }
    }


def test_a_failing_field_gives_200_partial_data_and_an_error_with_its_path(
    run_example,
) -> None:
    producer = run_example(PRODUCER)  # its own process: the test reads its log
    response = post(producer, {"query": "{ recipe(id: 42) { name calories } }"})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"recipe": {"name": "Chicken Tikka Masala", "calories": None}}
    [error] = body["errors"]
    assert error["path"] == ["recipe", "calories"]
    # The client gets no internal detail; the server log has all of it.
    assert error["message"] == "internal error"
    assert "10.0.0.7" not in response.text
    assert "extensions" not in error
    assert producer.stop() == 0
    log = producer.output()
    assert "resolver failed at ['recipe', 'calories']" in log
    assert "ConnectionError: nutrition-api at 10.0.0.7:4100 refused the connection" in log


def test_an_error_we_raise_for_the_client_keeps_its_message(producer: RunningExample) -> None:
    response = post(producer, {"query": "{ pid recipes(limit: -1) { name } }"})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None  # recipes is non-null: its error nulls its parent, the root
    assert body["errors"][0]["message"] == "limit must not be negative"
    assert body["errors"][0]["path"] == ["recipes"]


def test_introspection_works_for_the_explorer(producer: RunningExample) -> None:
    response = post(producer, {"query": get_introspection_query(descriptions=True)})
    assert response.status_code == 200
    types = {t["name"] for t in response.json()["data"]["__schema"]["types"]}
    assert {"Recipe", "Ingredient", "RecipeInput", "Query", "Mutation"} <= types


def test_get_serves_the_explorer_html(producer: RunningExample) -> None:
    response = httpx.get(f"{producer.url}/graphql")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>recipe-api</title>" in response.text
    assert "graphiql" in response.text.lower()
    assert httpx.get(f"{producer.url}/health").json() == {"status": "ok"}


# --- mutations ----------------------------------------------------------------

ADD_RECIPE = """
mutation ($r: RecipeInput!) { addRecipe(recipe: $r) { id name ingredients { id name } } }
"""


def test_a_mutation_adds_a_recipe_that_later_queries_see(run_example) -> None:
    producer = run_example(PRODUCER)
    recipe = {
        "name": "Chicken Soup",
        "steps": "Simmer.",
        "ingredients": [
            {"name": "Chicken", "quantity": "500 g"},
            {"name": "Leek", "quantity": "1"},
        ],
    }
    response = post(producer, {"query": ADD_RECIPE, "variables": {"r": recipe}})
    assert response.status_code == 200
    added = response.json()["data"]["addRecipe"]
    assert added == {
        "id": "43",
        "name": "Chicken Soup",
        # Chicken is the ingredient recipe 42 already has; Leek is new.
        "ingredients": [{"id": "1", "name": "Chicken"}, {"id": "3", "name": "Leek"}],
    }
    query = '{ recipe(id: "43") { ingredients { name usedIn { name } } } }'
    ingredients = post(producer, {"query": query}).json()["data"]["recipe"]["ingredients"]
    assert ingredients[0]["usedIn"] == [{"name": "Chicken Tikka Masala"}, {"name": "Chicken Soup"}]
    assert ingredients[1]["usedIn"] == [{"name": "Chicken Soup"}]


def test_a_refused_mutation_answers_200_with_null_data(run_example) -> None:
    producer = run_example(PRODUCER)
    recipe = {"name": "  ", "steps": "x", "ingredients": []}
    response = post(producer, {"query": ADD_RECIPE, "variables": {"r": recipe}})
    # The operation ran and its resolver refused: a field error, so 200. addRecipe
    # is non-null, so the error nulls the whole data.
    assert response.status_code == 200
    assert response.json() == {
        "data": None,
        "errors": [
            {
                "message": "a recipe needs a name",
                "locations": [{"line": 2, "column": 31}],
                "path": ["addRecipe"],
            }
        ],
    }
    assert post(producer, {"query": "{ recipes { id } }"}).json()["data"] == {
        "recipes": [{"id": "42"}]
    }


# --- request errors: 400 with `errors` ---------------------------------------------

REQUEST_ERRORS = {
    "syntax error": ({"query": "{ recipe(id: 42) { name }"}, "Syntax Error"),
    "unknown field": (
        {"query": "{ recipe(id: 42) { name chef } }"},
        "Cannot query field 'chef' on type 'Recipe'.",
    ),
    "unknown argument": ({"query": "{ recipes(first: 2) { name } }"}, "Unknown argument"),
    "missing argument": ({"query": "{ recipe { name } }"}, "of type 'ID!' is required"),
    "variable of the wrong type": (
        {"query": "query ($n: Int!) { recipes(limit: $n) { name } }", "variables": {"n": "ten"}},
        "Variable '$n' has invalid value: Int cannot represent non-integer value: 'ten'",
    ),
    "missing variable": (
        {"query": "query ($id: ID!) { recipe(id: $id) { name } }"},
        "Variable '$id' has invalid value: Expected a value of non-null type 'ID!'",
    ),
    "missing query": ({}, "The query must be a string."),
    "query that is not a string": ({"query": 42}, "The query must be a string."),
    "variables that are not an object": (
        {"query": "{ pid }", "variables": [1]},
        "Query variables must be a null or an object.",
    ),
    "unknown operation name": ({"query": "query a { pid }", "operationName": "b"}, "Unknown"),
    "two operations, no name": ({"query": "query a { pid } query b { pid }"}, "operation name"),
    "a subscription": ({"query": "subscription { pid }"}, "subscription"),
    "unknown fragment": ({"query": "{ recipe(id: 42) { ...nope } }"}, "Unknown fragment"),
    "body that is a JSON array": ([{"query": "{ pid }"}], "should be a JSON object"),
    "body that is a JSON string": ("{ pid }", "should be a JSON object"),
}


@pytest.mark.parametrize("case", REQUEST_ERRORS, ids=str)
def test_request_errors_get_400_with_errors(producer: RunningExample, case: str) -> None:
    body, message = REQUEST_ERRORS[case]
    assert_request_error(post(producer, body), message)


def test_malformed_json_gets_400(producer: RunningExample) -> None:
    for content in (b'{"query": ', b"", b"\xff\xfe"):
        response = httpx.post(
            f"{producer.url}/graphql",
            content=content,
            headers={"content-type": "application/json"},
        )
        assert_request_error(response, "the body is not valid JSON")


def test_a_body_that_is_not_json_gets_415(producer: RunningExample) -> None:
    for headers in ({"content-type": "text/plain"}, {}):
        response = httpx.post(f"{producer.url}/graphql", content=b"{ pid }", headers=headers)
        assert response.status_code == 415
        assert "Content-Type: application/json" in response.json()["errors"][0]["message"]
    response = httpx.post(
        f"{producer.url}/graphql",
        content=b'{"query": "{ pid }"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


def test_oversized_unknown_route_and_wrong_method(producer: RunningExample) -> None:
    huge = {"query": "{ pid }", "variables": {"padding": "x" * (65 * 1024)}}
    oversized = post(producer, huge)
    assert oversized.status_code == 413
    assert oversized.json()["status"] == 413
    assert httpx.get(f"{producer.url}/graphiql").status_code == 404
    assert httpx.put(f"{producer.url}/graphql", json={}).status_code == 405
    assert httpx.post(f"{producer.url}/health", json={}).status_code == 405
    assert httpx.get(f"{producer.url}/health").status_code == 200


# --- limits ----------------------------------------------------------------------


def test_depth_limit_lets_depth_5_through_and_refuses_6(producer: RunningExample) -> None:
    allowed = post(producer, {"query": DEPTH_5})
    assert allowed.status_code == 200
    assert allowed.json()["data"]["recipe"]["ingredients"][0]["usedIn"][0]["ingredients"] == [
        {"name": "Chicken"},
        {"name": "Sauce"},
    ]
    assert_request_error(post(producer, {"query": DEPTH_6}), "6 fields deep; the limit is 5")


def test_depth_limit_counts_through_fragments(producer: RunningExample) -> None:
    query = """
    { recipe(id: 42) { ...withIngredients } }
    fragment withIngredients on Recipe { ingredients { ...users } }
    fragment users on Ingredient { usedIn { ingredients { usedIn { name } } } }
    """
    assert_request_error(post(producer, {"query": query}), "6 fields deep")
    inline = "{ recipe(id: 42) { ... on Recipe { ingredients { usedIn { ingredients { usedIn { name } } } } } } }"  # noqa: E501
    assert_request_error(post(producer, {"query": inline}), "6 fields deep")


def test_an_abusive_nested_query_is_refused(producer: RunningExample) -> None:
    nested = "name"
    for _ in range(20):
        nested = f"ingredients {{ usedIn {{ {nested} }} }}"
    body = assert_request_error(post(producer, {"query": f"{{ recipe(id: 42) {{ {nested} }} }}"}))
    assert "the limit is 5" in body["errors"][0]["message"]
    for _ in range(100):  # 200 levels more: the parser refuses it first
        nested = f"ingredients {{ usedIn {{ {nested} }} }}"
    query = f"{{ recipe(id: 42) {{ {nested} }} }}"
    assert_request_error(post(producer, {"query": query}), "Document is nested too deeply")


def test_cyclic_fragments_are_refused_not_crashed_on(producer: RunningExample) -> None:
    query = """
    { recipe(id: 42) { ...a } }
    fragment a on Recipe { ingredients { ...b } }
    fragment b on Ingredient { usedIn { ...a } }
    """
    # The cost validator recurses round the cycle until graphql-core stops it.
    assert_request_error(post(producer, {"query": query}), "Validation aborted.")
    assert httpx.get(f"{producer.url}/health").status_code == 200


def test_a_fragment_spread_a_billion_times_is_measured_once(producer: RunningExample) -> None:
    # f0 spreads f1 twice, f1 spreads f2 twice...: 2**30 spreads of f30 in all.
    fragments = " ".join(
        f"fragment f{i} on Recipe {{ ...f{i + 1} ...f{i + 1} }}" for i in range(30)
    )
    query = f"{{ recipe(id: 42) {{ ...f0 }} }} {fragments} fragment f30 on Recipe {{ name }}"
    response = post(producer, {"query": query})
    assert response.status_code == 200
    assert response.json() == {"data": {"recipe": {"name": "Chicken Tikka Masala"}}}


def test_cost_limit_counts_list_sizes(producer: RunningExample) -> None:
    shallow_and_wide = "query ($n: Int!) { recipes(limit: $n) { name ingredients { name } } }"
    # 10 recipes + 10 ingredient lists = 20, under 50.
    allowed = post(producer, {"query": shallow_and_wide, "variables": {"n": 10}})
    assert allowed.status_code == 200
    # 100 + 100 = 200: the cost is computed from this request's variables.
    refused = post(producer, {"query": shallow_and_wide, "variables": {"n": 100}})
    body = assert_request_error(refused, "exceeds the maximum cost of 50. Actual cost is 200")
    assert body["errors"][0]["extensions"]["cost"] == {
        "requestedQueryCost": 200,
        "maximumAvailable": 50,
    }


def test_cost_limit_sees_the_operations_own_variable_defaults(producer: RunningExample) -> None:
    # No variables sent: $n takes its default from the operation, 100, and the
    # query is priced with it, not with the schema's default limit of 10.
    query = "query ($n: Int! = 100) { recipes(limit: $n) { name ingredients { name } } }"
    assert_request_error(post(producer, {"query": query}), "Actual cost is 200")


def test_cost_limit_counts_aliases(producer: RunningExample) -> None:
    def aliases(count: int) -> str:
        return "{ " + " ".join(f"r{i}: recipe(id: 42) {{ name }}" for i in range(count)) + " }"

    assert post(producer, {"query": aliases(50)}).status_code == 200
    assert_request_error(post(producer, {"query": aliases(51)}), "Actual cost is 51")


# --- the program itself -------------------------------------------------------------


def test_the_schema_file_is_found_from_any_directory(tmp_path: Path) -> None:
    port = free_port()
    producer = Process(
        "graphql_producer from elsewhere",
        [sys.executable, str(EXAMPLES / PRODUCER)],
        tmp_path / "producer.log",
        env={"HOST": LOOPBACK, "PORT": str(port)},
        cwd=tmp_path,
    )
    producer.start(http_ok(f"http://{LOOPBACK}:{port}/health"))
    try:
        response = httpx.post(f"http://{LOOPBACK}:{port}/graphql", json={"query": "{ pid }"})
        assert response.json() == {"data": {"pid": producer.pid}}
    finally:
        assert producer.stop() == 0


# --- web-api ---------------------------------------------------------------------


def test_consumer_answers_both_pids_and_the_kitchen_sink(run_example) -> None:
    producer = run_example(PRODUCER)
    consumer = run_example(CONSUMER, env={"TARGET": producer.url})
    response = httpx.get(consumer.url)
    assert response.status_code == 200
    body = response.json()
    assert body["consumer_pid"] == consumer.pid
    data = body["producer_data"]
    assert data["producer_pid"] == producer.pid  # the alias of `pid`
    assert data["recipe"] == {
        "id": "42",
        "name": "Chicken Tikka Masala",
        "ingredients": [
            {"name": "Chicken", "quantity": "1 lb"},
            {"name": "Sauce", "quantity": "2 cups"},
        ],
    }
    assert data["menu"] == [{"id": "42", "name": "Chicken Tikka Masala"}]


def test_consumer_reuses_one_connection(run_example, producer: RunningExample) -> None:
    consumer = run_example(CONSUMER, env={"TARGET": producer.url})
    for _ in range(5):
        assert httpx.get(consumer.url).status_code == 200
    assert connections_to(consumer.pid, producer.port) == 1


def test_consumer_502_when_the_producer_stops(run_example) -> None:
    producer = run_example(PRODUCER)
    consumer = run_example(CONSUMER, env={"TARGET": producer.url})
    assert httpx.get(consumer.url).status_code == 200
    assert producer.stop() == 0
    response = httpx.get(consumer.url, timeout=10)
    assert response.status_code == 502
    assert response.json()["error"] == "recipe-api unavailable"
    assert httpx.get(f"{consumer.url}/health").status_code == 200


def test_consumer_502_when_the_connection_is_refused(run_example) -> None:
    consumer = run_example(CONSUMER, env={"TARGET": f"http://{LOOPBACK}:{free_port()}"})
    response = httpx.get(consumer.url, timeout=10)
    assert response.status_code == 502
    assert response.json() == {"error": "recipe-api unavailable", "reason": "ConnectError"}


PARTIAL = {"data": {"recipe": None}, "errors": [{"message": "boom", "path": ["recipe"]}]}


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (200, PARTIAL, "answered 200: boom"),
        (400, {"errors": [{"message": "Syntax Error"}]}, "answered 400: Syntax Error"),
        (200, {"data": None}, "answered 200: no data"),
        (200, [1, 2], "answered 200: no data"),
        (500, {"data": {}}, "answered 500: no data"),
        (503, "<html>maintenance</html>", "answered 503, not JSON"),
    ],
    ids=["partial data", "request error", "null data", "not an object", "500", "html"],
)
def test_consumer_502_when_the_producer_answers_errors(
    run_example, fake_upstream, status: int, body: object, reason: str
) -> None:
    producer = fake_upstream().behave(status, body)
    consumer = run_example(CONSUMER, env={"TARGET": producer.url})
    response = httpx.get(consumer.url, timeout=10)
    assert response.status_code == 502
    assert response.json() == {"error": "recipe-api unavailable", "reason": reason}


def test_consumer_502_when_the_producer_never_answers(run_example, fake_upstream) -> None:
    producer = fake_upstream().behave(never=True)
    consumer = run_example(CONSUMER, env={"TARGET": producer.url, "TARGET_TIMEOUT": "0.3"})
    response = httpx.get(consumer.url, timeout=10)
    assert response.status_code == 502
    assert response.json() == {
        "error": "recipe-api unavailable",
        "reason": "no answer within 0.3s",
    }


# --- the commands the page gives ----------------------------------------------------


def without_pids(text: str) -> str:
    return re.sub(r'"(consumer|producer)_pid": \d+', r'"\1_pid": PID', text)


def run_script(name: str, **env: str) -> str:
    sysdeps.require("curl")
    result = subprocess.run(
        ["bash", str(SNIPPETS / name)],
        # The script pretty-prints with `python -m json.tool`: this interpreter's.
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert result.stderr == ""
    return result.stdout


def test_try_script_prints_what_the_page_shows(run_example) -> None:
    producer = run_example(PRODUCER)
    output = run_script("graphql_try.sh", RECIPE_API=producer.url)
    assert_output_is_shown(output, SNIPPETS / "graphql_try.out")


def test_limits_script_prints_what_the_page_shows(producer: RunningExample) -> None:
    output = run_script("graphql_limits.sh", RECIPE_API=producer.url)
    assert_output_is_shown(output, SNIPPETS / "graphql_limits.out")


def test_kitchen_sink_script_prints_what_the_page_shows(run_example) -> None:
    producer = run_example(PRODUCER)
    consumer = run_example(CONSUMER, env={"TARGET": producer.url})
    output = run_script("graphql_kitchen_sink.sh", WEB_API=consumer.url)
    assert_output_is_shown(output, SNIPPETS / "graphql_kitchen_sink.out", normalize=without_pids)
    assert f'"consumer_pid": {consumer.pid}' in output
    assert f'"producer_pid": {producer.pid}' in output


# --- schema evolution -----------------------------------------------------------------

# The Node.js book's kitchen-sink query (web-api/consumer-graphql.js), as deployed.
BOOK_QUERY = """query kitchenSink ($id:ID) {
  recipe(id: $id) {
    id name
    ingredients {
      name quantity
    }
  }
  pid
}"""
EVOLUTION = "protocols/graphql_evolution.py"
NULLABLE_INTO_NON_NULL = "Variable '$id' of type 'ID' used in position expecting type 'ID!'."


def test_the_books_query_is_refused_by_the_strict_schema(producer: RunningExample) -> None:
    response = post(producer, {"query": BOOK_QUERY, "variables": {"id": "42"}})
    body = assert_request_error(response, NULLABLE_INTO_NON_NULL)
    # Control: the same query with the variable declared non-null is answered.
    fixed = post(
        producer, {"query": BOOK_QUERY.replace("$id:ID)", "$id:ID!)"), "variables": {"id": "42"}}
    )
    assert fixed.status_code == 200, body
    assert fixed.json()["data"]["recipe"]["name"] == "Chicken Tikka Masala"


def test_the_evolved_schema_answers_the_old_query_and_refuses_a_null_id_clearly() -> None:
    assert BOOK_QUERY in (EXAMPLES / EVOLUTION).read_text()  # the same query as above
    output = run_program(EVOLUTION)
    strict, evolved, evolved_null = output.split("\n")[1::2]
    assert json.loads(strict) == {"data": None, "errors": [{"message": NULLABLE_INTO_NON_NULL}]}
    assert json.loads(evolved)["data"]["recipe"]["name"] == "Chicken Tikka Masala"
    assert "errors" not in json.loads(evolved)
    refused = json.loads(evolved_null)
    assert refused["data"]["recipe"] is None  # null, and the rest (pid) still answered
    assert refused["data"]["pid"] > 0
    assert refused["errors"][0]["path"] == ["recipe"]
    assert refused["errors"][0]["message"].startswith("recipe: id is required")
    assert json.loads(evolved)["data"]["pid"] > 0
    shown = SNIPPETS / "graphql_evolution.out"
    assert_output_is_shown(output, shown, normalize=lambda text: re.sub(r'"pid": \d+', "PID", text))
