"""recipe-api with HTTP compression negotiated in the application.

- `GET /recipes?count=N` answers a JSON array of N recipes (1 to 10,000,
  default 10), compressed with the best encoding the client accepts once the
  body reaches 1 KiB.
- `GET /recipes/stream?count=N` streams N recipes as JSON lines (1 to 10,000,
  default 1,000), compressed incrementally: every batch the client receives
  can be decompressed at once, before the rest arrives.
- `POST /recipes` takes a JSON array of recipes, gzipped
  (`Content-Encoding: gzip`) or not, and answers how many it got.
- `GET /health` answers 200 once the server is ready.

Run it:

    python examples/protocols/compression_producer.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4002`).

A bad setting (`PORT=abc`, `PORT=99999`) stops it at start with exit code 2 and
one line naming the variable and what it accepts.

The encoding comes from `Accept-Encoding` (q-values, `*`, `identity;q=0`),
preferring zstd, then br, then gzip when the client likes them equally. No
header, `identity`, or nothing usable in it: no compression. Every response
of a negotiated route carries `Vary: Accept-Encoding`. A client that refuses
identity and every encoding offered here gets 406. A count out of range is a
400; a request body over 64 KiB, or over 1 MiB once decompressed, a 413 (on
`POST /recipes`, the route that accepts a body); a `Content-Encoding` other
than gzip a 415; corrupt or truncated gzip data or malformed JSON a 400. An
unknown route is a 404 and a wrong method a 405; every error body is JSON.
"""

from __future__ import annotations

import asyncio
import re
import sys
import zlib
from typing import Protocol

