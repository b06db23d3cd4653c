"""A Zipkin-compatible span receiver: what the tests run where a Zipkin server would be.

It speaks the part of Zipkin's v2 HTTP API that tracers use:
`POST /api/v2/spans` with a JSON list of spans, answered `202 Accepted`. Every
span is checked against the v2 model (hex ids of the right length, microsecond
timestamps, a service name, string tags) so that a tracer sending something a
real Zipkin would reject fails the test here too. `hang=True` makes it accept
connections and never answer: a collector that is up but stuck.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kit.process import LOOPBACK, wait_until

HEX16 = re.compile(r"[0-9a-f]{16}")
TRACE_ID = re.compile(r"[0-9a-f]{16}|[0-9a-f]{32}")
KINDS = {"CLIENT", "SERVER", "PRODUCER", "CONSUMER"}


def problems_with(span: dict) -> list[str]:
    """What a Zipkin v2 server would reject or misread in one span (empty when fine)."""
    found = []
    if not TRACE_ID.fullmatch(str(span.get("traceId", ""))):
        found.append(f"traceId {span.get('traceId')!r}")
    if not HEX16.fullmatch(str(span.get("id", ""))):
        found.append(f"id {span.get('id')!r}")
    if "parentId" in span and not HEX16.fullmatch(str(span["parentId"])):
        found.append(f"parentId {span['parentId']!r}")
    if span.get("kind") is not None and span["kind"] not in KINDS:
        found.append(f"kind {span['kind']!r}")
    for field in ("timestamp", "duration"):
        if not isinstance(span.get(field), int) or span[field] < 0:
            found.append(f"{field} {span.get(field)!r} is not microseconds")
    if not span.get("localEndpoint", {}).get("serviceName"):
        found.append("no localEndpoint.serviceName")
    if not all(isinstance(v, str) for v in span.get("tags", {}).values()):
        found.append(f"tags must be strings: {span.get('tags')}")
    return found


class ZipkinReceiver:
    def __init__(self, hang: bool = False) -> None:
        self.spans: list[dict] = []
        self.rejected: list[str] = []
        self.posts = 0
        self.hang = hang
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.posts += 1
                if receiver.hang:
                    receiver._release.wait(60)  # hold the request; never answer
                    return
                if self.path != "/api/v2/spans":
                    self.send_error(404)
                    return
                if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                    self.send_error(415)
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    spans = json.loads(body)
                except ValueError:
                    self.send_error(400, "not JSON")
                    return
                problems = [p for span in spans for p in problems_with(span)]
                if not isinstance(spans, list) or problems:
                    receiver.rejected += problems or ["not a list of spans"]
                    self.send_error(400, "; ".join(problems))
                    return
                receiver.spans += spans
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self.endpoint = f"http://{LOOPBACK}:{self.port}/api/v2/spans"

    def __enter__(self) -> ZipkinReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
        assert not self.rejected, f"spans a Zipkin server would reject: {self.rejected}"

    def wait_for(self, match: Callable[[dict], bool], count: int = 1) -> list[dict]:
        """All spans received, once `count` of them match (exporters send in batches)."""
        wait_until(
            lambda: sum(1 for span in self.spans if match(span)) >= count, 10, "spans at Zipkin"
        )
        return list(self.spans)


@pytest.fixture
def zipkin() -> Iterator[ZipkinReceiver]:
    """A Zipkin-compatible receiver on a free loopback port; fails the test on a bad span."""
    with ZipkinReceiver() as receiver:
        yield receiver
