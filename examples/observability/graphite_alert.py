"""Alert on Graphite data: ask graphite-web's render API, compare with a threshold.

The Node.js book's alerting tool, Cabot, polled Graphite and compared what it
read with a threshold. This is that check, as a one-shot program for cron or a
systemd timer: it asks graphite-web for `QUERY` over the last `WINDOW`
(`/render?target=...&from=-5min&format=json`), takes the last value of each
series returned, and prints one line per series:

- `OK`: every series at or under `ABOVE`; exit code 0;
- `FIRING`: at least one series over `ABOVE`; exit code 1;
- `UNKNOWN`: graphite-web did not answer, or the query found no data; exit
  code 3. A check that cannot run is not a passing check.

The default query is web-api's share of 5xx responses over the window, from
the counters statsd_service.py sends: both sums cover the whole window in one
bucket (`summarize` aligned to the start of the window), and their quotient is
the ratio.

Run it (with graphite-web on port 8080):

    python examples/observability/graphite_alert.py

Environment:

- `GRAPHITE_URL`: graphite-web's base URL (default `http://127.0.0.1:8080`).
- `QUERY`: a Graphite target expression (default: web-api's 5xx ratio).
- `WINDOW`: how far back to look, a Graphite interval such as `5min` or `1h`
  (default `5min`).
- `ABOVE`: the threshold; a value over it fires (default `0.05`).
- `CHECK_TIMEOUT`: seconds to wait for graphite-web (default `5`).

A bad setting (`WINDOW=5`, `ABOVE=lots`, `CHECK_TIMEOUT=0`) stops it with exit
code 2 and one line naming the variable and what it accepts.
"""

from __future__ import annotations

import math
import re
import sys
from typing import Annotated

import httpx
from pydantic import Field, HttpUrl, PositiveFloat, ValidationError
from pydantic_settings import BaseSettings

# --8<-- [start:settings]
ERRORS = "sumSeries(stats.counters.web-api.response.5*.count)"
RESPONSES = "sumSeries(stats.counters.web-api.response.*.count)"


def whole_window(target: str, window: str) -> str:
    """The sum of every point of the window, as one bucket starting at the window's start
    (twice as long as the window, so that the window's end never starts a second one)."""
    number, unit = re.fullmatch(r"(\d+)(\D+)", window).groups()
    return f'summarize({target},"{2 * int(number)}{unit}","sum",true)'


class Settings(BaseSettings):
    """Read once at start from the environment: GRAPHITE_URL, QUERY, WINDOW, ABOVE..."""

    graphite_url: HttpUrl = HttpUrl("http://127.0.0.1:8080")
    query: Annotated[str, Field(max_length=2000)] = ""  # "": the 5xx ratio
    window: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,3}(s|min|h|d)$")] = "5min"
    above: float = Field(0.05, allow_inf_nan=False)
    check_timeout: PositiveFloat = 5.0

    def target(self) -> str:
        if self.query:
            return self.query
        errors, responses = (whole_window(t, self.window) for t in (ERRORS, RESPONSES))
        return f'alias(divideSeries({errors},{responses}),"web-api 5xx ratio")'


# --8<-- [end:settings]


def load_settings() -> Settings:
    """The settings, or exit code 2 with one line per bad variable and no traceback."""
    try:
        return Settings()
    except ValidationError as error:
        for problem in error.errors():
            name = str(problem["loc"][0]).upper()
            print(f"configuration error: {name}: {problem['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


# --8<-- [start:check]
OK, FIRING, UNKNOWN = 0, 1, 3  # exit codes, as monitoring plugins use them


def latest(datapoints: list[list[float | None]]) -> float | None:
    """The last value that is not null: graphite-web leaves null where nothing was stored."""
    for value, _timestamp in reversed(datapoints):
        if value is not None and math.isfinite(value):
            return value
    return None


def check(settings: Settings) -> int:
    """Print one line per series (or one UNKNOWN line) and return the exit code."""
    params = {"target": settings.target(), "from": f"-{settings.window}", "format": "json"}
    try:
        answer = httpx.get(
            f"{str(settings.graphite_url).rstrip('/')}/render",
            params=params,
            timeout=settings.check_timeout,
        )
        answer.raise_for_status()
        series = {s["target"]: latest(s["datapoints"]) for s in answer.json()}
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
        print(f"UNKNOWN cannot read Graphite: {type(error).__name__}: {error}")
        return UNKNOWN
    values = {name: value for name, value in series.items() if value is not None}
    if not values:
        print(f"UNKNOWN no data in the last {settings.window}: {settings.target()}")
        return UNKNOWN
    for name, value in sorted(values.items()):
        state = "FIRING" if value > settings.above else "OK"
        print(f"{state} {name} = {value:g} (fires above {settings.above:g})")
    return FIRING if any(v > settings.above for v in values.values()) else OK


# --8<-- [end:check]


def main() -> None:
    raise SystemExit(check(load_settings()))


if __name__ == "__main__":
    main()
