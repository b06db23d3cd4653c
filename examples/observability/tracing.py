"""Distributed tracing for the chapter's services: OpenTelemetry, exported over OTLP/HTTP.

Not a program: `traced_recipe_api.py`, `traced_web_api.py` and
`observed_recipe_api.py` import it (`import tracing`, from the same folder).
It gives a Sanic app one server span per request, continues the caller's
trace from W3C `traceparent` or B3 headers, passes the trace on in both
formats on outgoing httpx calls, and exports finished spans over OTLP/HTTP
(protobuf) from a background thread, to an OpenTelemetry Collector, Jaeger or
Zipkin: all three take OTLP.

Environment (the fields of `TraceSettings`, which each traced service's own
`Settings` class extends, so they are checked with its other settings):

- `OTLP_TRACES_URL`: the OTLP/HTTP traces endpoint, an http(s) URL ending in
  `/v1/traces` (default `http://127.0.0.1:4318/v1/traces`, where a collector
  listens).
- `TRACE_SAMPLE`: the share of new traces kept, from 0 to 1; a trace the
  caller started follows the caller's decision (default `1`, every trace).

A bad value stops the service that imports it at start with exit code 2 and
one line naming the variable.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence

import httpx
from opentelemetry import context, propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.propagators.b3 import B3MultiFormat
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic import Field, HttpUrl, field_validator
from pydantic_settings import BaseSettings
from sanic import Request, Sanic
from sanic.response import HTTPResponse


# --8<-- [start:settings]
class TraceSettings(BaseSettings):
    """OTLP_TRACES_URL and TRACE_SAMPLE: a traced service's Settings class extends this
    one, so a bad value stops it at start like any of its settings (exit code 2, one line)."""

    otlp_traces_url: HttpUrl = HttpUrl("http://127.0.0.1:4318/v1/traces")
    trace_sample: float = Field(1.0, ge=0, le=1)  # the share of new traces kept

    @field_validator("otlp_traces_url")
    @classmethod
    def traces_path(cls, url: HttpUrl) -> HttpUrl:
        # The exporter posts to this URL as it is: it appends no /v1/traces of its own.
        if not (url.path or "").endswith("/v1/traces"):
            raise ValueError("the OTLP/HTTP traces endpoint, ending in /v1/traces")
        return url


# --8<-- [end:settings]


# Read a caller's trace from either format; write both on outgoing calls, so that
# a downstream service understands us whichever one it reads.
PROPAGATOR = CompositePropagator([TraceContextTextMapPropagator(), B3MultiFormat()])


# --8<-- [start:exporter]
STOP_GRACE = 2.0  # seconds the spans still queued get to leave when the service stops


class CountingExporter(OTLPSpanExporter):
    """The OTLP exporter, with a count of failed exports (for /health), and one deadline
    for starting exports once the service is stopping."""

    failed = 0

    def __init__(self, endpoint: str, timeout: float) -> None:
        super().__init__(endpoint=endpoint, timeout=timeout)
        self.give_up_at = math.inf  # set by StoppingBatchSpanProcessor.shutdown

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if time.monotonic() >= self.give_up_at:  # stopping, out of time: drop, do not post
            result = SpanExportResult.FAILURE
        else:  # the exporter retries and logs by itself; it returns FAILURE, never raises
            result = super().export(spans)
        if result is SpanExportResult.FAILURE:
            CountingExporter.failed += 1
        return result


class StoppingBatchSpanProcessor(BatchSpanProcessor):
    """On shutdown the SDK posts every queued batch, each allowed the exporter's full
    timeout, for up to 30 s: behind a stuck collector, that holds the exit for as many
    timeouts as there are batches queued. Here no export starts after STOP_GRACE."""

    def shutdown(self) -> None:
        self.span_exporter.give_up_at = time.monotonic() + STOP_GRACE
        super().shutdown()


# --8<-- [end:exporter]


# --8<-- [start:provider]
def make_provider(service: str, settings: TraceSettings) -> TracerProvider:
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        # Follow the caller's decision; a trace that starts here is kept with probability
        # `sample`. A span not kept is a no-op object: no attributes, no export.
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample)),
    )
    # A background thread batches finished spans and posts them every few seconds
    # (OTEL_BSP_SCHEDULE_DELAY, 5000 ms by default): a request never waits on the collector.
    exporter = CountingExporter(endpoint=str(settings.otlp_traces_url), timeout=2)
    provider.add_span_processor(StoppingBatchSpanProcessor(exporter))
    propagate.set_global_textmap(PROPAGATOR)  # what instrumented httpx clients inject
    return provider


# --8<-- [end:provider]


# --8<-- [start:spans]
def route_of(request: Request) -> str:
    """The route template, never the raw path: span names stay a small, fixed set."""
    return "unmatched" if request.route is None else "/" + request.route.path


def start_server_span(tracer: trace.Tracer, request: Request) -> None:
    parent = PROPAGATOR.extract(request.headers)  # the caller's trace, or a new one
    span = tracer.start_span(
        f"{request.method} {route_of(request)}", context=parent, kind=SpanKind.SERVER
    )
    request.ctx.span = span
    # The current span for everything this request does, outgoing calls included.
    request.ctx.span_token = context.attach(trace.set_span_in_context(span))


def end_server_span(request: Request, response: HTTPResponse) -> None:
    span = request.ctx.span
    if span.is_recording():  # sampled out: skip the attribute work
        span.set_attribute("http.request.method", request.method)
        span.set_attribute("http.route", route_of(request))
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 500:  # a 4xx is the caller's error, not this span's
            span.set_attribute("error.type", str(response.status))
            span.set_status(Status(StatusCode.ERROR))
    span.end()
    context.detach(request.ctx.span_token)


# --8<-- [end:spans]


# --8<-- [start:instrument]
def instrument(app: Sanic, provider: TracerProvider) -> None:
    """Server spans for every request the app answers, errors (404, 500...) included."""
    tracer = provider.get_tracer("distributed-python")

    @app.on_request
    async def trace_request(request: Request) -> None:
        start_server_span(tracer, request)

    @app.on_response  # Sanic runs it for error responses too
    async def trace_response(request: Request, response: HTTPResponse) -> None:
        end_server_span(request, response)

    @app.after_server_stop
    async def flush_spans(app: Sanic) -> None:
        # The spans still queued go out now, within STOP_GRACE (in a thread: it blocks).
        await asyncio.to_thread(provider.shutdown)


def instrument_client(client: httpx.AsyncClient, provider: TracerProvider) -> None:
    """A client span per outgoing call, and the trace headers injected into it."""
    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)


# --8<-- [end:instrument]
