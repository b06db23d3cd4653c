r"""recipe-api over gRPC: `recipe.v1.RecipeService` from `recipe.proto`.

It serves `GetRecipe`, `GetMetaData` and the server-streaming `ListRecipes`
with `grpc.aio`, beside the standard health service (`grpc.health.v1.Health`)
and, when grpcio-reflection is installed, server reflection. The stubs it
imports (`recipe_pb2`, `recipe_pb2_grpc`) are generated from the `.proto`
beside it; generate them once, from the repository root:

    python -m grpc_tools.protoc -I examples/protocols \
        --python_out=examples/protocols --pyi_out=examples/protocols \
        --grpc_python_out=examples/protocols examples/protocols/recipe.proto

Run it:

    python examples/protocols/grpc_producer.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4003`).
- `STREAM_INTERVAL`: seconds between two messages of `ListRecipes`, a stand-in
  for a slow source (default `0.1`).

A bad setting (`PORT=abc`, `PORT=99999`, `STREAM_INTERVAL=-1`) stops it at
start with exit code 2 and one line naming the variable and what it accepts.

Metadata it reads on `GetRecipe`:

- `x-request-id`: sent back in the initial metadata (a new one if absent).
- `delay-ms`: wait this long before answering, 0 to 5000, to watch a deadline
  expire.

An id below 1 or a bad `delay-ms` is `INVALID_ARGUMENT`, an unknown id
`NOT_FOUND`, a message over 64 KiB `RESOURCE_EXHAUSTED`; none of them harms
the server. On SIGTERM or SIGINT it reports `NOT_SERVING` to health watchers,
refuses new calls, lets calls in flight finish (up to 5 s) and exits with 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from pydantic import Field, PositiveFloat, ValidationError
from pydantic_settings import BaseSettings

# --8<-- [start:imports]
try:  # generated from recipe.proto, next to this file
    import recipe_pb2
    import recipe_pb2_grpc
except ModuleNotFoundError as error:
    sys.exit(
        f"{error.name}.py is missing: generate the gRPC stubs first, from the repository root:\n"
        "python -m grpc_tools.protoc -I examples/protocols --python_out=examples/protocols "
        "--pyi_out=examples/protocols --grpc_python_out=examples/protocols "
        "examples/protocols/recipe.proto"
    )

try:  # optional: lets tools such as grpcurl list the services without the .proto
    from grpc_reflection.v1alpha import reflection
except ImportError:
    reflection = None
# --8<-- [end:imports]


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, STREAM_INTERVAL."""

    host: str = "127.0.0.1"
    port: int = Field(4003, ge=1, le=65535)
    stream_interval: PositiveFloat = 0.1  # seconds between two ListRecipes messages


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

# --8<-- [start:data]
MAX_MESSAGE = 64 * 1024  # bytes, in either direction; gRPC's default is 4 MiB
MAX_DELAY_MS = 5000
SHUTDOWN_GRACE = 5.0  # seconds that calls in flight get to finish on SIGTERM
SERVICE_NAME = recipe_pb2.DESCRIPTOR.services_by_name["RecipeService"].full_name

RECIPES = {
    42: recipe_pb2.Recipe(
        id=42,
        name="Chicken Tikka Masala",
        steps="Throw it in a pot...",
        ingredients=[
            recipe_pb2.Ingredient(id=1, name="Chicken", quantity="1 lb"),
            recipe_pb2.Ingredient(id=2, name="Sauce", quantity="2 cups"),
        ],
    ),
    43: recipe_pb2.Recipe(
        id=43,
        name="Dal Makhani",
        steps="Soak the lentils overnight...",
        ingredients=[recipe_pb2.Ingredient(id=3, name="Black lentils", quantity="1 cup")],
    ),
    44: recipe_pb2.Recipe(
        id=44,
        name="Garlic Naan",
        steps="Let the dough rise...",
        ingredients=[recipe_pb2.Ingredient(id=4, name="Flour", quantity="3 cups")],
    ),
}
# --8<-- [end:data]


