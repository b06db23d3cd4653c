"""recipe-api with configuration per environment and structured JSON logs.

It answers `GET /recipes/<id>` and `GET /health` like the recipe-api of
chapter 1, and logs every request as JSON lines with structlog: a level
checked against a threshold, and a request id bound to every line of a
request and returned in the `X-Request-Id` response header. Lines go to
stdout and, when `LOG_UDP` is set, one JSON record per UDP datagram to a log
collector (rsyslog in the tests, Logstash in the Node.js book). A collector
that is down never slows a request nor raises: failed sends are counted.

Settings are checked at start-up: a bad value (`APP_ENV=prod`, `LOG_LEVEL=LOUD`,
`LOG_UDP=not-an-address`, `PORT=abc`) stops the service with one line on
stderr naming the variable and what it accepts, and exit code 2, before it
opens its port. Bad input never takes it down: an unknown id answers 404, an
id outside 1..2**31-1 answers 400, an unknown route 404 and a wrong method
405, each with a JSON error body; no route accepts a body.

Run it:

    APP_ENV=development python examples/observability/logging_service.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `APP_ENV`: `development` (default), `staging` or `production`; picks the
  defaults below.
- `LOG_LEVEL`: `error`, `warning`, `info`, `verbose` or `debug`, in any case:
  lines below it are dropped (default: `debug` in development and staging,
  `info` in production). `verbose` (15, between info and debug, as in
  winston) is a level this service adds.
- `LOG_FORMAT`: `console` (readable, default in development) or `json`
  (default in staging and production) for stdout; UDP always gets JSON.
- `LOG_UDP`: `host:port` of the log collector, resolved once at start (default:
  none, stdout only).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import time
import uuid
from typing import Annotated, Any, ClassVar, Literal

import orjson
import structlog
from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest, NotFound
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

# --8<-- [start:levels]
# winston's levels on Python's scale (higher is more severe). One is added: VERBOSE.
VERBOSE = 15  # between INFO (20) and DEBUG (10), where winston puts it
logging.addLevelName(VERBOSE, "VERBOSE")  # stdlib loggers and handlers now print the name
LEVELS = {
    "error": logging.ERROR,  # 40, winston error
    "warning": logging.WARNING,  # 30, winston warn
    "info": logging.INFO,  # 20, winston info (and http: request lines are info here)
    "verbose": VERBOSE,  # 15, winston verbose
    "debug": logging.DEBUG,  # 10, winston debug (silly: not defined here)
}
Level = Annotated[
    Literal["error", "warning", "info", "verbose", "debug"],
    BeforeValidator(lambda value: value.lower() if isinstance(value, str) else value),
]
# --8<-- [end:levels]

# --8<-- [start:environments]
# Each environment is a complete set of defaults; a variable overrides one of them.
ENVIRONMENTS = {
    "development": {"log_level": "debug", "log_format": "console"},
    "staging": {"log_level": "debug", "log_format": "json"},
    "production": {"log_level": "info", "log_format": "json"},
}


class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, APP_ENV, LOG_*."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=1, le=65535)
    app_env: Literal["development", "staging", "production"] = "development"
    log_level: Level  # default: from APP_ENV
    log_format: Literal["console", "json"]  # default: from APP_ENV
    # host:port, resolved to (address, port); NoDecode: the text is not JSON.
    log_udp: Annotated[tuple[str, int] | None, NoDecode] = None

    @model_validator(mode="before")
    @classmethod
    def environment_defaults(cls, values: dict[str, Any]) -> dict[str, Any]:
        """APP_ENV's defaults, under the variables that are set (an unknown APP_ENV is
        reported on its own: the other settings get development's defaults meanwhile)."""
        defaults = ENVIRONMENTS.get(values.get("app_env"), ENVIRONMENTS["development"])
        return {**defaults, **values}

    # --8<-- [end:environments]
    # --8<-- [start:udp_setting]
    @field_validator("log_udp", mode="before")
    @classmethod
    def udp_address(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        if not value:
            return None
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError("expected host:port, such as 127.0.0.1:5140")
        try:  # resolve once, at start-up, rather than on every log line
            info = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_DGRAM)
        except socket.gaierror as error:
            raise ValueError(f"cannot resolve {host!r} ({error.strerror})") from None
        return info[0][4][0], int(port)
        # --8<-- [end:udp_setting]


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


# --8<-- [start:udp]
class UdpShipper:
    """A structlog processor: sends each record as one JSON datagram, then passes it on.

    The socket is non-blocking and nothing waits for an answer: a full buffer or
    a collector that is down (the kernel reports "connection refused" after an
    ICMP port unreachable) costs one counted, dropped record, never a delay.
    """

    PRIORITY: ClassVar[dict[str, int]] = {
        "debug": 7,
        "verbose": 7,  # syslog has nothing between info and debug
        "info": 6,
        "warning": 4,
        "error": 3,
    }  # syslog severities

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.connect(address)  # connected: the kernel reports refusals to us
        self.sent = 0
        self.failed = 0

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        # <PRI>tag: @cee:{json}: a syslog line whose message rsyslog's mmjsonparse reads.
        priority = 16 * 8 + self.PRIORITY.get(event.get("level", "info"), 6)  # local0
        datagram = b"<%d>recipe-api: @cee:" % priority + orjson.dumps(event, default=str)
        try:
            self.sock.send(datagram[:8192])  # stay well under the UDP size limit
            self.sent += 1
        except OSError:
            self.failed += 1
        return event


