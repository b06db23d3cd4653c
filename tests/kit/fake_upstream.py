"""A producer that misbehaves on demand, for testing the consumers that call it.

`fake_upstream()` starts one on a free loopback port (HTTPS with `tls=`) and
returns it; set what it does next with `.behave(...)`:

- answer: `status` and `body` (bytes, str, or anything JSON), after `delay` seconds;
- `never=True`: accept the request and never answer (until the test ends);
- `close=True`: close the connection without a word.

Every request it receives is recorded (`.requests`), and `.arrived` is set on the
first, so a test can act while a consumer waits on it.

`hung_server` is the same idea one layer down, for any protocol (a database, a
cache): a TCP port that accepts connections and never says a word.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kit.process import LOOPBACK


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Behaviour:
    status: int = 200
    body: bytes = b"{}"
    content_type: str = "application/json"
    delay: float = 0.0
    never: bool = False
    close: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeUpstream:
    server: ThreadingHTTPServer
    scheme: str = "http"
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        host = "localhost" if self.scheme == "https" else LOOPBACK  # certificates name localhost
        return f"{self.scheme}://{host}:{self.port}"

    def behave(
        self,
        status: int = 200,
        body: object = b"{}",
        *,
        delay: float = 0.0,
        never: bool = False,
        close: bool = False,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> FakeUpstream:
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, bytes):
            body = json.dumps(body).encode()
        self.behaviour = Behaviour(
            status, body, content_type, delay, never, close, dict(headers or {})
        )
        return self

    def stop(self) -> None:
        self.released.set()  # requests held by never=True end now
        self.server.shutdown()
        self.server.server_close()


def _handler(upstream: Callable[[], FakeUpstream]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            fake = upstream()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            fake.requests.append(Received(self.command, self.path, dict(self.headers), body))
            fake.arrived.set()
            plan = fake.behaviour
            if plan.delay:
                time.sleep(plan.delay)  # on this request's own thread
            if plan.never:
                fake.released.wait(60)
                self.close_connection = True
                return
            if plan.close:
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.send_response(plan.status)
            self.send_header("Content-Type", plan.content_type)
            self.send_header("Content-Length", str(len(plan.body)))
            for name, value in plan.headers.items():  # e.g. Retry-After
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(plan.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def start_fake_upstream(tls: ssl.SSLContext | None = None) -> FakeUpstream:
    holder: list[FakeUpstream] = []
    server = ThreadingHTTPServer((LOOPBACK, 0), _handler(lambda: holder[0]))
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    fake = FakeUpstream(server, "https" if tls else "http")
    holder.append(fake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return fake


@pytest.fixture
def fake_upstream() -> Iterator[Callable[..., FakeUpstream]]:
    """Start fake producers: `fake_upstream()` (HTTP) or `fake_upstream(tls=context)`."""
    started: list[FakeUpstream] = []

    def start(tls: ssl.SSLContext | None = None) -> FakeUpstream:
        started.append(start_fake_upstream(tls))
        return started[-1]

    yield start
    for fake in started:
        fake.stop()


@pytest.fixture
def hung_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers; yields its port."""
    listener = socket.create_server((LOOPBACK, 0))
    listener.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)  # keep it open, say nothing

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()
    for conn in held:
        conn.close()
