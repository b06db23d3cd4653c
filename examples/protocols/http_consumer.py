"""web-api, calling recipe-api with JSON over HTTP and mapping its failures.

`GET /recipes/<id>` and `POST /recipes` go to recipe-api (at `TARGET`)
through one shared HTTP client, and come back with web-api's pid beside the
producer's answer. `GET /health` answers 200 once the server is ready.

Run it (with recipe-api already listening on port 4000):

    TARGET=http://127.0.0.1:4000 python examples/protocols/http_consumer.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `3000`).
- `TARGET`: base URL of recipe-api (default `http://127.0.0.1:4000`).
- `TARGET_TIMEOUT`: seconds to wait for recipe-api, per call (default `2`).

A bad setting (`PORT=abc`, `TARGET=not-a-url`, `TARGET_TIMEOUT=-1`) stops it at
start with exit code 2 and one line naming the variable and what it accepts.

A body that is not JSON gets 400, and one not labelled `application/json`
415, from web-api itself. The client's mistakes that only recipe-api can
detect (an id out of range, an unknown recipe, an invalid one, a duplicate
name) keep their status: 400, 404, 422, 409. Every failure of recipe-api
itself is web-api's 502, or 504 when it did not answer in time; never a 500,
never a hang. A body over 16 KiB on `POST /recipes` (the route that accepts
a body) gets 413, an unknown route 404 and a wrong method 405, each with a
JSON error body.
"""

from __future__ import annotations

import os
import sys

import httpx
import orjson
from pydantic import Field, HttpUrl, PositiveFloat, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest, SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, TARGET, TARGET_TIMEOUT."""

    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    target: HttpUrl = HttpUrl("http://127.0.0.1:4000")
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


class ClientError(SanicException):
    """A 4xx: answered with a JSON body, and no traceback in the log."""

    quiet = True


app = Sanic("web-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 16 * 1024  # the same limit as recipe-api's
app.config.MOTD = False


@app.before_server_start
async def open_client(app: Sanic) -> None:
    # One client, one pool of kept-alive connections, for the life of the process.
    app.ctx.recipes = httpx.AsyncClient(
        base_url=str(settings.target),
        timeout=settings.target_timeout,
        headers={"Accept": "application/json"},
    )


@app.after_server_stop
async def close_client(app: Sanic) -> None:
    await app.ctx.recipes.aclose()


# --8<-- [start:call]
# What the client sent (an id, a recipe) was wrong, and only recipe-api could tell.
PASSED_ON = {400, 404, 409, 422}


def gateway_error(status: int, reason: str) -> HTTPResponse:
    return json({"error": "recipe-api unavailable", "reason": reason}, status=status)


async def call_recipe_api(method: str, path: str, **kwargs: object) -> HTTPResponse:
    try:
        response = await app.ctx.recipes.request(method, path, **kwargs)
        body = response.json()
    except httpx.TimeoutException:
        return gateway_error(504, f"no answer within {settings.target_timeout:g}s")
    except httpx.TransportError as error:  # refused, reset, DNS...
        return gateway_error(502, type(error).__name__)
    except ValueError:  # the body was not JSON
        return gateway_error(502, "answered something that is not JSON")
    if response.status_code in PASSED_ON:
        # Pass on what went wrong, field by field; nothing else of the answer.
        details = body if isinstance(body, dict) else {}
        error = {"status": response.status_code, "message": details.get("message", "")}
        if "context" in details:
            error["context"] = details["context"]
        return json(error, status=response.status_code)
    if response.is_error:
        # Another 4xx (406, 413, 415...) is web-api's bug; a 5xx, recipe-api's.
        return gateway_error(502, f"answered {response.status_code}")
    location = response.headers.get("location")
    headers = {"Location": location} if location else {}
    return json(
        {"consumer_pid": os.getpid(), "producer_data": body},
        status=response.status_code,
        headers=headers,
    )


# --8<-- [end:call]


# --8<-- [start:routes]
@app.get("/recipes/<recipe_id:int>")
async def get_recipe(request: Request, recipe_id: int) -> HTTPResponse:
    return await call_recipe_api("GET", f"/recipes/{recipe_id}")


@app.post("/recipes")
async def create_recipe(request: Request) -> HTTPResponse:
    # Bad JSON is caught here, before it costs a call; whether the JSON is a
    # valid recipe is recipe-api's business, and its 422 comes back as is.
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ClientError("send the recipe as application/json", status_code=415)
    try:
        orjson.loads(request.body)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"malformed JSON: {error}") from None
    json_body = {"content": request.body, "headers": {"Content-Type": "application/json"}}
    return await call_recipe_api("POST", "/recipes", **json_body)


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
