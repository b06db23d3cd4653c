"""An OTLP/HTTP span receiver: what the tests run where a collector would be.

It speaks the part of OTLP over HTTP that trace exporters use: `POST /v1/traces`
with a protobuf `ExportTraceServiceRequest` (Content-Type
`application/x-protobuf`), answered `200` with an `ExportTraceServiceResponse`,
as the OpenTelemetry Collector, Jaeger v2 and Zipkin (with its OTLP ingestion)
answer. It decodes with the message classes of `opentelemetry-proto`, the ones
the exporter encodes with, and checks every span against the OTLP model (ids of
the right length and not all zeros, a kind, an end after the start, a
`service.name` on its resource), so that a tracer sending something a real
collector would reject fails the test here too. `hang=True` makes it accept
connections and never answer: a collector that is up but stuck.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from kit.process import LOOPBACK, wait_until

PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"


@dataclass
class Span:
    """One received span, decoded: hex ids, kind and status without their enum prefixes."""

    trace_id: str
    span_id: str
    parent_span_id: str | None  # None: a root span
    name: str
    kind: str  # SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER
    start: int  # nanoseconds since the epoch
    end: int
    status: str  # UNSET, OK, ERROR
    status_message: str
    attributes: dict[str, object] = field(default_factory=dict)
    resource: dict[str, object] = field(default_factory=dict)
    events: list[dict[str, object]] = field(default_factory=list)  # name and attributes

    @property
    def service(self) -> str:
        return str(self.resource.get("service.name", ""))


def plain(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [plain(v) for v in value.array_value.values]
    return None if kind is None else getattr(value, kind)


def attributes(pairs: object) -> dict[str, object]:
    return {pair.key: plain(pair.value) for pair in pairs}  # type: ignore[attr-defined]


def problems_with(span: ProtoSpan, resource: dict[str, object]) -> list[str]:
    """What a collector would reject or misread in one span (empty when fine)."""
    found = []
    if len(span.trace_id) != 16 or not any(span.trace_id):
        found.append(f"trace_id {span.trace_id.hex()!r}")
    if len(span.span_id) != 8 or not any(span.span_id):
        found.append(f"span_id {span.span_id.hex()!r}")
    if span.parent_span_id and len(span.parent_span_id) != 8:
        found.append(f"parent_span_id {span.parent_span_id.hex()!r}")
    if span.kind == ProtoSpan.SPAN_KIND_UNSPECIFIED:
        found.append(f"{span.name}: no kind")
    if not span.name:
        found.append("a span without a name")
    if not 0 < span.start_time_unix_nano <= span.end_time_unix_nano:
        found.append(
            f"{span.name}: start {span.start_time_unix_nano}, end {span.end_time_unix_nano}"
        )
    if not resource.get("service.name"):
        found.append(f"{span.name}: no service.name on its resource")
    return found


def decode(request: ExportTraceServiceRequest) -> tuple[list[Span], list[str]]:
    spans, problems = [], []
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                problems += problems_with(span, resource)
                spans.append(
                    Span(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        kind=ProtoSpan.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                        start=span.start_time_unix_nano,
                        end=span.end_time_unix_nano,
                        status=Status.StatusCode.Name(span.status.code).removeprefix(
                            "STATUS_CODE_"
                        ),
                        status_message=span.status.message,
                        attributes=attributes(span.attributes),
                        resource=resource,
                        events=[
                            {"name": event.name, **attributes(event.attributes)}
                            for event in span.events
                        ],
                    )
                )
    return spans, problems


class OtlpReceiver:
    def __init__(self, hang: bool = False) -> None:
        self.spans: list[Span] = []
        self.rejected: list[str] = []
        self.posts: list[float] = []  # time.monotonic() of each POST's arrival
        self.hang = hang
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.posts.append(time.monotonic())
                if receiver.hang:
                    receiver._release.wait(60)  # hold the request; never answer
                    return
                if self.path != PATH:
                    self.send_error(404)
                    return
                if self.headers.get("Content-Type", "").split(";")[0] != PROTOBUF:
                    self.send_error(415)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    spans, problems = decode(ExportTraceServiceRequest.FromString(body))
                except DecodeError:
                    spans, problems = [], ["not an ExportTraceServiceRequest"]
                if problems:
                    receiver.rejected += problems
                    self.send_error(400, "; ".join(problems))
                    return
                receiver.spans += spans
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", PROTOBUF)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self.endpoint = f"http://{LOOPBACK}:{self.port}{PATH}"

    def __enter__(self) -> OtlpReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
        assert not self.rejected, f"spans a collector would reject: {self.rejected}"

    def wait_for(self, match: Callable[[Span], bool], count: int = 1) -> list[Span]:
        """All spans received, once `count` of them match (exporters send in batches)."""
        wait_until(
            lambda: sum(1 for span in self.spans if match(span)) >= count,
            10,
            "spans at the OTLP receiver",
        )
        return list(self.spans)


@pytest.fixture
def span_receiver() -> Iterator[OtlpReceiver]:
    """An OTLP/HTTP receiver on a free loopback port; fails the test on a bad span."""
    with OtlpReceiver() as receiver:
        yield receiver
