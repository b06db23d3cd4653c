"""web-api over HTTPS: a consumer that trusts exactly one CA.

`GET /` asks recipe-api (at `TARGET`, an `https://` URL) for recipe 42 through
one shared HTTP client, and answers with its own pid beside the producer's
answer. The client verifies recipe-api's certificate against our CA and
nothing else: not the operating system's trust store, and never "don't
verify". With a client certificate configured, it also proves its own
identity to a producer that demands one (mutual TLS).

Run it (with `tls_producer.py` listening on port 4443):

    python examples/protocols/tls_consumer.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `3000`).
- `TARGET`: base URL of recipe-api (default `https://localhost:4443`).
- `TARGET_CA`: the CA certificate that recipe-api's certificate must chain
  to, PEM (default `certs/ca.pem`).
- `TARGET_TIMEOUT`: seconds to wait for recipe-api, per call (default `2`).
- `TLS_CLIENT_CERT` and `TLS_CLIENT_KEY`: a client certificate and its key,
  PEM, to present to recipe-api (default: none).

A bad setting (`PORT=abc`, `TARGET=not-a-url`, `TARGET_TIMEOUT=-1`, a
`TARGET_CA` that is not a file) stops it at start with exit code 2 and one
line naming the variable and what it accepts.

When recipe-api's certificate does not verify, or recipe-api refuses ours,
web-api answers 502 with a JSON error that says so; it never answers 500.
An unknown route answers 404 and a wrong method 405, each with a JSON error
body; no route accepts a body.
"""

from __future__ import annotations

import os
import ssl
import sys
from pathlib import Path

import httpx
import orjson
from pydantic import Field, FilePath, HttpUrl, PositiveFloat, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, TARGET..., TLS_CLIENT_*."""

    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    target: HttpUrl = HttpUrl("https://localhost:4443")
    target_ca: FilePath = Field(Path("certs/ca.pem"), validate_default=True)
    target_timeout: PositiveFloat = 2.0
    tls_client_cert: FilePath | None = None
    tls_client_key: FilePath | None = None


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

app = Sanic("web-api-tls", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


# --8<-- [start:client]
def tls_context() -> ssl.SSLContext:
    # Verify the certificate chain and the host name, trusting our CA only.
    context = ssl.create_default_context(cafile=settings.target_ca)
    if settings.tls_client_cert:  # for a producer that asks who we are (mutual TLS)
        context.load_cert_chain(settings.tls_client_cert, settings.tls_client_key)
    return context


@app.before_server_start
async def open_client(app: Sanic) -> None:
    app.ctx.recipes = httpx.AsyncClient(
        base_url=str(settings.target),
        timeout=settings.target_timeout,
        verify=tls_context(),
    )


@app.after_server_stop
async def close_client(app: Sanic) -> None:
    await app.ctx.recipes.aclose()


# --8<-- [end:client]


# --8<-- [start:routes]
def bad_gateway(reason: str) -> HTTPResponse:
    return json({"error": "recipe-api unavailable", "reason": reason}, status=502)


def tls_failure(error: BaseException) -> str | None:
    """The TLS reason behind a transport error, if TLS is what failed."""
    while error is not None:
        if isinstance(error, ssl.SSLCertVerificationError):
            return f"recipe-api's certificate did not verify: {error.verify_message}"
        if isinstance(error, ssl.SSLError):
            return f"TLS handshake failed: {error.reason}"
        error = error.__cause__ or error.__context__
    return None


@app.get("/")
async def index(request: Request) -> HTTPResponse:
    try:
        response = await app.ctx.recipes.get("/recipes/42")
        response.raise_for_status()
        producer_data = response.json()
    except httpx.TimeoutException:
        return bad_gateway(f"no answer within {settings.target_timeout:g}s")
    except httpx.HTTPStatusError as error:
        return bad_gateway(f"answered {error.response.status_code}")
    except httpx.TransportError as error:  # refused, reset, TLS failure...
        return bad_gateway(tls_failure(error) or type(error).__name__)
    except ValueError:
        return bad_gateway("answered something that is not JSON")
    return json({"consumer_pid": os.getpid(), "producer_data": producer_data})


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
