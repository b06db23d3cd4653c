"""Bytes on the wire: the same recipe over JSON/HTTP, GraphQL and gRPC.

Puts a byte-counting TCP relay in front of each producer, makes the same call
through it several times over one connection, and prints how many bytes went
each way: for the first call, which pays for setting up the connection (for
gRPC, HTTP/2's preface and settings), and for each later call on the same
connection. It also prints the size of the payload alone: the JSON body, the
GraphQL response body, the protobuf message.

Run it (with http_producer.py, graphql_producer.py and grpc_producer.py
listening on their default ports, and the gRPC stubs generated):

    python examples/protocols/wire_bytes.py

Environment:

- `HTTP_TARGET`: base URL of the JSON recipe-api (default `http://127.0.0.1:4000`).
- `GRAPHQL_TARGET`: base URL of the GraphQL recipe-api (default `http://127.0.0.1:4001`).
- `GRPC_TARGET`: `host:port` of the gRPC recipe-api (default `127.0.0.1:4003`).
- `CALLS`: calls per protocol over one connection (default `5`, at least 2).

A bad setting (`CALLS=1`, `HTTP_TARGET=not-a-url`, `GRPC_TARGET=nohost`) stops it
with exit code 2 and one line naming the variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import grpc
import httpx
from pydantic import Field, HttpUrl, ValidationError, field_validator
from pydantic_settings import BaseSettings

try:  # generated from recipe.proto, next to this file
    import recipe_pb2
    import recipe_pb2_grpc
except ModuleNotFoundError as error:
    sys.exit(f"{error.name}.py is missing: run snippets/protocols/grpc_codegen.sh first")


class Settings(BaseSettings):
    """Read once at start from the environment: the three targets and CALLS."""

    http_target: HttpUrl = HttpUrl("http://127.0.0.1:4000")
    graphql_target: HttpUrl = HttpUrl("http://127.0.0.1:4001")
    grpc_target: str = "127.0.0.1:4003"
    calls: int = Field(5, ge=2)

    @field_validator("grpc_target")
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
HTTP_TARGET = str(settings.http_target)
GRAPHQL_TARGET = str(settings.graphql_target)
GRPC_TARGET = settings.grpc_target
CALLS = settings.calls

# The same data each way: the recipe with its ingredients, and the producer's pid.
GRAPHQL_QUERY = """
query Recipe($id: ID!) {
  pid
  recipe(id: $id) { id name steps ingredients { id name quantity } }
}
"""


# --8<-- [start:relay]
@dataclass
class Counter:
    up: int = 0  # client to server
    down: int = 0  # server to client


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count) -> None:
    try:
        while data := await reader.read(65536):
            count(len(data))
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def relay(target_host: str, target_port: int) -> AsyncIterator[tuple[int, Counter]]:
    """A loopback port that forwards to the target and counts every byte, both ways."""
    counter = Counter()
    tasks: set[asyncio.Task[None]] = set()

    async def on_client(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(target_host, target_port)
        for task in (
            pump(client_r, server_w, lambda n: setattr(counter, "up", counter.up + n)),
            pump(server_r, client_w, lambda n: setattr(counter, "down", counter.down + n)),
        ):
            tasks.add(asyncio.create_task(task))

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], counter
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


# --8<-- [end:relay]


@dataclass
class Measure:
    protocol: str
    first_up: int
    first_down: int
    later_up: float
    later_down: float
    payload: int


async def measure(
    protocol: str, target: tuple[str, int], call: Callable[[int], Awaitable[int]]
) -> Measure:
    """Make CALLS calls through a relay; `call(port)` returns the payload size."""
    async with relay(*target) as (port, counter):
        sizes: list[tuple[int, int]] = []
        payload = 0
        for _ in range(CALLS):
            before = (counter.up, counter.down)
            payload = await call(port)
            await asyncio.sleep(0.05)  # let acknowledgements in flight reach the counter
            sizes.append((counter.up - before[0], counter.down - before[1]))
    later = sizes[1:]
    return Measure(
        protocol,
        first_up=sizes[0][0],
        first_down=sizes[0][1],
        later_up=sum(up for up, _ in later) / len(later),
        later_down=sum(down for _, down in later) / len(later),
        payload=payload,
    )


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"//{url}")
    return parts.hostname or "127.0.0.1", parts.port or 80


# --8<-- [start:calls]
async def compare() -> list[Measure]:
    results = []
    async with httpx.AsyncClient(timeout=5) as http:  # one client: one kept-alive connection

        async def json_call(port: int) -> int:
            response = await http.get(f"http://127.0.0.1:{port}/recipes/42")
            response.raise_for_status()
            return len(response.content)

        async def graphql_call(port: int) -> int:
            body = {"query": GRAPHQL_QUERY, "variables": {"id": "42"}}
            response = await http.post(f"http://127.0.0.1:{port}/graphql", json=body)
            response.raise_for_status()
            return len(response.content)

        results.append(await measure("JSON over HTTP/1.1", host_port(HTTP_TARGET), json_call))
        results.append(
            await measure("GraphQL over HTTP/1.1", host_port(GRAPHQL_TARGET), graphql_call)
        )

    channels: dict[int, grpc.aio.Channel] = {}

    async def grpc_call(port: int) -> int:
        if port not in channels:  # one channel: one HTTP/2 connection for every call
            channels[port] = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stub = recipe_pb2_grpc.RecipeServiceStub(channels[port])
        reply = await stub.GetRecipe(recipe_pb2.GetRecipeRequest(id=42), timeout=5)
        return reply.ByteSize()

    try:
        results.append(await measure("gRPC over HTTP/2", host_port(GRPC_TARGET), grpc_call))
    finally:
        for channel in channels.values():
            await channel.close()
    return results


# --8<-- [end:calls]


def table(results: list[Measure]) -> str:
    lines = [
        "| protocol | first call: sent / received | each later call: sent / received | payload |",
        "|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.protocol} | {r.first_up:,} B / {r.first_down:,} B "
            f"| {r.later_up:,.0f} B / {r.later_down:,.0f} B | {r.payload:,} B |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(asyncio.run(compare())))
