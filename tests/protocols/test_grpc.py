"""The gRPC recipe-api and web-api behave as the gRPC page says.

Every test drives a real `grpc_producer.py` over a real channel (grpcio's
synchronous client), or a real `grpc_consumer.py` over HTTP.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kit import snippets, sysdeps
from kit.examples import RunningExample, assert_output_is_shown
from kit.process import LOOPBACK, ROOT, Process, connections_to, free_port, port_open, wait_until

PRODUCER = "protocols/grpc_producer.py"
CONSUMER = "protocols/grpc_consumer.py"
SERVICE = "recipe.v1.RecipeService"
SNIPPETS = ROOT / "snippets" / "protocols"
BOOK_PROTO = SNIPPETS / "grpc_book_recipe.proto"  # the Node.js book's: package `recipe`
CALL_TIMEOUT = 10  # seconds; a generous bound so that a broken server fails instead of hanging


def wait_for(check, what: str, timeout: float = 10) -> None:
    wait_until(check, timeout, what)


def start_producer(run, **env: str) -> RunningExample:
    """Start the producer as its page says, and wait until its health service says SERVING.

    The port accepts as soon as `server.start()` returns; health is set to
    SERVING before that, so the first Check already answers it.
    """
    producer = run(PRODUCER, env=env, ready="port")
    with grpc.insecure_channel(target(producer)) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE), timeout=CALL_TIMEOUT
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    return producer


def target(producer: RunningExample) -> str:
    return f"{LOOPBACK}:{producer.port}"


@pytest.fixture(scope="module")
def producer(grpc_stubs: SimpleNamespace, run_shared_example) -> RunningExample:
    """One producer for the tests that leave it as they found it."""
    return start_producer(run_shared_example)


@pytest.fixture(scope="module")
def channel(producer: RunningExample) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(target(producer)) as channel:
        yield channel


@pytest.fixture(scope="module")
def stub(grpc_stubs: SimpleNamespace, channel: grpc.Channel):
    return grpc_stubs.pb2_grpc.RecipeServiceStub(channel)


@pytest.fixture(scope="module")
def pb2(grpc_stubs: SimpleNamespace):
    return grpc_stubs.pb2


def assert_still_serving(stub, pb2) -> None:
    reply = stub.GetRecipe(pb2.GetRecipeRequest(id=42), timeout=CALL_TIMEOUT)
    assert reply.recipe.name == "Chicken Tikka Masala"


# --- code generation --------------------------------------------------------


def test_codegen_script_writes_the_three_generated_files(grpc_stubs: SimpleNamespace) -> None:
    assert grpc_stubs.codegen_output == ""  # protoc is silent when all is well
    generated = ROOT / "examples" / "protocols"
    for name in ("recipe_pb2.py", "recipe_pb2.pyi", "recipe_pb2_grpc.py"):
        assert (generated / name).is_file(), name
    assert hasattr(grpc_stubs.pb2_grpc, "RecipeServiceStub")
    assert hasattr(grpc_stubs.pb2_grpc, "RecipeServiceServicer")
    assert "class GetRecipeRequest" in (generated / "recipe_pb2.pyi").read_text()


@pytest.mark.parametrize("example", [PRODUCER, CONSUMER])
def test_missing_stubs_exit_with_the_codegen_command(example: str) -> None:
    # None in sys.modules makes `import recipe_pb2` fail as if the file were absent.
    code = (
        "import runpy, sys; sys.modules['recipe_pb2'] = None; "
        f"runpy.run_path('examples/{example}', run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("recipe_pb2.py is missing: generate the gRPC stubs first")
    assert "python -m grpc_tools.protoc -I examples/protocols" in result.stderr


# --- the producer -----------------------------------------------------------


def test_get_recipe_returns_the_recipe_and_the_producer_pid(
    producer: RunningExample, stub, pb2
) -> None:
    reply = stub.GetRecipe(pb2.GetRecipeRequest(id=42), timeout=CALL_TIMEOUT)
    assert reply.producer_pid == producer.pid
    assert reply.recipe.id == 42
    assert reply.recipe.name == "Chicken Tikka Masala"
    assert reply.recipe.steps == "Throw it in a pot..."
    assert [(i.id, i.name, i.quantity) for i in reply.recipe.ingredients] == [
        (1, "Chicken", "1 lb"),
        (2, "Sauce", "2 cups"),
    ]


def test_a_request_for_recipe_42_is_two_bytes(pb2) -> None:
    # Field 1 as a varint (tag 0x08), then 42 (0x2a): no names, no quotes, no braces.
    assert pb2.GetRecipeRequest(id=42).SerializeToString() == b"\x08\x2a"


def test_get_metadata_returns_the_producer_pid(producer: RunningExample, stub, pb2) -> None:
    assert stub.GetMetaData(pb2.GetMetaDataRequest(), timeout=CALL_TIMEOUT).pid == producer.pid


def test_request_id_comes_back_in_initial_metadata_and_timing_in_trailers(stub, pb2) -> None:
    reply, call = stub.GetRecipe.with_call(
        pb2.GetRecipeRequest(id=42),
        metadata=[("x-request-id", "req-123")],
        timeout=CALL_TIMEOUT,
    )
    assert reply.recipe.id == 42
    assert dict(call.initial_metadata())["x-request-id"] == "req-123"
    assert float(dict(call.trailing_metadata())["x-handling-ms"]) >= 0

    _, call = stub.GetRecipe.with_call(pb2.GetRecipeRequest(id=42), timeout=CALL_TIMEOUT)
    assert re.fullmatch(r"[0-9a-f]{32}", dict(call.initial_metadata())["x-request-id"])


def test_unknown_id_is_not_found(stub, pb2) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetRecipe(pb2.GetRecipeRequest(id=7), timeout=CALL_TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "no recipe with id 7"


@pytest.mark.parametrize("recipe_id", [0, -1, -(2**31)])
def test_id_below_one_is_invalid_argument(stub, pb2, recipe_id: int) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetRecipe(pb2.GetRecipeRequest(id=recipe_id), timeout=CALL_TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "id must be 1 or more"
    assert_still_serving(stub, pb2)


@pytest.mark.parametrize("too_large", [2**31, 2**63])
def test_id_beyond_int32_cannot_even_be_encoded(pb2, too_large: int) -> None:
    # The schema says int32: the generated class refuses before anything is sent.
    with pytest.raises(ValueError, match="out of range"):
        pb2.GetRecipeRequest(id=too_large)


@pytest.mark.parametrize("delay", ["abc", "-1", "5001", "", "9" * 5000])
def test_bad_delay_metadata_is_invalid_argument(stub, pb2, delay: str) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetRecipe(
            pb2.GetRecipeRequest(id=42), metadata=[("delay-ms", delay)], timeout=CALL_TIMEOUT
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "delay-ms must be 0 to 5000"
    assert_still_serving(stub, pb2)


def test_deadline_exceeded_cancels_the_work_and_the_server_keeps_serving(
    producer: RunningExample, stub, pb2
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetRecipe(
            pb2.GetRecipeRequest(id=42),
            metadata=[("delay-ms", "5000"), ("x-request-id", "too-slow")],
            timeout=0.3,  # much shorter than the 5 s the producer was asked to take
        )
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The deadline reached the producer too: it stopped waiting, it did not finish.
    wait_for(
        lambda: "GetRecipe too-slow: cancelled before the answer was sent" in producer.output(),
        "the producer to cancel the call",
    )
    assert_still_serving(stub, pb2)


def test_list_recipes_streams_every_recipe_in_id_order(stub, pb2) -> None:
    stream = stub.ListRecipes(pb2.ListRecipesRequest(), timeout=CALL_TIMEOUT)
    assert [(r.id, r.name) for r in stream] == [
        (42, "Chicken Tikka Masala"),
        (43, "Dal Makhani"),
        (44, "Garlic Naan"),
    ]
    assert stream.code() == grpc.StatusCode.OK


def test_a_client_that_leaves_mid_stream_leaves_the_server_serving(
    grpc_stubs: SimpleNamespace, run_example
) -> None:
    # A minute between messages: the cancel always lands in the middle of the stream.
    slow = start_producer(run_example, STREAM_INTERVAL="60")
    pb2 = grpc_stubs.pb2
    with grpc.insecure_channel(target(slow)) as channel:
        stub = grpc_stubs.pb2_grpc.RecipeServiceStub(channel)
        stream = stub.ListRecipes(pb2.ListRecipesRequest(), timeout=120)
        assert next(stream).id == 42
        stream.cancel()
        with pytest.raises(grpc.RpcError) as caught:
            next(stream)
        assert caught.value.code() == grpc.StatusCode.CANCELLED
        wait_for(
            lambda: "ListRecipes: cancelled after 1 of 3" in slow.output(),
            "the producer to stop the stream",
        )
        assert_still_serving(stub, pb2)
        again = stub.ListRecipes(pb2.ListRecipesRequest(), timeout=120)
        assert next(again).id == 42
        again.cancel()
    assert slow.stop() == 0


def test_health_service_answers_serving(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE):  # "" is the whole server
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as caught:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=CALL_TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_undecodable_oversized_and_unknown_calls_leave_the_server_serving(
    channel: grpc.Channel, stub, pb2
) -> None:
    # Raw bytes, past the generated code, as a broken or hostile client would send them.
    raw = channel.unary_unary(f"/{SERVICE}/GetRecipe")
    with pytest.raises(grpc.RpcError) as caught:
        raw(b"\xff\xff\xff not protobuf", timeout=CALL_TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "not a valid request message"
    stream = channel.unary_stream(f"/{SERVICE}/ListRecipes")(b"\xff\xff", timeout=CALL_TIMEOUT)
    with pytest.raises(grpc.RpcError) as caught:
        list(stream)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as caught:
        raw(b"\x08\x2a" + b"\x00" * (100 * 1024), timeout=CALL_TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.RpcError) as caught:
        channel.unary_unary(f"/{SERVICE}/DeleteRecipe")(b"", timeout=CALL_TIMEOUT)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert_still_serving(stub, pb2)


def test_sigterm_reports_not_serving_and_lets_a_call_in_flight_finish(
    grpc_stubs: SimpleNamespace, run_example
) -> None:
    producer = start_producer(run_example)
    pb2 = grpc_stubs.pb2
    with grpc.insecure_channel(target(producer)) as channel:
        stub = grpc_stubs.pb2_grpc.RecipeServiceStub(channel)
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=SERVICE), timeout=CALL_TIMEOUT
        )
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING

        slow = stub.GetRecipe.future(
            pb2.GetRecipeRequest(id=42), metadata=[("delay-ms", "1000")], timeout=CALL_TIMEOUT
        )
        slow.initial_metadata()  # the producer sent its headers: the call is in its hands
        producer.process.send_signal(signal.SIGTERM)

        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()  # a watcher that stays would hold the server for the whole grace period
        assert slow.result().recipe.name == "Chicken Tikka Masala"
    assert producer.process.wait(CALL_TIMEOUT) == 0
    assert producer.stop() == 0


# --- the consumer, over HTTP --------------------------------------------------


@pytest.fixture(scope="module")
def consumer(producer: RunningExample, run_shared_example) -> RunningExample:
    return run_shared_example(CONSUMER, env={"TARGET": target(producer)})


def without_pids(text: str) -> str:
    return re.sub(r'"(\w*pid)": \d+', r'"\1": PID', text)


def test_consumer_index_calls_both_rpcs_and_shows_both_pids(
    producer: RunningExample, consumer: RunningExample
) -> None:
    response = httpx.get(consumer.url, timeout=CALL_TIMEOUT)
    assert response.status_code == 200
    body = response.json()
    assert body["consumer_pid"] == consumer.pid
    assert body["producer_meta"] == {"pid": producer.pid}
    assert body["producer_data"]["producer_pid"] == producer.pid
    assert body["producer_data"]["recipe"]["name"] == "Chicken Tikka Masala"
    shown = ROOT / "snippets" / "protocols" / "grpc_consumer.out"
    assert_output_is_shown(json.dumps(body, indent=2) + "\n", shown, normalize=without_pids)


def test_consumer_recipe_has_recipe_api_json_shape_and_a_request_id(
    producer: RunningExample, consumer: RunningExample
) -> None:
    response = httpx.get(f"{consumer.url}/recipes/42", timeout=CALL_TIMEOUT)
    assert response.status_code == 200
    # Field for field what recipe-api's JSON answer is, from the protobuf message.
    assert response.json() == {
        "producer_pid": producer.pid,
        "recipe": {
            "id": 42,
            "name": "Chicken Tikka Masala",
            "steps": "Throw it in a pot...",
            "ingredients": [
                {"id": 1, "name": "Chicken", "quantity": "1 lb"},
                {"id": 2, "name": "Sauce", "quantity": "2 cups"},
            ],
        },
    }
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_consumer_lists_the_streamed_recipes(consumer: RunningExample) -> None:
    response = httpx.get(f"{consumer.url}/recipes", timeout=CALL_TIMEOUT)
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["recipes"]] == [42, 43, 44]


@pytest.mark.parametrize(
    ("path", "status", "grpc_status", "message"),
    [
        ("/recipes/7", 404, "NOT_FOUND", "no recipe with id 7"),
        ("/recipes/0", 400, "INVALID_ARGUMENT", "id must be 1 or more"),
        ("/recipes/-3", 400, "INVALID_ARGUMENT", "id must be 1 or more"),
        ("/recipes/42?delay_ms=-1", 400, "INVALID_ARGUMENT", "delay-ms must be 0 to 5000"),
        ("/recipes/42?delay_ms=99999", 400, "INVALID_ARGUMENT", "delay-ms must be 0 to 5000"),
    ],
)
def test_consumer_maps_client_errors_to_4xx(
    consumer: RunningExample, path: str, status: int, grpc_status: str, message: str
) -> None:
    response = httpx.get(consumer.url + path, timeout=CALL_TIMEOUT)
    assert response.status_code == status
    assert response.json() == {"status": status, "message": message, "grpc_status": grpc_status}


@pytest.mark.parametrize("path", [f"/recipes/{2**31}", "/recipes/42?delay_ms=abc"])
def test_consumer_rejects_what_cannot_be_sent_with_400(consumer: RunningExample, path: str) -> None:
    response = httpx.get(consumer.url + path, timeout=CALL_TIMEOUT)
    assert response.status_code == 400
    assert response.json()["status"] == 400


def test_consumer_unknown_route_404_wrong_method_405_big_body_no_5xx(
    consumer: RunningExample,
) -> None:
    assert httpx.get(f"{consumer.url}/nope", timeout=CALL_TIMEOUT).status_code == 404
    assert httpx.post(f"{consumer.url}/recipes/42", timeout=CALL_TIMEOUT).status_code == 405
    # No route takes a body; one sent anyway is drained up to the limit, never a 5xx.
    big = httpx.request("GET", f"{consumer.url}/recipes", content=b"x" * (128 * 1024))
    assert big.status_code < 500
    assert httpx.get(f"{consumer.url}/health", timeout=CALL_TIMEOUT).json() == {"status": "ok"}


def test_consumer_uses_one_connection_for_concurrent_calls(
    producer: RunningExample, consumer: RunningExample
) -> None:
    with httpx.Client(timeout=CALL_TIMEOUT) as client:
        for _ in range(5):  # each GET / makes two calls at once
            assert client.get(consumer.url).status_code == 200
    assert connections_to(consumer.pid, producer.port) == 1


def test_consumer_504_when_the_deadline_passes(producer: RunningExample, run_example) -> None:
    impatient = run_example(CONSUMER, env={"TARGET": target(producer), "TARGET_TIMEOUT": "0.3"})
    cancelled = "cancelled before the answer was sent"
    before = producer.output().count(cancelled)
    response = httpx.get(f"{impatient.url}/recipes/42?delay_ms=5000", timeout=CALL_TIMEOUT)
    assert response.status_code == 504
    assert response.json() == {"error": "recipe-api unavailable", "reason": "DEADLINE_EXCEEDED"}
    wait_for(
        lambda: producer.output().count(cancelled) > before,
        "the producer to cancel the call",
    )
    assert httpx.get(f"{impatient.url}/recipes/42", timeout=CALL_TIMEOUT).status_code == 200


def test_consumer_502_when_nothing_listens(run_example) -> None:
    consumer = run_example(CONSUMER, env={"TARGET": f"{LOOPBACK}:{free_port()}"})
    response = httpx.get(f"{consumer.url}/recipes/42", timeout=CALL_TIMEOUT)
    assert response.status_code == 502
    assert response.json() == {"error": "recipe-api unavailable", "reason": "UNAVAILABLE"}


def test_consumer_504_when_the_producer_accepts_but_never_speaks(run_example) -> None:
    with socket.create_server((LOOPBACK, 0)) as silent:  # the kernel accepts; nobody answers
        address = f"{LOOPBACK}:{silent.getsockname()[1]}"
        consumer = run_example(CONSUMER, env={"TARGET": address, "TARGET_TIMEOUT": "0.3"})
        response = httpx.get(f"{consumer.url}/recipes/42", timeout=CALL_TIMEOUT)
        assert response.status_code == 504
        assert response.json() == {"error": "recipe-api unavailable", "reason": "DEADLINE_EXCEEDED"}
        assert consumer.stop() == 0


# --- interop with Node.js (grpc-js and proto-loader) ----------------------------


def node_command(script: str) -> tuple[dict[str, str], list[str]]:
    """The one command of a snippets script, with `node` resolved (installed if missing)."""
    sysdeps.require_npm_tools()  # @grpc/grpc-js and @grpc/proto-loader in node_modules
    env, argv = snippets.command(SNIPPETS / script)
    assert argv[0] == "node", argv
    return env, [sysdeps.require("node")["node"], *argv[1:]]


def node_client(
    target: str, script: str = "grpc_node_client.sh", **env: str
) -> subprocess.CompletedProcess[str]:
    """A client script of the page, with the producer's address in place of 127.0.0.1:4003."""
    line_env, argv = node_command(script)
    assert argv[-1] == "127.0.0.1:4003"
    return subprocess.run(
        [*argv[:-1], target],
        cwd=ROOT,
        env={**os.environ, **line_env, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def node_server(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start grpc_node_server.sh on a free port; each must stop on SIGTERM with exit 0."""
    started: list[Process] = []

    def start(**env: str) -> Process:
        line_env, argv = node_command("grpc_node_server.sh")
        port = free_port()
        server = Process(
            "grpc_node.js server",
            argv,
            tmp_path / f"node-{port}.log",
            env={**line_env, "PORT": str(port), **env},
        )
        server.port = port  # type: ignore[attr-defined]
        started.append(server.start(ready=lambda: port_open(port)))
        return server

    yield start
    for server in started:
        assert server.stop() == 0, server.output()


def test_node_client_calls_the_python_producer(producer: RunningExample) -> None:
    result = node_client(target(producer))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["meta"] == {"pid": producer.pid}
    assert answer["reply"]["producer_pid"] == producer.pid
    assert answer["reply"]["recipe"]["name"] == "Chicken Tikka Masala"
    assert [i["name"] for i in answer["reply"]["recipe"]["ingredients"]] == ["Chicken", "Sauce"]
    assert_output_is_shown(result.stdout, SNIPPETS / "grpc_node_client.out", normalize=without_pids)


def test_python_consumer_calls_the_node_producer(node_server, run_example) -> None:
    node = node_server()
    consumer = run_example(CONSUMER, env={"TARGET": f"{LOOPBACK}:{node.port}"})
    body = httpx.get(consumer.url, timeout=CALL_TIMEOUT).json()
    assert body["producer_meta"] == {"pid": node.pid}
    assert body["producer_data"]["producer_pid"] == node.pid
    assert body["producer_data"]["recipe"]["name"] == "Chicken Tikka Masala"
    # A status code set in JavaScript arrives as the same code in Python.
    response = httpx.get(f"{consumer.url}/recipes/7", timeout=CALL_TIMEOUT)
    assert response.status_code == 404
    assert response.json()["grpc_status"] == "NOT_FOUND"


def test_the_books_proto_is_unimplemented_both_ways(
    producer: RunningExample, node_server, run_example
) -> None:
    # Control: the same program with our .proto succeeds (test_node_client_calls...).
    result = node_client(target(producer), "grpc_node_book.sh")
    assert result.returncode == 1
    assert result.stderr.strip() == "UNIMPLEMENTED: Method not found!"
    assert_still_serving_raw(producer)

    book_env, _ = node_command("grpc_node_book.sh")
    assert book_env == {"PROTO": str(BOOK_PROTO.relative_to(ROOT)), "PACKAGE": "recipe"}
    node = node_server(**book_env)
    consumer = run_example(CONSUMER, env={"TARGET": f"{LOOPBACK}:{node.port}"})
    response = httpx.get(consumer.url, timeout=CALL_TIMEOUT)
    assert response.status_code == 502
    assert response.json() == {"error": "recipe-api unavailable", "reason": "UNIMPLEMENTED"}


def test_the_books_messages_under_our_package_decode_to_wrong_values(
    producer: RunningExample, tmp_path: Path
) -> None:
    # Fix only the package: the call now arrives, and the field numbers disagree.
    proto = tmp_path / "book_v1.proto"
    proto.write_text(BOOK_PROTO.read_text().replace("package recipe;", "package recipe.v1;"))
    result = node_client(target(producer), PROTO=str(proto), PACKAGE="recipe.v1")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["meta"] == {}  # our pid is field 1, the book's Meta.pid field 2: skipped
    assert answer["reply"]["id"] == producer.pid  # our field 1 is producer_pid
    name = answer["reply"]["name"]  # our field 2 is the whole Recipe message, read as text
    assert "Chicken Tikka Masala" in name
    assert name != "Chicken Tikka Masala"


def assert_still_serving_raw(producer: RunningExample) -> None:
    with grpc.insecure_channel(target(producer)) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE), timeout=CALL_TIMEOUT
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
