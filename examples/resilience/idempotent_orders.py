"""An order service whose `POST /orders` has one effect however often it is retried.

`POST /orders` takes a JSON order (`{"item": "...", "quantity": 1}`) and an
`Idempotency-Key` header chosen by the client, one per order it means to place.
The first request with a key creates the order and stores its answer under the
key, in the same PostgreSQL transaction; every later request with that key
gets the stored answer, byte for byte, with `Idempotent-Replayed: true`, and
creates nothing.

- The key is required (400 without it) and is 1 to 100 characters among
  letters, digits and `-_.:` (400 otherwise).
- The same key with a different order is a client bug: 422, nothing created.
- A duplicate that arrives while the first request is still running waits for
  its answer, at most `IN_PROGRESS_TIMEOUT` seconds; after that it gets 409
  with `Retry-After: 1` and can simply try again.
- An invalid order is 400 with the validation errors, and uses no key.

Run it (with PostgreSQL at the address below; it creates its two tables):

    python examples/resilience/idempotent_orders.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4010`).
- `DATABASE_URL`: PostgreSQL URL (default `postgresql://postgres@127.0.0.1:5432/postgres`).
- `IN_PROGRESS_TIMEOUT`: seconds a duplicate waits for the first request's answer (default `5`).

A bad setting (`PORT=abc`, `DATABASE_URL=mysql://db`, `IN_PROGRESS_TIMEOUT=-1`)
stops it at start with exit code 2 and one line naming the variable and what it
accepts; `DATABASE_URL` is a secret and never printed. `GET /health` answers 200
when PostgreSQL answers, 503 otherwise. It stops cleanly on SIGTERM or Ctrl-C,
finishing the requests in flight. Malformed JSON is 400, a body over 64 KiB 413,
an unknown route 404 and a wrong method 405, each with a JSON error body.
"""

from __future__ import annotations

import hashlib
import re
import sys
from datetime import UTC, datetime

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import BaseModel, Field, PositiveFloat, PostgresDsn, Secret, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json, raw


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, DATABASE_URL, IN_PROGRESS_TIMEOUT."""

    host: str = "127.0.0.1"
    port: int = Field(4010, ge=1, le=65535)
    database_url: Secret[PostgresDsn] = Secret(
        PostgresDsn("postgresql://postgres@127.0.0.1:5432/postgres")
    )
    in_progress_timeout: PositiveFloat = 5.0


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

app = Sanic("idempotent-orders", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False

# --8<-- [start:schema]
SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id         bigserial PRIMARY KEY,
    item       text NOT NULL,
    quantity   integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key          text PRIMARY KEY,          -- the UNIQUE constraint does the work
    request_hash text NOT NULL,             -- which request the key was first used for
    status       integer,                   -- the answer, stored with the order
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now()
);
"""
# --8<-- [end:schema]


@app.before_server_start
async def open_pool(app: Sanic) -> None:
    url = str(settings.database_url.get_secret_value())
    app.ctx.pool = AsyncConnectionPool(url, min_size=1, max_size=10, open=False)
    await app.ctx.pool.open(wait=True, timeout=10)
    async with app.ctx.pool.connection() as connection:
        # Several instances may start at once: one creates the tables, the others wait.
        await connection.execute("SELECT pg_advisory_xact_lock(4010)")
        await connection.execute(SCHEMA)


@app.after_server_stop
async def close_pool(app: Sanic) -> None:
    await app.ctx.pool.close()


# --8<-- [start:validation]
KEY = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


class Order(BaseModel):
    item: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=1000)


def error(status: int, message: str, **details: object) -> HTTPResponse:
    return json({"error": message, **details}, status=status)


def request_hash(order: Order) -> str:
    # The validated order, not the raw bytes: the same order sent with other
    # spacing or key order is the same request.
    return hashlib.sha256(b"POST /orders\n" + order.model_dump_json().encode()).hexdigest()


# --8<-- [end:validation]


# --8<-- [start:route]
@app.post("/orders")
async def create_order(request: Request) -> HTTPResponse:
    key = request.headers.get("idempotency-key")
    if key is None:
        return error(400, "the Idempotency-Key header is required")
    if not KEY.fullmatch(key):
        return error(400, "Idempotency-Key: 1 to 100 characters among A-Z a-z 0-9 - _ . :")
    try:
        order = Order.model_validate(request.json)  # malformed JSON: Sanic answers 400
    except ValidationError as invalid:
        return error(400, "invalid order", details=invalid.errors(include_url=False))
    try:
        return await once(key, request_hash(order), order)
    except (psycopg.errors.LockNotAvailable, PoolTimeout):
        # The first request with this key still runs (or the pool is full):
        # nothing was done for this one, so the client may send it again.
        answer = error(409, "a request with this Idempotency-Key is in progress")
        answer.headers["Retry-After"] = "1"
        return answer


# --8<-- [end:route]


# --8<-- [start:orders]
async def once(key: str, fingerprint: str, order: Order) -> HTTPResponse:
    """Place the order if the key is new; otherwise replay the key's stored answer."""
    pool = app.ctx.pool
    async with pool.connection(timeout=settings.in_progress_timeout) as db, db.transaction():
        # A duplicate's INSERT waits here until the first request's
        # transaction ends (commit: conflict; rollback: it claims the key).
        timeout_ms = str(round(settings.in_progress_timeout * 1000))
        await db.execute("SELECT set_config('lock_timeout', %s, true)", (timeout_ms,))
        claimed = await db.execute(
            "INSERT INTO idempotency_keys (key, request_hash) VALUES (%s, %s)"
            " ON CONFLICT (key) DO NOTHING",
            (key, fingerprint),
        )
        await db.execute("SET LOCAL lock_timeout = 0")  # the bound is for the claim alone
        if claimed.rowcount == 1:  # the first request with this key
            status, body = await place(db, order)
            await db.execute(
                "UPDATE idempotency_keys SET status = %s, body = %s WHERE key = %s",
                (status, body, key),
            )
            return raw(body, status=status, content_type="application/json")
        stored = await db.execute(
            "SELECT request_hash, status, body FROM idempotency_keys WHERE key = %s",
            (key,),
        )
        first_hash, status, body = await stored.fetchone()
    if first_hash != fingerprint:
        return error(422, "this Idempotency-Key was used for a different request")
    headers = {"Idempotent-Replayed": "true"}
    return raw(body, status=status, content_type="application/json", headers=headers)


# --8<-- [end:orders]


# --8<-- [start:place]
async def place(db: psycopg.AsyncConnection, order: Order) -> tuple[int, bytes]:
    """The effect itself, in the caller's transaction: one row in orders."""
    row = await db.execute(
        "INSERT INTO orders (item, quantity) VALUES (%s, %s) RETURNING id, created_at",
        (order.item, order.quantity),
    )
    order_id, created_at = await row.fetchone()
    created: datetime = created_at.astimezone(UTC)
    answer = {"id": order_id, **order.model_dump(), "created_at": created.isoformat()}
    return 201, orjson.dumps(answer)


# --8<-- [end:place]


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    try:
        async with app.ctx.pool.connection(timeout=2) as db:
            await db.execute("SELECT 1")
    except Exception as failure:  # any failure means not ready; the class name only
        return json({"status": "DOWN", "error": type(failure).__name__}, status=503)
    return json({"status": "UP"})


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