import brotli
import orjson
import zstandard
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest, PayloadTooLarge, SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json, raw


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT."""

    host: str = "127.0.0.1"
    port: int = Field(4002, ge=1, le=65535)


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


# --8<-- [start:recipes]
DISHES = ["Chicken Tikka Masala", "Pad Thai", "Shakshuka", "Jollof Rice", "Pierogi", "Pho"]
FOODS = ["Chicken", "Rice noodles", "Eggs", "Tomatoes", "Onion", "Garlic", "Rice", "Flour"]
STEPS = ["Chop everything.", "Fry the onion.", "Simmer for 20 minutes.", "Season to taste."]


def recipe(i: int) -> dict:
    """Recipe number i: always the same, so every size on the page can be checked."""
    return {
        "id": i,
        "name": f"{DISHES[i % len(DISHES)]} #{i}",
        "steps": " ".join(STEPS[: 1 + i % len(STEPS)]),
        "ingredients": [
            {"id": k, "name": FOODS[(i + 3 * k) % len(FOODS)], "quantity": f"{(i * 7 + k) % 900} g"}
            for k in range(1, 2 + i % 4)
        ],
    }


# --8<-- [end:recipes]


# --8<-- [start:parse_accept]
SUPPORTED = ("zstd", "br", "gzip")  # our preference when the client's q-values tie
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
QVALUE = re.compile(r"0(\.\d{0,3})?|1(\.0{0,3})?")


def parse_accept_encoding(header: str) -> dict[str, float]:
    """Each coding the header names, with its q-value. Unreadable entries are skipped."""
    accepted: dict[str, float] = {}
    for item in header.split(","):
        coding, *params = item.split(";")
        coding, q = coding.strip().lower(), 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                q = float(value) if QVALUE.fullmatch(value.strip()) else -1.0
        if TOKEN.fullmatch(coding) and q >= 0:
            accepted.setdefault(coding, q)
    return accepted


# --8<-- [end:parse_accept]


# --8<-- [start:negotiation]
def choose_encoding(header: str | None) -> str | None:
    """One of SUPPORTED, "identity", or None when the client accepts nothing we have."""
    if header is None:
        return "identity"  # a client that can decompress says so
    accepted = parse_accept_encoding(header)
    star = accepted.get("*")
    best, best_q = "identity", 0.0
    for coding in SUPPORTED:
        q = accepted.get(coding, star or 0.0)
        if q > best_q:
            best, best_q = coding, q
    if accepted.get("identity", 0.0) > best_q:
        return "identity"  # the client prefers its bytes as they are
    if best_q > 0:
        return best
    # Identity is acceptable unless excluded by "identity;q=0", or by "*;q=0"
    # when identity is not named.
    identity_allowed = accepted.get("identity", 1.0 if star is None else star) > 0
    return "identity" if identity_allowed else None


def negotiate(request: Request) -> str:
    encoding = choose_encoding(request.headers.get("accept-encoding"))
    if encoding is None:
        raise ClientError(
            f"identity is refused and none of {', '.join(SUPPORTED)} is accepted",
            status_code=406,
            headers={"Vary": "Accept-Encoding"},
        )
    return encoding


# --8<-- [end:negotiation]


# --8<-- [start:compressors]
class Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...  # may keep some input buffered
    def flush(self) -> bytes: ...  # everything so far can now be decompressed
    def finish(self) -> bytes: ...  # the end of the stream


class Gzip:
    def __init__(self) -> None:
        # wbits=31: a gzip header and trailer around DEFLATE. Level 6 is gzip's default.
        self._z = zlib.compressobj(6, zlib.DEFLATED, 31)

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def flush(self) -> bytes:
        return self._z.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._z.flush(zlib.Z_FINISH)


# --8<-- [end:compressors]


# --8<-- [start:other_compressors]
class Brotli:
    def __init__(self) -> None:
        # Quality 11, the default, is for files compressed once; 5 suits live traffic.
        self._b = brotli.Compressor(quality=5)

    def compress(self, data: bytes) -> bytes:
        return self._b.process(data)

    def flush(self) -> bytes:
        return self._b.flush()

    def finish(self) -> bytes:
        return self._b.finish()


class Zstd:
    def __init__(self) -> None:
        self._z = zstandard.ZstdCompressor(level=3).compressobj()  # level 3 is zstd's default

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def flush(self) -> bytes:
        return self._z.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)

    def finish(self) -> bytes:
        return self._z.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)


COMPRESSORS: dict[str, type[Compressor]] = {"gzip": Gzip, "br": Brotli, "zstd": Zstd}


# --8<-- [end:other_compressors]

app = Sanic("recipe-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024  # compressed size, as received
app.config.MOTD = False

MAX_COUNT = 10_000


def count_argument(request: Request, default: int) -> int:
    value = request.args.get("count", str(default))
    if not re.fullmatch(r"[0-9]{1,9}", value) or not 1 <= int(value) <= MAX_COUNT:
        raise BadRequest(f"count must be an integer from 1 to {MAX_COUNT}")
    return int(value)


# --8<-- [start:buffered]
MIN_SIZE = 1024  # below this, compressing saves no round trip and still costs CPU


@app.get("/recipes")
async def list_recipes(request: Request) -> HTTPResponse:
    count = count_argument(request, default=10)
    encoding = negotiate(request)
    body = orjson.dumps([recipe(i) for i in range(1, count + 1)])
    headers = {"Vary": "Accept-Encoding"}  # even uncompressed: caches must key on it
    if encoding != "identity" and len(body) >= MIN_SIZE:
        compressor = COMPRESSORS[encoding]()
        # The three libraries release the GIL while they work: a thread keeps
        # the event loop free while a large body is compressed.
        body = await asyncio.to_thread(lambda: compressor.compress(body) + compressor.finish())
        headers["Content-Encoding"] = encoding
    return raw(body, content_type="application/json", headers=headers)


# --8<-- [end:buffered]


# --8<-- [start:stream]
BATCH = 100  # recipes per chunk: each chunk is flushed, so the client can decode it


@app.get("/recipes/stream")
async def stream_recipes(request: Request) -> None:
    count = count_argument(request, default=1000)
    encoding = negotiate(request)
    compressor = COMPRESSORS[encoding]() if encoding != "identity" else None
    headers = {"Vary": "Accept-Encoding"}
    if compressor:
        headers["Content-Encoding"] = encoding
    response = await request.respond(content_type="application/x-ndjson", headers=headers)
    for first in range(1, count + 1, BATCH):
        last = min(first + BATCH, count + 1)
        lines = b"".join(orjson.dumps(recipe(i)) + b"\n" for i in range(first, last))
        # send() waits while the client is slow to read: memory stays at one batch.
        await response.send(
            compressor.compress(lines) + compressor.flush() if compressor else lines
        )
    await response.send(compressor.finish() if compressor else b"", end_stream=True)


# --8<-- [end:stream]


# --8<-- [start:upload]
MAX_DECOMPRESSED = 1024 * 1024  # 1 MiB of JSON once decompressed


def gunzip(body: bytes) -> bytes:
    """Decompress at most MAX_DECOMPRESSED + 1 bytes: 64 KiB of gzip can hold 64 MiB."""
    stream = zlib.decompressobj(31)  # 31: expect a gzip header and trailer
    try:
        data = stream.decompress(body, MAX_DECOMPRESSED + 1)
    except zlib.error as error:
        raise BadRequest(f"corrupt gzip data: {error}") from None
    if len(data) > MAX_DECOMPRESSED:
        raise PayloadTooLarge(f"the body exceeds {MAX_DECOMPRESSED} bytes once decompressed")
    if not stream.eof:
        raise BadRequest("truncated gzip data")
    return data


@app.post("/recipes")
async def upload_recipes(request: Request) -> HTTPResponse:
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in {"gzip", "identity"}:
        raise ClientError(
            f"Content-Encoding {encoding!r} is not supported",
            status_code=415,
            headers={"Accept-Encoding": "gzip"},  # what RFC 9110 asks a 415 to say
        )
    data = gunzip(request.body) if encoding == "gzip" else request.body
    try:
        recipes = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"malformed JSON: {error}") from None
    if not isinstance(recipes, list):
        raise BadRequest("the body must be a JSON array of recipes")
    return json({"received": len(recipes), "decompressed_bytes": len(data)})


# --8<-- [end:upload]


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "ok"})


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
