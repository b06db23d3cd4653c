"""web-api with StatsD metrics: every measurement pushed over UDP to a StatsD daemon.

It answers `GET /` like chapter 1's web-api (it asks recipe-api at `TARGET`
for recipe 42) and sends, prefixed with `web-api.`:

- `request.<route>.<method>`: a timer per request, named by route template;
- `response.<status>`: a counter per response status;
- `outbound.recipe-api`: a timer around each call to recipe-api, and
  `outbound.recipe-api.failed` counting calls that failed;
- every `HEALTH_INTERVAL` seconds, gauges of the process: `process.rss_bytes`,
  `process.open_fds`, `process.loop_lag_ms` and `process.connections`.

The StatsD daemon adds them up and flushes them to Graphite (carbon) on its
own schedule; the service never waits for either.

Run it (with recipe-api on port 4000 and a StatsD daemon on UDP port 8125):

    TARGET=http://127.0.0.1:4000 python examples/observability/statsd_service.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `3000`).
- `TARGET`: base URL of recipe-api (default `http://127.0.0.1:4000`).
- `TARGET_TIMEOUT`: seconds to wait for recipe-api, per call (default `2`).
- `STATSD`: `host:port` of the StatsD daemon, resolved once at start (default
  `127.0.0.1:8125`).
- `HEALTH_INTERVAL`: seconds between process gauges, 0.1 to 3600 (default `10`).

A bad setting (`PORT=abc`, `TARGET=not-a-url`, `TARGET_TIMEOUT=-1`,
`STATSD=8125`, `HEALTH_INTERVAL=0`) stops it at start with exit code 2 and
one line naming the variable and what it accepts. A StatsD daemon that is
down costs nothing: UDP datagrams to nobody are dropped. When recipe-api
fails, web-api answers 502 with a JSON error at once; an unknown route
answers 404 and a wrong method 405, each with a JSON error body; no route
accepts a body.
Metric names never contain anything a client sent: routes are templates,
methods outside a fixed set are `other`.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
import time
from typing import Annotated

import httpx
import orjson
import psutil
import statsd
from pydantic import Field, HttpUrl, PositiveFloat, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

app = Sanic("web-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, TARGET..., STATSD, HEALTH_INTERVAL."""

    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    target: HttpUrl = HttpUrl("http://127.0.0.1:4000")
    target_timeout: PositiveFloat = 2.0
    # host:port, resolved to (address, port); NoDecode: the text is not JSON.
    statsd: Annotated[tuple[str, int], NoDecode] = ("127.0.0.1", 8125)
    health_interval: float = Field(10.0, ge=0.1, le=3600)

    @field_validator("statsd", mode="before")
    @classmethod
    def udp_address(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError("expected host:port, such as 127.0.0.1:8125")
        try:  # resolved once, here; each metric is then one sendto()
            info = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_DGRAM)
        except socket.gaierror as error:
            raise ValueError(f"cannot resolve {host!r} ({error.strerror})") from None
        return info[0][4][0], int(port)


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


# --8<-- [start:names]
UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def name_part(text: str) -> str:
    """One dot-free, ASCII piece of a metric name: StatsD's `.`, `:`, `|` and
    newlines would split or forge metrics, and Graphite makes a folder per dot."""
    return UNSAFE.sub("_", text).strip("_")[:64] or "root"


def route_name(request: Request) -> str:
    if request.route is None:  # any unknown path: one name, not one per path
        return "unmatched"
    return name_part(request.route.path)  # "/" -> "root", "recipes/<id:int>" -> "recipes_id_int"


def method_name(request: Request) -> str:
    return request.method if request.method in METHODS else "other"


# --8<-- [end:names]


# --8<-- [start:requests]
@app.on_request
async def start_timer(request: Request) -> None:
    request.ctx.started = time.perf_counter()


@app.on_response
async def send_request_metrics(request: Request, response: HTTPResponse) -> None:
    elapsed_ms = (time.perf_counter() - request.ctx.started) * 1000
    # One datagram for both: a pipeline joins them with newlines.
    with app.ctx.statsd.pipeline() as metrics:
        metrics.timing(f"request.{route_name(request)}.{method_name(request)}", elapsed_ms)
        metrics.incr(f"response.{response.status}")


# --8<-- [end:requests]


# --8<-- [start:outbound]
def bad_gateway(reason: str) -> HTTPResponse:
    return json({"error": "recipe-api unavailable", "reason": reason}, status=502)


@app.get("/")
async def index(request: Request) -> HTTPResponse:
    started = time.perf_counter()
    try:
        response = await app.ctx.recipes.get("/recipes/42")
        response.raise_for_status()
        producer_data = response.json()
    except httpx.TimeoutException:
        return failed_call(started, f"no answer within {settings.target_timeout:g}s")
    except httpx.HTTPStatusError as error:
        return failed_call(started, f"answered {error.response.status_code}")
    except httpx.TransportError as error:  # refused, reset, DNS...
        return failed_call(started, type(error).__name__)
    except ValueError:  # the body was not JSON
        return failed_call(started, "answered something that is not JSON")
    app.ctx.statsd.timing("outbound.recipe-api", (time.perf_counter() - started) * 1000)
    return json({"consumer_pid": os.getpid(), "producer_data": producer_data})


def failed_call(started: float, reason: str) -> HTTPResponse:
    with app.ctx.statsd.pipeline() as metrics:
        metrics.timing("outbound.recipe-api", (time.perf_counter() - started) * 1000)
        metrics.incr("outbound.recipe-api.failed")
    return bad_gateway(reason)


# --8<-- [end:outbound]


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "ok", "connections": app.ctx.connections})


# --8<-- [start:process]
@app.signal("http.lifecycle.begin")
async def connection_opened(conn_info: object) -> None:
    app.ctx.connections += 1


@app.signal("http.lifecycle.complete")
async def connection_closed(conn_info: object) -> None:
    app.ctx.connections -= 1


async def send_process_gauges(every: float) -> None:
    """Memory, file descriptors, event-loop lag and open connections, every `every` s."""
    loop = asyncio.get_running_loop()
    process = psutil.Process()
    while True:
        before = loop.time()
        await asyncio.sleep(every)
        lag_ms = max(0.0, loop.time() - before - every) * 1000  # how late the loop woke us
        with app.ctx.statsd.pipeline() as metrics:
            metrics.gauge("process.rss_bytes", process.memory_info().rss)
            metrics.gauge("process.open_fds", process.num_fds())
            metrics.gauge("process.loop_lag_ms", round(lag_ms, 3))
            metrics.gauge("process.connections", app.ctx.connections)


# --8<-- [end:process]


@app.before_server_start
async def start(app: Sanic) -> None:
    app.ctx.recipes = httpx.AsyncClient(
        base_url=str(settings.target), timeout=settings.target_timeout
    )
    app.add_task(send_process_gauges(settings.health_interval), name="process-gauges")


@app.after_server_stop
async def stop(app: Sanic) -> None:
    await app.ctx.recipes.aclose()
    app.ctx.statsd.close()


# --8<-- [start:main]
def main() -> None:
    host, port = settings.statsd  # an address already resolved: nothing to look up
    app.ctx.statsd = statsd.StatsClient(host, port, prefix="web-api")
    app.ctx.connections = 0
    app.run(
        host=settings.host,
        port=settings.port,
        single_process=True,
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
# --8<-- [end:main]