# --8<-- [end:udp]


# --8<-- [start:verbose]
def logger_class(threshold: int) -> type:
    """structlog's filtering logger for `threshold`, plus a `verbose` method."""
    # structlog knows only the standard levels: for VERBOSE, filter like INFO (which
    # drops debug and keeps info), and let the method below decide for verbose.
    base = structlog.make_filtering_bound_logger(
        logging.INFO if threshold == VERBOSE else threshold
    )

    class Logger(base):  # type: ignore[misc, valid-type]
        def verbose(self, event: str, **kw: Any) -> Any:
            if threshold > VERBOSE:
                return None  # below the threshold: nothing rendered, nothing sent
            return self._proxy_to_logger("verbose", event, **kw)

    return Logger


class Printer(structlog.PrintLogger):
    verbose = structlog.PrintLogger.msg  # the last step of a verbose line: print it


# --8<-- [end:verbose]


# --8<-- [start:logging]
def configure_logging(settings: Settings) -> UdpShipper | None:
    shipper = UdpShipper(settings.log_udp) if settings.log_udp else None

    def add_environment(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("env", settings.app_env)
        event.setdefault("service", "recipe-api")
        return event

    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=lambda obj, **kw: orjson.dumps(obj).decode())
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,  # request_id, method, path
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_environment,
            *([shipper] if shipper else []),
            renderer,
        ],
        # Below the threshold a call returns at once: nothing rendered, nothing sent.
        wrapper_class=logger_class(LEVELS[settings.log_level]),
        logger_factory=lambda *args: Printer(sys.stdout),
        cache_logger_on_first_use=True,
    )
    return shipper


# --8<-- [end:logging]

log = structlog.get_logger()

# --8<-- [start:request_id]
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
UNSAFE = re.compile(r"[^\x20-\x7e]")  # control characters, newlines, non-ASCII


def clean(value: str, limit: int = 200) -> str:
    """A client-supplied value made safe for a log line: printable and bounded."""
    value = UNSAFE.sub("?", value)
    return value if len(value) <= limit else value[:limit] + "..."


def request_id_for(request: Request) -> str:
    """The caller's X-Request-Id if it looks like an id, else a new one."""
    supplied = request.headers.get("x-request-id", "")
    return supplied if REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex


# --8<-- [end:request_id]

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
MAX_ID = 2**31 - 1

app = Sanic("recipe-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024
app.config.MOTD = False


# --8<-- [start:middleware]
@app.on_request
async def bind_request(request: Request) -> None:
    request.ctx.started = time.perf_counter()
    request.ctx.request_id = request_id_for(request)
    # contextvars: every line logged while serving this request carries these.
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(
        request_id=request.ctx.request_id,
        method=clean(request.method, 10),
        path=clean(request.path),
    )
    log.debug("request started", user_agent=clean(request.headers.get("user-agent", ""), 100))


@app.on_response
async def log_response(request: Request, response: HTTPResponse) -> None:
    response.headers["X-Request-Id"] = request.ctx.request_id
    elapsed_ms = round((time.perf_counter() - request.ctx.started) * 1000, 2)
    finished = log.warning if response.status >= 400 else log.info
    finished("request finished", status=response.status, duration_ms=elapsed_ms)
    structlog.contextvars.clear_contextvars()


# --8<-- [end:middleware]


@app.get("/recipes/<recipe_id:int>")
async def get_recipe(request: Request, recipe_id: int) -> HTTPResponse:
    if not 1 <= recipe_id <= MAX_ID:
        raise BadRequest(f"recipe id must be between 1 and {MAX_ID}")
    log.verbose("looking up recipe", recipe_id=recipe_id)
    recipe = RECIPES.get(recipe_id)
    if recipe is None:
        raise NotFound(f"no recipe with id {recipe_id}")
    return json({"producer_pid": os.getpid(), "recipe": recipe})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    shipper: UdpShipper | None = app.ctx.shipper
    udp = {"sent": shipper.sent, "failed": shipper.failed} if shipper else None
    return json({"status": "ok", "log_udp": udp})


# --8<-- [start:run]
def main() -> None:
    app.ctx.shipper = configure_logging(settings)
    log.info("starting", log_level=settings.log_level, log_udp=settings.log_udp)
    app.run(
        host=settings.host,
        port=settings.port,
        single_process=True,
        access_log=False,  # our own "request finished" line replaces it
        debug=False,
    )
    shipper = app.ctx.shipper
    log.info("stopped", udp_sent=shipper and shipper.sent, udp_failed=shipper and shipper.failed)


if __name__ == "__main__":
    main()
# --8<-- [end:run]
