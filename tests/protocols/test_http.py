"""HTTP on the wire: the bytes, the semantics, JSON both ways, and what must never leak.

Every claim of docs/protocols/http.md and docs/protocols/json_bodies.md, checked
over real sockets against the example programs started with their pages' run lines.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from kit import sysdeps
from kit.examples import RunningExample, assert_output_is_shown, run_program
from kit.process import LOOPBACK, ROOT, connections_to, free_port
from kit.snippets import example_command, run_script

WIRE = "protocols/http_wire.py"
PRODUCER = "protocols/http_producer.py"
CONSUMER = "protocols/http_consumer.py"
DANGERS = "protocols/serialization_dangers.py"
BY_HAND = "protocols/http_validation_by_hand.py"
CHAPTER_1_RECIPE_API = "why_distributed/recipe_api.py"
SNIPPETS = ROOT / "snippets" / "protocols"
PAGE = ROOT / "docs" / "protocols" / "http.md"
JSON_PAGE = ROOT / "docs" / "protocols" / "json_bodies.md"

# Fields and values of the store's records that no client may ever see.
SECRETS = ["supplier_price", "internal_note", "30% off", "do not publish", "negotiated"]

PANCAKES = {
    "name": "Pancakes",
    "steps": "Mix, rest, fry.",
    "ingredients": [{"name": "Flour", "quantity": "200 g"}, {"name": "Milk", "quantity": "30 cl"}],
}


def new_recipe(name: str) -> dict:
    return {**PANCAKES, "name": name}


@pytest.fixture(scope="module")
def producer(run_shared_example) -> RunningExample:
    """One recipe-api for the tests of this module; each test that creates uses its own names."""
    return run_shared_example(PRODUCER)


def assert_json_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["status"] == status
    assert body["message"]
    return body


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked in {text}"


# --- what goes over the wire -------------------------------------------------


def without_run_details(text: str) -> str:
    """Mask what changes from run to run: pids, ports, and the lengths they change."""
    text = re.sub(r'"(producer|consumer)_pid":\d+', r'"\1_pid":PID', text)
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r"local port \d+", "local port PORT", text)
    text = re.sub(r"\(\d+ bytes\)", "(N bytes)", text)
    text = re.sub(r"(?im)^(content-length|date): [^\\]*", r"\1: X", text)
    return text


def test_http_wire_prints_the_bytes_the_page_shows(run_example, monkeypatch) -> None:
    recipe_api = run_example(CHAPTER_1_RECIPE_API)
    monkeypatch.setenv("TARGET", recipe_api.url)
    output = run_program(WIRE)
    assert_output_is_shown(output, SNIPPETS / "http_wire.out", normalize=without_run_details)
    # What the page says about those bytes:
    request_1, response_1, request_2, response_2 = re.split(r"(?m)^[<>]{3} .*\n", output)[1:]
    assert request_1.startswith("GET /recipes/42 HTTP/1.1\\r\\n\n")
    assert all(line.endswith("\\r\\n") for line in request_1.splitlines())
    assert request_1.endswith("\\r\\n\n\\r\\n\n")  # the blank line ends the head
    assert "connection: keep-alive\\r\\n" in response_1
    assert f'"producer_pid":{recipe_api.pid}' in response_1
    assert "Connection: close\\r\\n" in request_2
    assert response_2.startswith("HTTP/1.1 404 Not Found\\r\\n")
    assert "connection: close\\r\\n" in response_2
    assert "closed by the server after the second response: True" in output


def test_http_wire_sees_the_same_bytes_from_this_chapters_producer(
    producer: RunningExample, monkeypatch
) -> None:
    monkeypatch.setenv("TARGET", producer.url)
    shown = (SNIPPETS / "http_wire.out").read_text()
    assert without_run_details(run_program(WIRE)) == without_run_details(shown)


def test_http_wire_reports_a_server_that_hangs_up_mid_response() -> None:
    with socket.create_server((LOOPBACK, 0)) as server:

        def answer_half() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"trunc')

        thread = threading.Thread(target=answer_half, daemon=True)
        thread.start()
        line_env, argv = example_command(WIRE)
        target = f"http://{LOOPBACK}:{server.getsockname()[1]}"
        result = subprocess.run(
            argv,
            cwd=ROOT,
            env={**os.environ, **line_env, "TARGET": target},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        thread.join()
    assert result.returncode == 1
    assert "ConnectionError: the server closed the connection in the middle" in result.stderr


def test_sanic_sends_no_date_header(producer: RunningExample) -> None:
    # The page points out that Sanic, unlike most servers, omits Date.
    assert "date" not in httpx.get(f"{producer.url}/recipes/42").headers


# --- recipe-api: JSON out, through a response schema ------------------------


def test_get_recipe_answers_the_public_schema(producer: RunningExample) -> None:
    response = httpx.get(f"{producer.url}/recipes/42")
    assert response.status_code == 200
    body = response.json()
    assert body["producer_pid"] == producer.pid
    assert set(body["recipe"]) == {"id", "name", "steps", "ingredients"}
    assert body["recipe"]["ingredients"] == [
        {"id": 1, "name": "Chicken", "quantity": "1 lb"},
        {"id": 2, "name": "Sauce", "quantity": "2 cups"},
    ]
    assert_no_secret(response.text)


def test_head_is_get_without_the_body(producer: RunningExample) -> None:
    get = httpx.get(f"{producer.url}/recipes/42")
    head = httpx.head(f"{producer.url}/recipes/42")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"] == get.headers["content-type"]
    assert httpx.head(f"{producer.url}/recipes/7").status_code == 404


def test_same_recipe_as_chapter_1(producer: RunningExample, run_example) -> None:
    chapter_1 = run_example(CHAPTER_1_RECIPE_API)
    ours = httpx.get(f"{producer.url}/recipes/42").json()["recipe"]
    theirs = httpx.get(f"{chapter_1.url}/recipes/42").json()["recipe"]
    assert ours == theirs


@pytest.mark.parametrize(
    ("path", "status"),
    [("/recipes/7", 404), ("/recipes/abc", 404), ("/recipes/0", 400), ("/nope", 404)],
)
def test_unknown_and_invalid_ids(producer: RunningExample, path: str, status: int) -> None:
    assert_json_error(httpx.get(producer.url + path), status)


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/recipes/42"), ("PUT", "/recipes/42"), ("PUT", "/recipes"), ("POST", "/health")],
)
def test_wrong_method_is_405_with_allow(producer: RunningExample, method: str, path: str) -> None:
    response = httpx.request(method, producer.url + path)
    assert_json_error(response, 405)
    allowed = {"/recipes/42": "GET, HEAD", "/recipes": "POST", "/health": "GET"}[path]
    assert sorted(response.headers["allow"].split(", ")) == sorted(allowed.split(", "))


# --- content negotiation ----------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [
        "text/html",
        "application/xml, text/html;q=0.9",
        "application/json;q=0, */*",  # the most specific range wins
        "application/*;q=0, text/*",
    ],
)
def test_accept_that_excludes_json_is_406(producer: RunningExample, accept: str) -> None:
    response = httpx.get(f"{producer.url}/recipes/42", headers={"Accept": accept})
    body = assert_json_error(response, 406)  # still a JSON body, whatever the client asked
    assert body["message"] == "this resource is only available as application/json"
    post = httpx.post(f"{producer.url}/recipes", json=PANCAKES, headers={"Accept": accept})
    assert_json_error(post, 406)


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        "application/*",
        "application/json",
        "text/html, application/json;q=0.1",
        "application/json; charset=utf-8",
        "foo",  # unreadable: treated as absent
        ";;;",
        "application/json;q=abc, text/html;q=2",  # no readable range at all
    ],
)
def test_accept_that_allows_json_is_200(producer: RunningExample, accept: str | None) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    with httpx.Client() as client:
        if accept is None:
            del client.headers["accept"]  # httpx sends Accept: */* unless told not to
        assert client.get(f"{producer.url}/recipes/42", headers=headers).status_code == 200


def test_errors_are_json_even_for_a_client_that_asks_for_html(producer: RunningExample) -> None:
    html = {"Accept": "text/html"}
    assert_json_error(httpx.get(f"{producer.url}/nope", headers=html), 404)
    assert_json_error(httpx.delete(f"{producer.url}/recipes/42", headers=html), 405)


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_body_not_labelled_json_is_415(producer: RunningExample, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    body = json.dumps(new_recipe(f"415 {content_type}")).encode()
    response = httpx.post(f"{producer.url}/recipes", content=body, headers=headers)
    assert_json_error(response, 415)
    assert response.headers["accept-post"] == "application/json"


def test_json_with_a_charset_parameter_is_accepted(producer: RunningExample) -> None:
    body = json.dumps(new_recipe("Charset pancakes")).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    assert httpx.post(f"{producer.url}/recipes", content=body, headers=headers).status_code == 201


# --- recipe-api: JSON in ------------------------------------------------------


def test_post_creates_a_recipe_with_201_and_location(producer: RunningExample) -> None:
    response = httpx.post(f"{producer.url}/recipes", json=new_recipe("Crêpes Suzette"))
    assert response.status_code == 201
    recipe = response.json()["recipe"]
    assert response.headers["location"] == f"/recipes/{recipe['id']}"
    assert recipe["name"] == "Crêpes Suzette"
    assert recipe["ingredients"] == [
        {"id": 1, "name": "Flour", "quantity": "200 g"},
        {"id": 2, "name": "Milk", "quantity": "30 cl"},
    ]
    again = httpx.get(producer.url + response.headers["location"])
    assert again.json()["recipe"] == recipe
    assert_no_secret(response.text + again.text)


def test_post_is_not_idempotent_and_a_duplicate_name_is_409(producer: RunningExample) -> None:
    first = httpx.post(f"{producer.url}/recipes", json=new_recipe("Blini"))
    assert first.status_code == 201
    body = assert_json_error(httpx.post(f"{producer.url}/recipes", json=new_recipe("BLINI")), 409)
    assert body["message"] == "a recipe named 'BLINI' already exists"
    other = httpx.post(f"{producer.url}/recipes", json=new_recipe("Blini with jam"))
    assert other.json()["recipe"]["id"] == first.json()["recipe"]["id"] + 1


MALFORMED_JSON = {
    "truncated": b'{"name": "Pancakes",',
    "empty body": b"",
    "single quotes": b"{'name': 'Pancakes'}",
    "trailing comma": b'{"name": "Pancakes",}',
    "NaN": b'{"name": NaN}',
    "not UTF-8": b'{"name": "\xff\xfe"}',
    "10,000 levels deep": b"[" * 10_000,
    "two documents": b"{} {}",
}


@pytest.mark.parametrize("body", MALFORMED_JSON.values(), ids=MALFORMED_JSON.keys())
def test_malformed_json_is_400(producer: RunningExample, body: bytes) -> None:
    response = httpx.post(
        f"{producer.url}/recipes", content=body, headers={"Content-Type": "application/json"}
    )
    assert assert_json_error(response, 400)["message"].startswith("malformed JSON: ")


# Each invalid body, and what the model reports: (path, pydantic's error type) per problem.
INVALID_RECIPES = {
    "not an object": ([PANCAKES], [((), "model_type")]),
    "null": (None, [((), "model_type")]),
    "empty object": (
        {},
        [(("name",), "missing"), (("steps",), "missing"), (("ingredients",), "missing")],
    ),
    "wrong types": (
        {"name": 42, "steps": ["Mix"], "ingredients": "flour"},
        [(("name",), "string_type"), (("steps",), "string_type"), (("ingredients",), "list_type")],
    ),
    "blank and too long": (
        {**PANCAKES, "name": "   ", "steps": "x" * 2001},
        [(("name",), "string_too_short"), (("steps",), "string_too_long")],
    ),
    "unknown fields (mass assignment)": (
        {**PANCAKES, "supplier_price_cents": 0, "id": 1},
        [(("supplier_price_cents",), "extra_forbidden"), (("id",), "extra_forbidden")],
    ),
    "no ingredients": ({**PANCAKES, "ingredients": []}, [(("ingredients",), "too_short")]),
    "51 ingredients": (
        {**PANCAKES, "ingredients": [{"name": "Salt", "quantity": "1 g"}] * 51},
        [(("ingredients",), "too_long")],
    ),
    "bad ingredients": (
        {**PANCAKES, "ingredients": ["flour", {"name": "Egg", "qty": 2}, {"quantity": 3}]},
        [
            (("ingredients", 0), "model_type"),
            (("ingredients", 1, "quantity"), "missing"),
            (("ingredients", 1, "qty"), "extra_forbidden"),
            (("ingredients", 2, "name"), "missing"),
            (("ingredients", 2, "quantity"), "string_type"),
        ],
    ),
}


def post_json(base: str, body: object) -> httpx.Response:
    return httpx.post(
        f"{base}/recipes", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )


def problems_of(response: httpx.Response) -> list[tuple[tuple, str]]:
    """(loc, type) of each problem of a 422, after checking each has exactly its three keys."""
    error = assert_json_error(response, 422)
    assert error["message"] == "the JSON is not a valid recipe"
    problems = error["context"]["errors"]
    assert all(set(problem) == {"loc", "msg", "type"} for problem in problems), problems
    return [(tuple(problem["loc"]), problem["type"]) for problem in problems]


@pytest.mark.parametrize(("body", "problems"), INVALID_RECIPES.values(), ids=INVALID_RECIPES.keys())
def test_valid_json_that_is_not_a_recipe_is_422_with_every_problem_and_its_path(
    producer: RunningExample, body: object, problems: list[tuple[tuple, str]]
) -> None:
    assert problems_of(post_json(producer.url, body)) == problems


def test_a_bad_field_is_named_by_its_path_and_a_readable_message(
    producer: RunningExample,
) -> None:
    egg = {"name": "Egg", "quantity": 2}
    body = {**PANCAKES, "ingredients": [*PANCAKES["ingredients"], egg]}
    error = assert_json_error(post_json(producer.url, body), 422)
    assert error["context"]["errors"] == [
        {
            "type": "string_type",
            "loc": ["ingredients", 2, "quantity"],
            "msg": "Input should be a valid string",
        }
    ]


def ingredients(count: int, **fields: str) -> list[dict[str, str]]:
    return [{"name": "Salt", "quantity": "1 g", **fields}] * count


# Bodies one step over a limit, each with the one problem the model reports.
REFUSED = {
    "unknown field": ({"servings": 4}, ("servings",), "extra_forbidden"),
    "unknown nested field": (
        {"ingredients": ingredients(1, price="1")},
        ("ingredients", 0, "price"),
        "extra_forbidden",
    ),
    "name of 101": ({"name": "x" * 101}, ("name",), "string_too_long"),
    "steps of 2001": ({"steps": "x" * 2001}, ("steps",), "string_too_long"),
    "quantity of 51": (
        {"ingredients": ingredients(1, quantity="x" * 51)},
        ("ingredients", 0, "quantity"),
        "string_too_long",
    ),
    "51 ingredients": ({"ingredients": ingredients(51)}, ("ingredients",), "too_long"),
}


@pytest.mark.parametrize(("change", "loc", "kind"), REFUSED.values(), ids=REFUSED.keys())
def test_unknown_fields_and_anything_over_a_limit_are_refused(
    producer: RunningExample, change: dict, loc: tuple, kind: str
) -> None:
    body = {**new_recipe(f"Refused: {loc}"), **change}
    assert problems_of(post_json(producer.url, body)) == [(loc, kind)]


def test_a_list_over_its_limit_is_one_problem_not_one_per_item(producer: RunningExample) -> None:
    body = {**PANCAKES, "ingredients": [{}] * 3000}  # 12 KB, each item invalid too
    assert problems_of(post_json(producer.url, body)) == [(("ingredients",), "too_long")]


def test_a_body_at_every_limit_is_accepted_and_stored_stripped(producer: RunningExample) -> None:
    # The control for the test above: one less than each refusal is fine.
    name = "At the limits " + "x" * 86
    body = {
        "name": f"  {name}  ",  # stripped first, then 100 characters
        "steps": "x" * 2000,
        "ingredients": ingredients(50, quantity="y" * 50),
    }
    response = post_json(producer.url, body)
    assert response.status_code == 201, response.text
    recipe = httpx.get(producer.url + response.headers["location"]).json()["recipe"]
    assert recipe["name"] == name
    assert len(recipe["ingredients"]) == 50


def test_nothing_is_stored_when_a_body_is_refused(producer: RunningExample) -> None:
    before = post_json(producer.url, new_recipe("Before the refusals"))
    assert before.status_code == 201
    name = "Refused, then accepted"
    for change, _, _ in REFUSED.values():
        assert post_json(producer.url, {**new_recipe(name), **change}).status_code == 422
    after = post_json(producer.url, new_recipe(name))
    assert after.status_code == 201  # not 409: no refused body took the name
    assert after.json()["recipe"]["id"] == before.json()["recipe"]["id"] + 1  # nor an id


def test_the_list_of_problems_is_bounded(producer: RunningExample) -> None:
    # A body of 16 KiB can hold over a thousand unknown fields; the answer names 20.
    body = {**PANCAKES, **{f"f{i}": 0 for i in range(1200)}}
    assert len(json.dumps(body)) < 16 * 1024
    response = post_json(producer.url, body)
    assert problems_of(response) == [((f"f{i}",), "extra_forbidden") for i in range(20)]
    assert len(response.content) < 2048


# --- the hand-written validator the model replaces ------------------------------


def as_loc(field: str) -> tuple:
    """The by-hand notation `ingredients[1].qty` as a pydantic path."""
    parts = [part for part in re.split(r"[\[\].]+", field) if part]
    return () if field == "(body)" else tuple(int(p) if p.isdigit() else p for p in parts)


def test_by_hand_prints_what_the_page_shows() -> None:
    output = run_program(BY_HAND)
    assert_output_is_shown(output, SNIPPETS / "http_validation_by_hand.out")


def test_the_model_finds_the_fields_the_hand_written_validator_finds(
    producer: RunningExample,
) -> None:
    spec = importlib.util.spec_from_file_location("by_hand", ROOT / "examples" / BY_HAND)
    by_hand = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(by_hand)
    bodies = [body for body, _ in INVALID_RECIPES.values()]
    bodies += [{**PANCAKES, **change} for change, _, _ in REFUSED.values()]
    bodies.append(PANCAKES)  # both find nothing wrong (a 409 at most: it may exist)
    for body in bodies:
        theirs = {as_loc(problem["field"]) for problem in by_hand.recipe_problems(body)}
        response = post_json(producer.url, body)
        ours = {loc for loc, _ in problems_of(response)} if response.status_code == 422 else set()
        assert ours == theirs, body


def test_body_over_16_kib_is_413_and_16_kib_is_not(producer: RunningExample) -> None:
    headers = {"Content-Type": "application/json"}
    padding = " " * (16 * 1024 - len(json.dumps(new_recipe("Padded"))))
    at_limit = (json.dumps(new_recipe("Padded")) + padding).encode()
    assert len(at_limit) == 16 * 1024
    response = httpx.post(f"{producer.url}/recipes", content=at_limit, headers=headers)
    assert response.status_code == 201
    over = httpx.post(f"{producer.url}/recipes", content=at_limit + b" ", headers=headers)
    assert_json_error(over, 413)


# --- the secret never leaves -------------------------------------------------


def every_kind_of_answer(base: str) -> list[httpx.Response]:
    """One request of every kind the page describes, good and bad."""
    json_header = {"Content-Type": "application/json"}
    with httpx.Client(base_url=base) as client:
        return [
            client.get("/recipes/42"),
            client.get("/recipes/7"),
            client.get("/recipes/0"),
            client.get("/recipes/42", headers={"Accept": "text/html"}),
            client.post("/recipes", json=new_recipe(f"Secret test {base}")),
            client.post("/recipes", json=new_recipe(f"secret TEST {base}")),
            client.post("/recipes", json={**PANCAKES, "servings": 4}),
            client.post("/recipes", content=b"{", headers=json_header),
            client.post("/recipes", content=b"x" * 20_000, headers=json_header),
            client.post("/recipes", content=b"{}", headers={"Content-Type": "text/plain"}),
            client.delete("/recipes/42"),
            client.get("/nope"),
            client.get("/health"),
        ]


def test_no_answer_of_any_route_contains_a_secret(producer: RunningExample, run_example) -> None:
    consumer = run_example(CONSUMER, env={"TARGET": producer.url})
    answers = every_kind_of_answer(producer.url) + every_kind_of_answer(consumer.url)
    assert {r.status_code for r in answers} >= {200, 201, 400, 404, 405, 406, 409, 413, 415, 422}
    for response in answers:
        assert_no_secret(response.text)
        assert_no_secret(str(response.headers))


# --- web-api, the consumer ----------------------------------------------------


@pytest.fixture(scope="module")
def consumer(producer: RunningExample, run_shared_example) -> RunningExample:
    return run_shared_example(CONSUMER, env={"TARGET": producer.url})


def test_consumer_answers_both_pids(producer: RunningExample, consumer: RunningExample) -> None:
    body = httpx.get(f"{consumer.url}/recipes/42").json()
    assert body["consumer_pid"] == consumer.pid
    assert body["producer_data"]["producer_pid"] == producer.pid
    assert body["producer_data"]["recipe"]["id"] == 42


def test_consumer_creates_through_the_producer(
    producer: RunningExample, consumer: RunningExample
) -> None:
    response = httpx.post(f"{consumer.url}/recipes", json=new_recipe("Through web-api"))
    assert response.status_code == 201
    recipe = response.json()["producer_data"]["recipe"]
    assert response.headers["location"] == f"/recipes/{recipe['id']}"
    assert httpx.get(producer.url + response.headers["location"]).json()["recipe"] == recipe


def test_consumer_passes_on_the_clients_own_mistakes(consumer: RunningExample) -> None:
    missing = httpx.get(f"{consumer.url}/recipes/7")
    assert missing.status_code == 404
    assert missing.json() == {"status": 404, "message": "no recipe with id 7"}
    out_of_range = httpx.get(f"{consumer.url}/recipes/0")
    assert out_of_range.status_code == 400
    invalid = httpx.post(f"{consumer.url}/recipes", json={**PANCAKES, "steps": 3})
    assert invalid.status_code == 422
    assert invalid.json()["context"]["errors"] == [
        {"type": "string_type", "loc": ["steps"], "msg": "Input should be a valid string"}
    ]
    httpx.post(f"{consumer.url}/recipes", json=new_recipe("Twice through web-api"))
    duplicate = httpx.post(f"{consumer.url}/recipes", json=new_recipe("Twice through web-api"))
    assert duplicate.status_code == 409


def test_consumer_rejects_bad_bodies_itself(consumer: RunningExample) -> None:
    headers = {"Content-Type": "application/json"}
    assert_json_error(httpx.post(f"{consumer.url}/recipes", content=b"{", headers=headers), 400)
    text = {"Content-Type": "text/plain"}
    assert_json_error(httpx.post(f"{consumer.url}/recipes", content=b"{}", headers=text), 415)
    big = b"[" + b"1," * 10_000 + b"1]"
    assert_json_error(httpx.post(f"{consumer.url}/recipes", content=big, headers=headers), 413)
    assert_json_error(httpx.get(f"{consumer.url}/nope"), 404)
    assert_json_error(httpx.delete(f"{consumer.url}/recipes/42"), 405)


def test_consumer_reuses_one_connection(producer: RunningExample, run_example) -> None:
    consumer = run_example(CONSUMER, env={"TARGET": producer.url})
    for _ in range(5):
        assert httpx.get(f"{consumer.url}/recipes/42").status_code == 200
    assert connections_to(consumer.pid, producer.port) == 1


def test_consumer_502_when_the_producer_is_down(run_example) -> None:
    producer = run_example(PRODUCER)
    consumer = run_example(CONSUMER, env={"TARGET": producer.url})
    assert httpx.get(f"{consumer.url}/recipes/42").status_code == 200
    assert producer.stop() == 0
    response = httpx.get(f"{consumer.url}/recipes/42", timeout=10)
    assert response.status_code == 502
    assert response.json()["error"] == "recipe-api unavailable"


def test_consumer_502_when_the_connection_is_refused(run_example) -> None:
    consumer = run_example(CONSUMER, env={"TARGET": f"http://{LOOPBACK}:{free_port()}"})
    response = httpx.post(f"{consumer.url}/recipes", json=PANCAKES, timeout=10)
    assert response.status_code == 502
    assert response.json() == {"error": "recipe-api unavailable", "reason": "ConnectError"}


@pytest.mark.parametrize(
    ("status", "body", "delay", "expected_status", "expected_body"),
    [
        (
            200,
            b"{}",
            1.0,
            504,
            {"error": "recipe-api unavailable", "reason": "no answer within 0.3s"},
        ),
        (
            500,
            b'{"error": "boom"}',
            0,
            502,
            {"error": "recipe-api unavailable", "reason": "answered 500"},
        ),
        (
            415,
            b'{"message": "?"}',
            0,
            502,
            {"error": "recipe-api unavailable", "reason": "answered 415"},
        ),
        (
            200,
            b"<html>maintenance</html>",
            0,
            502,
            {"error": "recipe-api unavailable", "reason": "answered something that is not JSON"},
        ),
        (404, b"[]", 0, 404, {"status": 404, "message": ""}),  # only the fields it expects
        (
            404,
            b'{"message": "gone", "internal_note": "x", "trace": "..."}',
            0,
            404,
            {"status": 404, "message": "gone"},
        ),
    ],
)
def test_consumer_maps_each_producer_failure(
    run_example, fake_upstream, status, body, delay, expected_status, expected_body
) -> None:
    producer = fake_upstream().behave(status, body, delay=delay)
    # A short timeout only where the test waits for it, so a slow machine cannot turn 502 into 504.
    timeout = "0.3" if delay else "10"
    consumer = run_example(CONSUMER, env={"TARGET": producer.url, "TARGET_TIMEOUT": timeout})
    response = httpx.get(f"{consumer.url}/recipes/42", timeout=10)
    assert response.status_code == expected_status
    assert response.json() == expected_body


def test_consumer_finishes_in_flight_requests_on_sigterm(run_example, fake_upstream) -> None:
    producer = fake_upstream().behave(body={"producer_pid": 0, "recipe": {"id": 42}}, delay=0.5)
    consumer = run_example(CONSUMER, env={"TARGET": producer.url})
    result: dict[str, httpx.Response] = {}
    request = threading.Thread(
        target=lambda: result.update(r=httpx.get(f"{consumer.url}/recipes/42", timeout=10))
    )
    request.start()
    assert producer.arrived.wait(10)  # the request is now waiting on the slow producer
    assert consumer.stop(signal.SIGTERM) == 0
    request.join()
    assert result["r"].status_code == 200


# --- the dangers of serializing objects ---------------------------------------


def test_serialization_dangers_prints_what_the_page_shows() -> None:
    output = run_program(DANGERS)
    assert_output_is_shown(output, SNIPPETS / "http_serialization_dangers.out")
    leaks, unpickling, schema = output.split("\n\n")[:3]
    assert leaks.count("leaks: supplier_price_cents, internal_note") == 3
    # The payload's function ran inside pickle.loads: between the call and its return.
    calling = unpickling.index("calling pickle.loads")
    ran = unpickling.index("!! this line was printed by pickle.loads")
    returned = unpickling.index("pickle.loads returned None")
    assert calling < ran < returned
    assert "leaks: nothing" in schema
    assert_no_secret(schema.split("\n", 2)[2])


# --- the commands the page gives -----------------------------------------------


def without_pids(text: str) -> str:
    return re.sub(r'"(consumer|producer)_pid":\d+', r'"\1_pid":PID', text)


def test_try_script_prints_what_the_page_shows(run_example) -> None:
    sysdeps.require("curl")
    producer = run_example(PRODUCER)  # a fresh one: the new recipe gets id 43
    result = run_script(SNIPPETS / "http_try.sh", {"RECIPE_API": producer.url})
    assert_output_is_shown(result.stdout, SNIPPETS / "http_try.out", normalize=without_pids)
    statuses = [line for line in result.stdout.splitlines() if re.fullmatch(r"\d{3}.*", line)]
    assert statuses == ["201 Location: /recipes/43", "409", "422", "400", "415", "406"]


@pytest.mark.parametrize(
    ("page", "names"),
    [
        (PAGE, ["http_wire.out"]),
        (
            JSON_PAGE,
            [
                "http_try.sh",
                "http_try.out",
                "http_validation_by_hand.out",
                "http_serialization_dangers.out",
            ],
        ),
    ],
)
def test_every_snippet_is_included_by_its_page(page: Path, names: list[str]) -> None:
    text = page.read_text()
    for name in names:
        assert f'--8<-- "snippets/protocols/{name}"' in text
