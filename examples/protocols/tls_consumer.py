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

When recipe-api's certificate does not verify, or recipe-api refuses ours,
web-api answers 502 with a JSON error that says so; it never answers 500.
"""

from __future__ import annotations

import os
import ssl

import httpx
import orjson
from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

TARGET = os.environ.get("TARGET", "https://localhost:4443")
TARGET_TIMEOUT = float(os.environ.get("TARGET_TIMEOUT", "2"))

app = Sanic("web-api-tls", dumps=orjson.dumps)
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


# --8<-- [start:client]
def tls_context() -> ssl.SSLContext:
    # Verify the certificate chain and the host name, trusting our CA only.
    context = ssl.create_default_context(cafile=os.environ.get("TARGET_CA", "certs/ca.pem"))
    client_cert = os.environ.get("TLS_CLIENT_CERT")
    if client_cert:  # for a producer that asks who we are (mutual TLS)
        context.load_cert_chain(client_cert, os.environ.get("TLS_CLIENT_KEY"))
    return context


@app.before_server_start
async def open_client(app: Sanic) -> None:
    app.ctx.recipes = httpx.AsyncClient(
        base_url=TARGET, timeout=TARGET_TIMEOUT, verify=tls_context()
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
        return bad_gateway(f"no answer within {TARGET_TIMEOUT:g}s")
    except httpx.HTTPStatusError as error:
        return bad_gateway(f"answered {error.response.status_code}")
    except httpx.TransportError as error:  # refused, reset, TLS failure...
        return bad_gateway(tls_failure(error) or type(error).__name__)
    except ValueError:
        return bad_gateway("answered something that is not JSON")
    return json({"consumer_pid": os.getpid(), "producer_data": producer_data})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    return json({"status": "ok"})


# --8<-- [end:routes]


def main() -> None:
    app.run(
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "3000")),
        single_process=True,
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
