"""web-api over GraphQL: one request asks recipe-api for exactly what this page needs.

`GET /` sends one "kitchen sink" query (variables, aliases and a fragment) to
recipe-api's `/graphql` at `TARGET`, through one shared HTTP client, and
answers with its own pid beside the data.

Run it (with graphql_producer.py already listening on port 4001):

    TARGET=http://127.0.0.1:4001 python examples/protocols/graphql_consumer.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `3000`).
- `TARGET`: base URL of recipe-api (default `http://127.0.0.1:4001`).
- `TARGET_TIMEOUT`: seconds to wait for recipe-api, per call (default `2`).

A bad setting (`PORT=abc`, `TARGET=not-a-url`, `TARGET_TIMEOUT=-1`) stops it at
start with exit code 2 and one line naming the variable and what it accepts.

When recipe-api is down, times out, answers something that is not JSON or
answers GraphQL `errors`, web-api answers 502 with a JSON error at once. An
unknown route answers 404 and a wrong method 405, each with a JSON error
body; no route accepts a body.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import httpx
import orjson
from pydantic import Field, HttpUrl, PositiveFloat, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, TARGET, TARGET_TIMEOUT."""

    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    target: HttpUrl = HttpUrl("http://127.0.0.1:4001")
    target_timeout: PositiveFloat = 2.0


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

# --8<-- [start:query]
KITCHEN_SINK = """
query kitchenSink($id: ID!) {
  producer_pid: pid
  recipe(id: $id) {
    ...recipeCard
    ingredients {
      name
      quantity
    }
  }
  menu: recipes(limit: 3) {
    ...recipeCard
  }
}

fragment recipeCard on Recipe {
  id
  name
}
"""
# --8<-- [end:query]

app = Sanic("web-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


@app.before_server_start
async def open_client(app: Sanic) -> None:
    app.ctx.recipes = httpx.AsyncClient(
        base_url=str(settings.target), timeout=settings.target_timeout
    )


@app.after_server_stop
async def close_client(app: Sanic) -> None:
    await app.ctx.recipes.aclose()


# --8<-- [start:routes]
def bad_gateway(reason: str) -> HTTPResponse:
    return json({"error": "recipe-api unavailable", "reason": reason}, status=502)


def first_error(result: Any) -> str:
    try:
        return str(result["errors"][0]["message"])
    except (KeyError, IndexError, TypeError):
        return "no data"


@app.get("/")
async def index(request: Request) -> HTTPResponse:
    try:
        response = await app.ctx.recipes.post(
            "/graphql",
            json={"query": KITCHEN_SINK, "variables": {"id": "42"}},
        )
        result = response.json()
    except httpx.TimeoutException:
        return bad_gateway(f"no answer within {settings.target_timeout:g}s")
    except httpx.TransportError as error:  # refused, reset, DNS...
        return bad_gateway(type(error).__name__)
    except ValueError:  # the body was not JSON
        return bad_gateway(f"answered {response.status_code}, not JSON")
    # Errors can come with a 200 and partial data: look at the body, not only
    # at the status. This page needs all of its data, so any error is a 502.
    data = result.get("data") if isinstance(result, dict) else None
    if response.status_code != 200 or data is None or result.get("errors"):
        return bad_gateway(f"answered {response.status_code}: {first_error(result)}")
    return json({"consumer_pid": os.getpid(), "producer_data": data})


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
