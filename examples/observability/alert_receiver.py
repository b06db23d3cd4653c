"""A webhook receiver for Alertmanager: where a pager or a chat hook would be.

Alertmanager POSTs a JSON document (webhook format version 4) to
`POST /alerts` whenever a group of alerts fires or resolves. This service
checks the document, prints one line per alert, and keeps the last
`KEEP` alerts for `GET /alerts`, newest last.

Run it:

    python examples/observability/alert_receiver.py

Environment:

- `HOST`: address to bind (default `127.0.0.1`).
- `PORT`: port to listen on (default `5001`).
- `KEEP`: how many alerts `GET /alerts` remembers, 1 or more (default `100`).

A bad setting (`PORT=abc`, `KEEP=0`, `KEEP=many`) stops it at start with exit
code 2 and one line naming the variable and what it accepts.

Bad input never takes it down: a body that is not JSON answers 400, JSON
that is not an Alertmanager webhook 422 with the path of each field in error
(`alerts.0.status`), and neither changes anything; a body over 1 MiB on `POST /alerts`
(the route that accepts a body) answers 413, an unknown route 404 and a wrong
method 405, each with a JSON body. A refusal is also printed on stderr, since
Alertmanager does not retry a 4xx.
"""

from __future__ import annotations

import sys
from collections import deque
from datetime import datetime
from typing import Annotated, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.errorpages import JSONRenderer
from sanic.exceptions import BadRequest
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json


# --8<-- [start:settings]
class Settings(BaseSettings):
    """Read once at start from the environment: HOST, PORT, KEEP."""

    host: str = "127.0.0.1"
    port: int = Field(5001, ge=1, le=65535)
    keep: PositiveInt = 100


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


app = Sanic("alert-receiver", dumps=orjson.dumps, error_handler=ErrorHandler(base=JSONRenderer))
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.REQUEST_MAX_SIZE = 1024 * 1024  # Alertmanager batches; 1 MiB is plenty
app.config.MOTD = False


# --8<-- [start:alert]
# Alertmanager's webhook body (version 4), as documented. Every text and every list
# has a bound: one notification cannot make the receiver hold or print megabytes.
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Value = Annotated[str, StringConstraints(max_length=2000)]
Labels = Annotated[dict[Name, Value], Field(max_length=64)]


class Alert(BaseModel):
    model_config = ConfigDict(extra="ignore")  # a newer Alertmanager may add fields

    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Labels = {}
    startsAt: datetime
    endsAt: datetime | None = None  # "0001-01-01T00:00:00Z" while firing
    generatorURL: Value = ""
    fingerprint: Annotated[str, StringConstraints(max_length=64)] = ""

    @field_validator("labels")
    @classmethod
    def has_alertname(cls, labels: dict[str, str]) -> dict[str, str]:
        if "alertname" not in labels:
            raise ValueError("labels must include alertname")
        return labels


# --8<-- [end:alert]


# --8<-- [start:webhook]
class Webhook(BaseModel):
    model_config = ConfigDict(extra="ignore")

    # What the receiver reads is required; the rest is checked when present.
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    alerts: Annotated[list[Alert], Field(min_length=1, max_length=1000)]
    receiver: Value = ""
    groupKey: Value = ""
    truncatedAlerts: NonNegativeInt = 0
    groupLabels: Labels = {}
    commonLabels: Labels = {}
    commonAnnotations: Labels = {}
    externalURL: Value = ""


def problems(error: ValidationError, limit: int = 10) -> list[dict[str, str]]:
    """The first few problems, each with the path of the field: alerts.0.labels."""
    return [
        {
            "path": ".".join(str(part) for part in problem["loc"]) or "(body)",
            "message": problem["msg"],
        }
        for problem in error.errors(include_url=False)[:limit]
    ]


# --8<-- [end:webhook]


def printable(text: str, limit: int = 200) -> str:
    """Alert text comes from label values: keep each printed alert on one bounded line."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[:limit] + "..."


# --8<-- [start:routes]
@app.post("/alerts")
async def receive(request: Request) -> HTTPResponse:
    try:
        document = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not JSON") from None
    try:
        webhook = Webhook.model_validate(document)
    except ValidationError as error:
        found = problems(error)
        # Alertmanager does not retry a 4xx: say on stderr what was refused and why.
        print(f"REFUSED webhook: {printable(str(found))}", file=sys.stderr, flush=True)
        return json({"error": "not an Alertmanager webhook", "problems": found}, status=422)
    # Checked in full before anything is kept: a refused webhook changes nothing.
    for alert in webhook.alerts:
        labels = alert.labels
        others = " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
        summary = alert.annotations.get("summary", "")
        line = f"{alert.status.upper()} {labels['alertname']} {others}: {summary}"
        print(printable(line), flush=True)  # where a pager or chat message would go
        app.ctx.received.append(alert.model_dump(mode="json"))
    return json({"received": len(webhook.alerts)})


@app.get("/alerts")
async def list_alerts(request: Request) -> HTTPResponse:
    return json({"alerts": list(app.ctx.received)})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
    if not app.state.is_running:  # start-up not over: a SIGTERM now would be lost
        return json({"status": "starting"}, status=503)
    return json({"status": "ok"})


# --8<-- [end:routes]


def main() -> None:
    app.ctx.received = deque(maxlen=settings.keep)
    app.run(
        host=settings.host,
        port=settings.port,
        single_process=True,
        access_log=False,
        debug=False,
    )


if __name__ == "__main__":
    main()
