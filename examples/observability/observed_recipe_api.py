"""recipe-api with logs, metrics and traces, each one switched on or off by `TELEMETRY`.

The chapter's three signals in one service, so that their cost can be measured
one at a time and together (`./nox -s bench -- telemetry_cost`):

- logs: one structlog JSON line per request (request id, route, status,
  duration) on stdout or, when `LOG_UDP` is set, as one UDP datagram to a
  log collector;
- metrics: a latency histogram and a response counter by route template on
  `GET /metrics`, for Prometheus to scrape;
- traces: one OpenTelemetry server span per request, continuing the caller's
  W3C `traceparent` or B3 headers, batched and posted over OTLP/HTTP to
  `OTLP_TRACES_URL` by a background thread.

A signal that is off costs nothing: its middleware is not registered at all.

Run it:

    TELEMETRY=logs,metrics,traces python examples/observability/observed_recipe_api.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `TELEMETRY`: the signals to turn on, comma-separated, from `logs`, `metrics`
  and `traces`; `none` turns all off (default `logs,metrics,traces`).
- `LOG_UDP`: `host:port` of a log collector, which then gets the lines
  instead of stdout (default: none, stdout).
- `OTLP_TRACES_URL`: the collector's OTLP/HTTP traces endpoint, ending in
  `/v1/traces` (default `http://127.0.0.1:4318/v1/traces`).
- `TRACE_SAMPLE`: the share of new traces kept, from 0 to 1; a trace the
  caller started follows the caller's decision (default `1`, every trace).

A bad setting (`PORT=abc`, `TELEMETRY=logs,tracing`, `LOG_UDP=not-an-address`,
`TRACE_SAMPLE=all`) stops it at start with exit code 2 and one line naming the
variable and what it accepts. An unknown id or route answers 404 and a wrong
method 405, each with a JSON error body; no route accepts a body. A
collector that is down costs nothing: log datagrams are dropped and counted,
spans are dropped by the exporter's thread, never waited for by a request.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import re
import socket
import sys
import time
from collections.abc import Callable
from typing import Annotated, Literal

import orjson
import structlog
import tracing
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import NoDecode
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import NotFound
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json, raw

SERVICE = "recipe-api"
SIGNALS = ("logs", "metrics", "traces")
RECIPES = {42: {"id": 42, "name": "Chicken Tikka Masala", "steps": "Throw it in a pot..."}}
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

app = Sanic(SERVICE, dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


# --8<-- [start:settings]
class Settings(tracing.TraceSettings):
    """Read once at start from the environment: HOST, PORT, TELEMETRY, LOG_UDP..."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=1, le=65535)
    # NoDecode: both are plain text (`logs,metrics`, `host:port`), not JSON.
    telemetry: Annotated[frozenset[Literal["logs", "metrics", "traces"]], NoDecode] = frozenset(
        SIGNALS
    )
    log_udp: Annotated[tuple[str, int] | None, NoDecode] = None

    @field_validator("telemetry", mode="before")
    @classmethod
    def signals(cls, value: object) -> object:
        """`logs,metrics` -> {"logs", "metrics"}; `none` -> no signal at all."""
        if not isinstance(value, str):
            return value
        if value.strip() == "none":
            return frozenset()
        chosen = {name.strip() for name in value.split(",")}
        if not chosen <= set(SIGNALS):
            raise ValueError(f"use 'none' or a comma-separated list of {', '.join(SIGNALS)}")
        return chosen

    @field_validator("log_udp", mode="before")
    @classmethod
    def host_and_port(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if not value:
            return None
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError("expected host:port, such as 127.0.0.1:5140")
        return host, int(port)


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


# --8<-- [start:hooks]
# Each signal is a pair of plain functions; ONE request and ONE response
# middleware call those that are on, so three signals are one dispatch by
# Sanic per request and per response, not three.
OnRequest = Callable[[Request], None]
OnResponse = Callable[[Request, HTTPResponse], None]
REQUEST_HOOKS: list[OnRequest] = []
RESPONSE_HOOKS: list[OnResponse] = []


async def run_request_hooks(request: Request) -> None:
    for hook in REQUEST_HOOKS:
        hook(request)


async def run_response_hooks(request: Request, response: HTTPResponse) -> None:
    for hook in reversed(RESPONSE_HOOKS):  # the first signal on sees the request last
        hook(request, response)


# --8<-- [end:hooks]


# --8<-- [start:logs]
class LogLines:
    """Where structlog writes: ONE sink, the collector if `LOG_UDP` is set, else stdout.

    A UDP datagram per line is a system call per request. Lines for stdout are
    kept in memory and written together every `FLUSH_EVERY` seconds: one
    system call for hundreds of lines.
    """

    FLUSH_EVERY = 0.25

    def __init__(self, address: tuple[str, int] | None) -> None:
        self.sock = None
        self.pending: list[str] = []
        self.dropped = 0
        if address is not None:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.setblocking(False)  # a full buffer drops a line, never waits
            self.sock.connect(address)

    def msg(self, message: str) -> None:
        if self.sock is None:
            self.pending.append(message)
            return
        try:
            self.sock.send(message.encode()[:8192])
        except OSError:  # collector down (refused) or buffer full
            self.dropped += 1

    info = warning = msg

    def flush(self) -> None:
        if self.pending:
            lines, self.pending = self.pending, []
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()

    async def flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.FLUSH_EVERY)
            self.flush()


