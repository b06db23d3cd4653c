r"""web-api over gRPC: an HTTP service that calls the gRPC recipe-api.

`GET /` calls `GetMetaData` and `GetRecipe(42)` at once, `GET /recipes/<id>`
calls `GetRecipe` and `GET /recipes` collects the `ListRecipes` stream into a
JSON list, all through one shared `grpc.aio` channel to `TARGET` with a
deadline on every call. `GET /health` answers 200 once the server is ready.
The stubs it imports are generated from `recipe.proto`, from the repository
root:

    python -m grpc_tools.protoc -I examples/protocols \
        --python_out=examples/protocols --pyi_out=examples/protocols \
        --grpc_python_out=examples/protocols examples/protocols/recipe.proto

Run it (with grpc_producer.py already listening on port 4003):

    TARGET=127.0.0.1:4003 python examples/protocols/grpc_consumer.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `3000`).
- `TARGET`: `host:port` of the gRPC recipe-api (default `127.0.0.1:4003`).
- `TARGET_TIMEOUT`: the deadline of each gRPC call, in seconds (default `2`).

A bad setting (`PORT=abc`, `TARGET=not-host-port`, `TARGET_TIMEOUT=-1`) stops
it at start with exit code 2 and one line naming the variable and what it
accepts.

`GET /recipes/<id>?delay_ms=N` asks recipe-api to take N ms first, to watch
a deadline expire. gRPC status codes become HTTP ones: `INVALID_ARGUMENT` 400,
`NOT_FOUND` 404, `DEADLINE_EXCEEDED` 504 and every other failure 502, each
with a JSON body; never a 500, never a hang. An unknown route answers 404 and
a wrong method 405, each with a JSON error body; no route accepts a body.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import grpc
import orjson
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from pydantic import Field, PositiveFloat, ValidationError, field_validator
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

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


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, TARGET, TARGET_TIMEOUT."""

    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    target: str = "127.0.0.1:4003"  # host:port, as gRPC channels take it
    target_timeout: PositiveFloat = 2.0

    @field_validator("target")
    @classmethod
    def host_and_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError("expected host:port, such as 127.0.0.1:4003")
        return value


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


# --8<-- [start:channel]
MAX_MESSAGE = 64 * 1024

app = Sanic("web-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


@app.before_server_start
async def open_channel(app: Sanic) -> None:
    # One channel for the life of the process: one HTTP/2 connection to
    # recipe-api, with every concurrent call a stream multiplexed over it.
    app.ctx.channel = grpc.aio.insecure_channel(
        settings.target, options=[("grpc.max_receive_message_length", MAX_MESSAGE)]
    )
    app.ctx.recipes = recipe_pb2_grpc.RecipeServiceStub(app.ctx.channel)


@app.after_server_stop
async def close_channel(app: Sanic) -> None:
    await app.ctx.channel.close()


# --8<-- [end:channel]


# --8<-- [start:errors]
# The client's own mistakes keep their meaning; every failure of recipe-api
# itself is a bad gateway (502), or a gateway timeout (504) for a deadline.
HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNAVAILABLE: 502,
}


@app.exception(grpc.aio.AioRpcError)
async def grpc_error(request: Request, error: grpc.aio.AioRpcError) -> HTTPResponse:
    status = HTTP_STATUS.get(error.code(), 502)
    if status < 500:
        body = {"status": status, "message": error.details(), "grpc_status": error.code().name}
    else:  # recipe-api's details (addresses, internals) are not for web-api's clients
        body = {"error": "recipe-api unavailable", "reason": error.code().name}
    return json(body, status=status)


def as_dict(message: Message) -> dict:
    # Keep the .proto's snake_case names (the default is lowerCamelCase).
    return MessageToDict(message, preserving_proto_field_name=True)


# --8<-- [end:errors]


# --8<-- [start:routes]
@app.get("/")
async def index(request: Request) -> HTTPResponse:
    # Two calls in flight at once, on the same connection.
    meta, reply = await asyncio.gather(
        app.ctx.recipes.GetMetaData(
            recipe_pb2.GetMetaDataRequest(), timeout=settings.target_timeout
        ),
        app.ctx.recipes.GetRecipe(
            recipe_pb2.GetRecipeRequest(id=42), timeout=settings.target_timeout
        ),
    )
    return json(
        {
            "consumer_pid": os.getpid(),
            "producer_meta": as_dict(meta),
            "producer_data": as_dict(reply),
        }
    )


@app.get("/recipes/<recipe_id:int>")
async def get_recipe(request: Request, recipe_id: int) -> HTTPResponse:
    try:
        message = recipe_pb2.GetRecipeRequest(id=recipe_id)
        delay_ms = int(request.args.get("delay_ms", "0"))
    except ValueError as error:  # an id beyond int32 cannot even be encoded
        raise BadRequest(str(error)) from None
    metadata = (("x-request-id", uuid.uuid4().hex), ("delay-ms", str(delay_ms)))
    call = app.ctx.recipes.GetRecipe(message, metadata=metadata, timeout=settings.target_timeout)
    reply = await call
    echoed = dict(await call.initial_metadata())
    return json(as_dict(reply), headers={"x-request-id": echoed["x-request-id"]})


# --8<-- [end:routes]


# --8<-- [start:stream]
@app.get("/recipes")
async def list_recipes(request: Request) -> HTTPResponse:
    # The deadline covers the whole stream, not each message.
    stream = app.ctx.recipes.ListRecipes(
        recipe_pb2.ListRecipesRequest(), timeout=settings.target_timeout
    )
    return json({"recipes": [as_dict(recipe) async for recipe in stream]})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "ok"})


# --8<-- [end:stream]


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