# --8<-- [start:get_recipe]
class RecipeService(recipe_pb2_grpc.RecipeServiceServicer):
    async def GetRecipe(
        self, request: recipe_pb2.GetRecipeRequest, context: grpc.aio.ServicerContext
    ) -> recipe_pb2.GetRecipeResponse:
        metadata = dict(context.invocation_metadata() or ())
        request_id = metadata.get("x-request-id") or uuid.uuid4().hex
        # Initial metadata goes out now, before the answer: the client sees it
        # even if the answer is slow (trailing metadata only comes at the end).
        await context.send_initial_metadata((("x-request-id", request_id),))
        started = time.perf_counter()

        # No upper bound to check: an id beyond 2**31-1 cannot be encoded in an int32.
        if request.id < 1:  # and proto3 sends an id that was never set as 0
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "id must be 1 or more")
        try:
            delay_ms = int(metadata.get("delay-ms", "0"))
        except ValueError:
            delay_ms = -1
        if not 0 <= delay_ms <= MAX_DELAY_MS:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"delay-ms must be 0 to {MAX_DELAY_MS}"
            )
        recipe = RECIPES.get(request.id)
        if recipe is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no recipe with id {request.id}")

        try:
            await asyncio.sleep(delay_ms / 1000)
        except asyncio.CancelledError:
            # The client's deadline travelled with the call: when it passes (or the
            # client cancels), gRPC cancels this task, and the work stops here.
            print(f"GetRecipe {request_id}: cancelled before the answer was sent", flush=True)
            raise
        elapsed_ms = (time.perf_counter() - started) * 1000
        context.set_trailing_metadata((("x-handling-ms", f"{elapsed_ms:.1f}"),))
        return recipe_pb2.GetRecipeResponse(producer_pid=os.getpid(), recipe=recipe)

    # --8<-- [end:get_recipe]

    # --8<-- [start:meta_and_stream]
    async def GetMetaData(
        self, request: recipe_pb2.GetMetaDataRequest, context: grpc.aio.ServicerContext
    ) -> recipe_pb2.MetaData:
        return recipe_pb2.MetaData(pid=os.getpid())

    async def ListRecipes(
        self, request: recipe_pb2.ListRecipesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[recipe_pb2.Recipe]:
        sent = 0
        try:
            for recipe_id in sorted(RECIPES):
                if sent:
                    await asyncio.sleep(
                        settings.stream_interval
                    )  # the loop serves others meanwhile
                sent += 1
                yield RECIPES[recipe_id]
        finally:
            # Cancelled in the sleep, or closed at the yield: either way this
            # generator is not resumed once the call is over.
            if sent < len(RECIPES):
                print(f"ListRecipes: cancelled after {sent} of {len(RECIPES)}", flush=True)

    # --8<-- [end:meta_and_stream]


# --8<-- [start:undecodable]
class UndecodableIsInvalidArgument(grpc.aio.ServerInterceptor):
    """Answer bytes that are not a valid request message with INVALID_ARGUMENT.

    Left alone, grpcio answers them with UNKNOWN, gRPC's "500", and the parser's
    exception in the details. Only this service's methods are wrapped.
    """

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None or not details.method.startswith(f"/{SERVICE_NAME}/"):
            return handler  # an unknown method (UNIMPLEMENTED), or another service
        decode = handler.request_deserializer

        def tolerant_decode(data: bytes) -> Message | None:
            try:
                return decode(data)
            except DecodeError:
                return None

        async def reject(context: grpc.aio.ServicerContext) -> None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "not a valid request message")

        if handler.unary_unary:

            async def unary_unary(
                request: Message | None, context: grpc.aio.ServicerContext
            ) -> Message:
                if request is None:
                    await reject(context)
                return await handler.unary_unary(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, tolerant_decode, handler.response_serializer
            )
        # --8<-- [end:undecodable]
        # The server-streaming methods (ListRecipes) get the same treatment.

        async def unary_stream(
            request: Message | None, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Message]:
            if request is None:
                await reject(context)
            async for message in handler.unary_stream(request, context):
                yield message

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, tolerant_decode, handler.response_serializer
        )


# --8<-- [start:serve]
async def serve(host: str, port: int) -> None:
    server = grpc.aio.server(
        interceptors=[UndecodableIsInvalidArgument()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ],
    )
    recipe_pb2_grpc.add_RecipeServiceServicer_to_server(RecipeService(), server)

    # The standard health service: load balancers, Kubernetes probes and
    # grpc_health_probe ask it instead of a GET /health route.
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    await health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)

    if reflection is not None:
        names = (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, server)

    server.add_insecure_port(f"{host}:{port}")  # plaintext: the TLS page adds certificates
    await server.start()
    print(f"recipe-api (gRPC) listening on {host}:{port}", flush=True)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()

    # Tell health watchers first, then refuse new calls and give those in
    # flight SHUTDOWN_GRACE seconds to finish; whatever is left is cancelled.
    await health_servicer.enter_graceful_shutdown()
    await server.stop(SHUTDOWN_GRACE)
    # --8<-- [end:serve]


def main() -> None:
    asyncio.run(serve(settings.host, settings.port))


if __name__ == "__main__":
    main()
