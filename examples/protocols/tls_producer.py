"""recipe-api over HTTPS: the same producer, behind TLS.

It answers `GET /recipes/<id>` and `GET /health` like the first chapter's
recipe-api, but only over TLS, with a certificate signed by our own CA (make it
first with `tls_certs.py`). Each recipe answer also says what the connection
negotiated: the TLS version, the cipher suite, and the server name the client
asked for (SNI), if any.

Run it (after `python examples/protocols/tls_certs.py`):

    python examples/protocols/tls_producer.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4443`).
- `TLS_CERT`: the server's certificate, PEM (default `certs/server.pem`).
- `TLS_KEY`: the server's private key, PEM (default `certs/server.key`).

A bad setting (`PORT=abc`, `PORT=99999`, a `TLS_CERT` or `TLS_KEY` that is not
a file) stops it at start with exit code 2 and one line naming the variable
and what it accepts.

A client that does not trust the CA fails the handshake; a plain-HTTP request
to this port gets its connection closed; neither disturbs the service. An
unknown route answers 404 and a wrong method 405, each with a JSON error body;
no route accepts a body.
"""

from __future__ import annotations

import os
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
    """Read once at start from the environment: HOST, PORT, TLS_CERT, TLS_KEY."""

    host: str = "127.0.0.1"
    port: int = Field(4443, ge=1, le=65535)
    # Checked at start: a missing file is a configuration error, not a traceback later.
    tls_cert: FilePath = Field(Path("certs/server.pem"), validate_default=True)
    tls_key: FilePath = Field(Path("certs/server.key"), validate_default=True)


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

app = Sanic("recipe-api-tls", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


# --8<-- [start:routes]
def tls_facts(request: Request) -> dict[str, str]:
    """What this connection negotiated, read from its ssl.SSLObject."""
    tls = request.transport.get_extra_info("ssl_object")
    return {
        "version": tls.version(),
        "cipher": tls.cipher()[0],
        # SNI: the host name the client asked for, "" when it sent none
        "server_name": request.conn_info.server_name,
    }


@app.get("/recipes/<recipe_id:int>")
async def get_recipe(request: Request, recipe_id: int) -> HTTPResponse:
    if not 1 <= recipe_id <= MAX_ID:
        raise BadRequest(f"recipe id must be between 1 and {MAX_ID}")
    recipe = RECIPES.get(recipe_id)
    if recipe is None:
        raise NotFound(f"no recipe with id {recipe_id}")
    facts = tls_facts(request)
    return json({"producer_pid": os.getpid(), "tls": facts, "recipe": recipe})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "ok"})


# --8<-- [end:routes]


# --8<-- [start:run]
def main() -> None:
    app.run(
        host=settings.host,
        port=settings.port,
        # Sanic builds the SSLContext: TLS 1.2 at least, forward-secret AEAD
        # ciphers only.
        ssl={
            "cert": str(settings.tls_cert),
            "key": str(settings.tls_key),
        },
        single_process=True,
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
# --8<-- [end:run]
