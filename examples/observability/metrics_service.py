"""recipe-api with Prometheus metrics: `GET /metrics` in the Prometheus text format.

It answers `GET /recipes/<id>` and `GET /health` like the chapter 1 service,
and measures itself:

- `http_request_duration_seconds`: a histogram of request durations, labelled
  by method and by route *template* (`/recipes/<recipe_id:int>`), never by the
  raw path: any path that matches no route counts as `unmatched`, so a client
  cannot create new label values;
- `http_responses_total`: a counter of responses by route template and status;
- `http_requests_in_flight`: a gauge of requests being handled right now;
- `event_loop_lag_seconds`: a gauge of how late the event loop woke a task
  that asked to sleep `LAG_INTERVAL` seconds (a blocked loop shows up here);
- `process_*`: memory, CPU time and open file descriptors, from the client
  library's default process collector;
- `recipes_viewed_total`: a business metric, recipes viewed by cuisine, and
  `recipe_searches_total`, searches (`GET /recipes?cuisine=...`) by cuisine.
  The cuisine label takes its values from a fixed allow-list; any other
  cuisine, whether from a recipe or from a client's query, counts as `other`.

Run it:

    python examples/observability/metrics_service.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `4000`).
- `LAG_INTERVAL`: seconds between event-loop lag measurements (default `0.5`).

A bad setting (`PORT=abc`, `PORT=99999`, `LAG_INTERVAL=0`) stops it at start
with exit code 2 and one line naming the variable and what it accepts.

Bad input never takes it down: an unknown id answers 404, an unknown route
404 and a wrong method 405, each with a JSON error body, and each counted in
the metrics. The body limit (64 KiB, 413 on routes that accept a body) is
set explicitly as on every service of the site, though no route here reads
a body.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from pydantic import Field, PositiveFloat, ValidationError
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import NotFound
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json, raw


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, LAG_INTERVAL."""

    host: str = "127.0.0.1"
    port: int = Field(4000, ge=1, le=65535)
    lag_interval: PositiveFloat = 0.5


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

LAG_INTERVAL = settings.lag_interval

# Cuisines are free text written by whoever wrote the recipe: "Korean-Mexican" is data,
# not a label value (see CUISINES below).
RECIPES = {
    42: {"id": 42, "name": "Chicken Tikka Masala", "cuisine": "Indian"},
    43: {"id": 43, "name": "Pad Thai", "cuisine": "Thai"},
    44: {"id": 44, "name": "Margherita", "cuisine": "italian"},
    45: {"id": 45, "name": "Kimchi tacos", "cuisine": "Korean-Mexican"},
}

app = Sanic("recipe-api", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 64 * 1024  # larger bodies get 413
app.config.MOTD = False

# --8<-- [start:metrics]
disable_created_metrics()  # no *_created series: one fewer series per label set
# Module-level metrics register themselves in the default registry, next to
# the process collector (process_resident_memory_bytes, process_open_fds...).
REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival to its response, by route template.",
    ["method", "route"],
    # Bucket bounds in seconds: choose them around the latencies you care about.
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
RESPONSES = Counter(
    "http_responses", "Responses sent, by route template and status code.", ["route", "status"]
)
IN_FLIGHT = Gauge("http_requests_in_flight", "Requests being handled right now.")
LOOP_LAG = Gauge("event_loop_lag_seconds", "How late the event loop ran a timer, last measure.")
# --8<-- [end:metrics]

# --8<-- [start:business]
# The only values the cuisine label can take: a fixed list, plus "other".
CUISINES = ("chinese", "french", "indian", "italian", "japanese", "mexican", "thai")
RECIPES_VIEWED = Counter("recipes_viewed", "Recipes served, by cuisine.", ["cuisine"])
SEARCHES = Counter("recipe_searches", "Searches by cuisine (GET /recipes?cuisine=).", ["cuisine"])
for cuisine in (*CUISINES, "other"):  # every series exists from the start, at 0
    RECIPES_VIEWED.labels(cuisine)
    SEARCHES.labels(cuisine)


def cuisine_label(text: str) -> str:
    """A label value from free text: one of CUISINES, or "other" for anything else."""
    cuisine = text.strip().lower()
    return cuisine if cuisine in CUISINES else "other"


# --8<-- [end:business]


# --8<-- [start:middleware]
def route_label(request: Request) -> str:
    """The route template, never the raw path: label values must stay a small, fixed set."""
    if request.route is None:  # no route matched: one value for every unknown path
        return "unmatched"
    return "/" + request.route.path


@app.on_request
async def start_timer(request: Request) -> None:
    request.ctx.started = time.perf_counter()
    IN_FLIGHT.inc()


@app.on_response
async def record(request: Request, response: HTTPResponse) -> None:
    # Sanic runs this for error responses too (404, 405): every request is counted.
    elapsed = time.perf_counter() - request.ctx.started
    route = route_label(request)
    REQUEST_DURATION.labels(request.method, route).observe(elapsed)
    RESPONSES.labels(route, str(response.status)).inc()
    IN_FLIGHT.dec()


# --8<-- [end:middleware]


# --8<-- [start:lag]
async def measure_loop_lag() -> None:
    """Sleep LAG_INTERVAL, then record how much later than asked the loop woke us."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(LAG_INTERVAL)
        LOOP_LAG.set(max(0.0, loop.time() - before - LAG_INTERVAL))


@app.before_server_start
async def start_lag_probe(app: Sanic) -> None:
    app.add_task(measure_loop_lag(), name="loop-lag")


@app.before_server_stop
async def stop_lag_probe(app: Sanic) -> None:
    await app.cancel_task("loop-lag")


# --8<-- [end:lag]


# --8<-- [start:routes]
@app.get("/recipes/<recipe_id:int>")
async def get_recipe(request: Request, recipe_id: int) -> HTTPResponse:
    recipe = RECIPES.get(recipe_id)
    if recipe is None:
        raise NotFound(f"no recipe with id {recipe_id}")
    RECIPES_VIEWED.labels(cuisine_label(recipe["cuisine"])).inc()
    return json({"producer_pid": os.getpid(), "recipe": recipe})


@app.get("/recipes")
async def search_recipes(request: Request) -> HTTPResponse:
    wanted = request.args.get("cuisine", "")[:100]  # the client's text: never a label as is
    SEARCHES.labels(cuisine_label(wanted)).inc()
    found = [r for r in RECIPES.values() if r["cuisine"].lower() == wanted.strip().lower()]
    return json({"recipes": found})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "ok"})


@app.get("/metrics")
async def metrics(request: Request) -> HTTPResponse:
    # generate_latest reads counters in memory: fast, nothing to await.
    return raw(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


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
