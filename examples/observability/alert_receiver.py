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
that is not an Alertmanager webhook answers 422 saying what is wrong, a body
over 1 MiB on `POST /alerts` (the route that accepts a body) answers 413, an
unknown route 404 and a wrong method 405, each with a JSON body.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Any

import orjson
from pydantic import Field, PositiveInt, ValidationError
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


# --8<-- [start:check]
class NotAWebhook(ValueError):
    pass


def check_webhook(document: Any) -> list[dict[str, Any]]:
    """The alerts of an Alertmanager webhook (version 4), or NotAWebhook saying why."""
    if not isinstance(document, dict):
        raise NotAWebhook("expected a JSON object")
    if document.get("version") != "4":
        raise NotAWebhook(f"unsupported webhook version {document.get('version')!r}")
    alerts = document.get("alerts")
    if not isinstance(alerts, list):
        raise NotAWebhook("'alerts' must be a list")
    checked = []
    for alert in alerts:
        if not isinstance(alert, dict):
            raise NotAWebhook("each alert must be an object")
        status, labels = alert.get("status"), alert.get("labels")
        annotations = alert.get("annotations", {})
        if status not in ("firing", "resolved"):
            raise NotAWebhook(f"alert status {status!r} is not firing or resolved")
        if not isinstance(labels, dict) or not isinstance(labels.get("alertname"), str):
            raise NotAWebhook("each alert needs labels with an alertname")
        if not isinstance(annotations, dict):
            raise NotAWebhook("annotations must be an object")
        checked.append(
            {
                "status": status,
                "labels": {str(k): str(v) for k, v in labels.items()},
                "summary": str(annotations.get("summary", "")),
                "startsAt": str(alert.get("startsAt", "")),
                "endsAt": str(alert.get("endsAt", "")),
            }
        )
    return checked


# --8<-- [end:check]


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
        alerts = check_webhook(document)
    except NotAWebhook as error:
        return json({"error": "not an Alertmanager webhook", "reason": str(error)}, status=422)
    for alert in alerts:
        labels = alert["labels"]
        others = " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
        line = f"{alert['status'].upper()} {labels['alertname']} {others}: {alert['summary']}"
        print(printable(line), flush=True)  # where a pager or chat message would go
        app.ctx.received.append(alert)
    return json({"received": len(alerts)})


@app.get("/alerts")
async def list_alerts(request: Request) -> HTTPResponse:
    return json({"alerts": list(app.ctx.received)})


@app.get("/health")
async def health(request: Request) -> HTTPResponse:
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
