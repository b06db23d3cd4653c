"""recipe-api with mutual TLS: only clients with a certificate from our CA get in.

The server presents its certificate as `tls_producer.py` does, and also
demands one from the client, which must chain to the CA in `TLS_CA`. A client
without a certificate, or with one from any other CA, fails the handshake
before a byte of HTTP is read. Each recipe answer names the client, read from
the certificate it presented.

Run it (after `python examples/protocols/tls_certs.py`):

    python examples/protocols/mtls_producer.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4444`).
- `TLS_CERT`: the server's certificate, PEM (default `certs/server.pem`).
- `TLS_KEY`: the server's private key, PEM (default `certs/server.key`).
- `TLS_CA`: the CA that client certificates must chain to, PEM
  (default `certs/ca.pem`).

A bad setting (`PORT=abc`, `PORT=99999`, a `TLS_CERT`, `TLS_KEY` or `TLS_CA`
that is not a file) stops it at start with exit code 2 and one line naming
the variable and what it accepts.

An unknown route answers 404 and a wrong method 405, each with a JSON error
body; no route accepts a body.
"""

from __future__ import annotations

import os
import ssl
import sys
from pathlib import Path

import orjson
from pydantic import Field, FilePath, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest, NotFound
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, TLS_CERT, TLS_KEY, TLS_CA."""

    host: str = "127.0.0.1"
    port: int = Field(4444, ge=1, le=65535)
    # Checked at start: a missing file is a configuration error, not a traceback later.
    tls_cert: FilePath = Field(Path("certs/server.pem"), validate_default=True)
    tls_key: FilePath = Field(Path("certs/server.key"), validate_default=True)
    tls_ca: FilePath = Field(Path("certs/ca.pem"), validate_default=True)


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

MAX_ID = 2**31 - 1

RECIPES = {
    42: {
        "id": 42,
        "name": "Chicken Tikka Masala",
        "steps": "Throw it in a pot...",
        "ingredients": [
            {"id": 1, "name": "Chicken", "quantity": "1 lb"},
            {"id": 2, "name": "Sauce", "quantity": "2 cups"},
        ],
    },
}

app = Sanic("recipe-api-mtls", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


# --8<-- [start:context]
def tls_context() -> ssl.SSLContext:
    # Purpose.CLIENT_AUTH: the context of a server, which authenticates clients.
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    context.load_verify_locations(cafile=settings.tls_ca)
    # No valid client certificate, no connection:
    context.verify_mode = ssl.CERT_REQUIRED
    return context


# --8<-- [end:context]


# --8<-- [start:routes]
def client_name(request: Request) -> dict[str, str]:
    """The subject of the certificate the client presented, already verified."""
    cert = request.transport.get_extra_info("peercert")
    return {key: value for rdn in cert["subject"] for key, value in rdn}


@app.get("/recipes/<recipe_id:int>")
async def get_recipe(request: Request, recipe_id: int) -> HTTPResponse:
    if not 1 <= recipe_id <= MAX_ID:
        raise BadRequest(f"recipe id must be between 1 and {MAX_ID}")
    recipe = RECIPES.get(recipe_id)
    if recipe is None:
        raise NotFound(f"no recipe with id {recipe_id}")
    client = client_name(request)
    return json({"producer_pid": os.getpid(), "client": client, "recipe": recipe})


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
        ssl=tls_context(),
        single_process=True,
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