# --8<-- [end:logs]


# --8<-- [start:log_requests]
# Unique across processes (random prefix) and cheap (no system call per request).
ID_PREFIX = os.urandom(6).hex()
ID_COUNTER = itertools.count(1)


def use_logs(udp: tuple[str, int] | None) -> LogLines:
    lines = LogLines(udp)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=lambda o, **_: orjson.dumps(o).decode()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(20),  # info and above
        logger_factory=lambda *args: lines,
        cache_logger_on_first_use=True,
    )
    log = structlog.get_logger()

    def bind_request_id(request: Request) -> None:
        supplied = request.headers.get("x-request-id", "")
        request.ctx.request_id = (
            supplied if REQUEST_ID.fullmatch(supplied) else f"{ID_PREFIX}-{next(ID_COUNTER):x}"
        )
        request.ctx.log_started = time.perf_counter()

    def log_request(request: Request, response: HTTPResponse) -> None:
        response.headers["X-Request-Id"] = request.ctx.request_id
        (log.warning if response.status >= 400 else log.info)(
            "request finished",
            request_id=request.ctx.request_id,
            method=request.method,
            route=tracing.route_of(request),
            status=response.status,
            duration_ms=round((time.perf_counter() - request.ctx.log_started) * 1000, 2),
        )

    REQUEST_HOOKS.append(bind_request_id)
    RESPONSE_HOOKS.append(log_request)
    return lines


# --8<-- [end:log_requests]


# --8<-- [start:metrics]
def use_metrics() -> None:
    disable_created_metrics()
    duration = Histogram(
        "http_request_duration_seconds",
        "Time from the request's arrival to its response, by route template.",
        ["method", "route"],
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    )
    responses = Counter(
        "http_responses", "Responses sent, by route and status.", ["route", "status"]
    )

    def start_timer(request: Request) -> None:
        request.ctx.metrics_started = time.perf_counter()

    def record(request: Request, response: HTTPResponse) -> None:
        route = tracing.route_of(request)
        duration.labels(request.method, route).observe(
            time.perf_counter() - request.ctx.metrics_started
        )
        responses.labels(route, str(response.status)).inc()

    REQUEST_HOOKS.append(start_timer)
    RESPONSE_HOOKS.append(record)

    @app.get("/metrics")
    async def metrics(request: Request) -> HTTPResponse:
        return raw(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


# --8<-- [end:metrics]


# --8<-- [start:traces]
def use_traces(settings: tracing.TraceSettings) -> TracerProvider:
    """The chapter's tracing module (see the tracing page), as hooks instead of middleware."""
    provider = tracing.make_provider(SERVICE, settings)
    tracer = provider.get_tracer("distributed-python")
    REQUEST_HOOKS.append(functools.partial(tracing.start_server_span, tracer))
    RESPONSE_HOOKS.append(tracing.end_server_span)
    return provider


# --8<-- [end:traces]


@app.get("/recipes/<recipe_id:int>")
async def get_recipe(request: Request, recipe_id: int) -> HTTPResponse:
    recipe = RECIPES.get(recipe_id)
    if recipe is None:
        raise NotFound(f"no recipe with id {recipe_id}")
    return json({"producer_pid": os.getpid(), "recipe": recipe})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    lines: LogLines | None = app.ctx.lines
    return json(
        {
            "status": "ok",
            "telemetry": sorted(app.ctx.telemetry),
            "log_datagrams_dropped": lines.dropped if lines else None,
            "span_exports_failed": tracing.CountingExporter.failed,
        }
    )


# --8<-- [start:main]
def main() -> None:
    telemetry = settings.telemetry
    app.ctx.telemetry = telemetry
    app.ctx.lines = None
    provider: TracerProvider | None = None
    # Hook order: traces first, so the span covers the work of the other two.
    if "traces" in telemetry:
        provider = use_traces(settings)
    if "metrics" in telemetry:
        use_metrics()
    if "logs" in telemetry:
        app.ctx.lines = use_logs(settings.log_udp)
    if REQUEST_HOOKS:
        app.on_request(run_request_hooks)
        app.on_response(run_response_hooks)
    lines = app.ctx.lines
    if lines is not None and lines.sock is None:

        @app.before_server_start
        async def start_flushing(app: Sanic) -> None:
            app.add_task(lines.flush_forever(), name="log-flush")

        @app.after_server_stop
        async def flush_the_rest(app: Sanic) -> None:
            lines.flush()  # the task is cancelled at stop: the last lines are written here

    try:
        app.run(
            host=settings.host,
            port=settings.port,
            single_process=True,
            access_log=False,
            debug=False,
        )
    finally:
        if provider is not None:
            provider.shutdown()  # one last export of what is queued, bounded by its timeout


if __name__ == "__main__":
    main()
# --8<-- [end:main]
