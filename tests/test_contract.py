"""The example contract (DESIGN.md), checked for every service the same way.

A service is any example whose docstring lists `PORT` among its environment
variables: a new one is checked here without a line of test code. Each is started
with the run line of its docstring, then:

- `GET /health` answers 200 (a gRPC service: the standard health service, SERVING);
- hostile requests over raw sockets get a 4xx, never a 5xx, and the service keeps
  serving: a malformed request line, a bad and a negative Content-Length, a body
  longer than declared, a 20 KB header, binary garbage, malformed JSON on every
  route that reads a body (400, JSON), an oversized body on those routes (413,
  JSON), an unknown route (404, JSON) and a wrong method (405, JSON); an invalid
  gRPC argument is INVALID_ARGUMENT;
- a consumer (one that lists `TARGET`) whose upstream is not there answers 502 or
  504 with a JSON body;
- SIGTERM and SIGINT each stop it with exit code 0, a request in flight answered;
- a bad value of each variable its docstring lists stops it at start: exit code 2,
  one line on stderr per bad variable naming it, no traceback, nothing on stdout
  (every variable is given a bad value at once, one start per round of values:
  the pattern reports every problem, and process starts are this module's cost).

One instance of each service serves the checks that leave it running; the SIGTERM
check then ends that instance, and SIGINT gets a fresh one.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from kit import forkserver
from kit import grpc_stubs as kit_grpc_stubs
from kit.examples import RunningExample, assert_output_is_shown, command_for, run_program
from kit.process import (
    LOOPBACK,
    ROOT,
    STARTUP_TIMEOUT,
    STOP_TIMEOUT,
    free_port,
    free_udp_port,
)

EXAMPLES = ROOT / "examples"


# --- what each service is, read from its own file ---------------------------------


@dataclass(frozen=True)
class Service:
    example: str  # "protocols/http_producer.py"
    variables: dict[str, str]  # name -> its docstring entry
    body_routes: tuple[str, ...] = ()  # POST/PUT/PATCH paths
    get_routes: tuple[str, ...] = ()
    grpc_server: bool = False
    grpc_stubs: bool = False  # imports the stubs generated from recipe.proto
    tls: bool = False  # serves HTTPS (TLS_CERT)
    mtls: bool = False  # demands a client certificate (TLS_CA)
    consumer: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "consumer", "TARGET" in self.variables)

    def __str__(self) -> str:
        return self.example


VARIABLE = re.compile(r"^- `([A-Z][A-Z0-9_]*)`(?: and `([A-Z][A-Z0-9_]*)`)?:", re.M)
ROUTE_METHODS = {"get", "post", "put", "patch", "delete", "route"}


def environment(doc: str) -> dict[str, str]:
    """Each variable of the docstring's list, with the text of its entry."""
    found: dict[str, str] = {}
    matches = list(VARIABLE.finditer(doc))
    for match, after in zip(matches, [*matches[1:], None], strict=False):
        text = doc[match.end() : after.start() if after else len(doc)].split("\n\n")[0]
        for name in match.groups():
            if name:
                found[name] = text
    return found


def routes(tree: ast.Module) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(paths that accept a body, GET paths) of the `@app.<method>(path)` decorators."""
    body, get = [], []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            if not (
                isinstance(decorator, ast.Call)
                and isinstance(decorator.func, ast.Attribute)
                and isinstance(decorator.func.value, ast.Name)
                and decorator.func.value.id == "app"
                and decorator.func.attr in ROUTE_METHODS
                and decorator.args
                and isinstance(decorator.args[0], ast.Constant)
            ):
                continue
            path = decorator.args[0].value
            methods = {decorator.func.attr.upper()}
            for keyword in decorator.keywords:
                if keyword.arg == "methods":
                    methods = {m.upper() for m in ast.literal_eval(keyword.value)}
            if methods & {"POST", "PUT", "PATCH"}:
                body.append(path)
            if methods & {"GET"}:
                get.append(path)
    return tuple(body), tuple(get)


def discover() -> list[Service]:
    services = []
    for path in sorted(EXAMPLES.glob("*/*.py")):
        source = path.read_text()
        tree = ast.parse(source)
        variables = environment(ast.get_docstring(tree) or "")
        if "PORT" not in variables:
            continue
        body, get = routes(tree)
        services.append(
            Service(
                example=str(path.relative_to(EXAMPLES)),
                variables=variables,
                body_routes=body,
                get_routes=get,
                grpc_server="grpc.aio.server(" in source,
                grpc_stubs="import recipe_pb2" in source,
                tls="TLS_CERT" in variables,
                mtls="TLS_CA" in variables,
            )
        )
    return services


SERVICES = discover()
HTTP_SERVICES = [s for s in SERVICES if not s.grpc_server]
GRPC_SERVICES = [s for s in SERVICES if s.grpc_server]
CONSUMERS = [s for s in SERVICES if s.consumer]


def test_every_service_is_found() -> None:
    """Discovery itself: the sample services and one of each kind are among them."""
    names = {s.example for s in SERVICES}
    assert {"why_distributed/recipe_api.py", "why_distributed/web_api.py"} <= names
    assert GRPC_SERVICES
    assert CONSUMERS
    assert any(s.tls for s in SERVICES)
    assert "protocols/wire_bytes.py" not in names  # a one-shot program, not a service


# --- bad values, by variable ------------------------------------------------------

CHOICES = {
    "APP_ENV": ["prod"],
    "LOG_LEVEL": ["LOUD"],
    "LOG_FORMAT": ["xml"],
    "TELEMETRY": ["logs,tracing"],
    "ACCESS_LOG": ["maybe"],
    "PROPAGATE": ["maybe"],
}
URLS = {
    "TARGET": ["not-a-url"],
    "OTLP_TRACES_URL": ["127.0.0.1:4318", "http://127.0.0.1:4318"],  # not a URL; no /v1/traces
    "DATABASE_URL": ["not-a-url", "mysql://db.example/recipes"],
    "REDIS_URL": ["not-a-url", "http://127.0.0.1:6379"],
    "FETCH_ALLOW": ["not-a-host"],
}
ADDRESSES = {"LOG_UDP", "STATSD", "MEMCACHED"}  # host:port
FILES = {"TLS_CERT", "TLS_KEY", "TLS_CA", "TARGET_CA", "TLS_CLIENT_CERT", "TLS_CLIENT_KEY"}
FILES |= {"API_TOKEN_FILE", "DATABASE_PASSWORD_FILE", "FILES_DIR"}  # (a directory, for FILES_DIR)
SECRETS = {"API_TOKEN": ["short"]}  # too short to be a real token
NUMBER_DEFAULT = re.compile(r"\(default `-?\d+(\.\d+)?`")
COUNTS = ("WORKERS", "MAX_QUICK_EXITS", "MAX_MISSES")


def bad_values(name: str, entry: str) -> list[str]:
    if name == "HOST":
        return []  # any name or address: the bind itself is the check
    if name == "PORT":
        return ["abc", "99999"]
    if name in CHOICES:
        return CHOICES[name]
    if name in URLS:
        return URLS[name]
    if name in SECRETS:
        return SECRETS[name]
    if name in ADDRESSES:
        return ["not-an-address"]
    if name in FILES:
        return ["/nonexistent/contract.pem"]
    if NUMBER_DEFAULT.search(entry) or name.endswith(COUNTS):
        return ["abc", "-1"]  # a timeout, an interval, a count...
    raise AssertionError(
        f"no bad values known for {name} ({entry.strip()!r}): add them to tests/test_contract.py"
    )


def refusal_rounds(service: Service) -> list[dict[str, str]]:
    """Bad settings to start the service with, every variable bad at once: round k
    gives each variable its k-th bad value. The service must name each one."""
    values = {name: bad_values(name, entry) for name, entry in service.variables.items()}
    rounds = max((len(v) for v in values.values()), default=0)
    return [{name: v[k] for name, v in values.items() if k < len(v)} for k in range(rounds)]


REFUSALS = [
    pytest.param(service, env, id=f"{service}-{'-'.join(f'{k}={v}' for k, v in env.items())}")
    for service in SERVICES
    for env in refusal_rounds(service)
]


# --- what each service needs to start ---------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server and a client certificate, made by the page's own tls_certs.py."""
    directory = tmp_path_factory.mktemp("contract") / "certs"
    run_program("protocols/tls_certs.py", str(directory))
    return directory


def start_env(
    service: Service, request: pytest.FixtureRequest, *, live: bool = True
) -> dict[str, str]:
    # (live Redis: one per module, so a service started once serves several checks)
    """Valid values for whatever the service needs: certificates, databases, an
    upstream where nothing listens, collectors on ports nobody reads. With
    `live=False` the databases are addresses nobody listens on (never contacted)."""
    env: dict[str, str] = {}
    names = service.variables
    if names.keys() & FILES:
        certs: Path = request.getfixturevalue("certs")
        files = {
            "TLS_CERT": "server.pem",
            "TLS_KEY": "server.key",
            "TLS_CA": "ca.pem",
            "TARGET_CA": "ca.pem",
        }
        env |= {name: str(certs / file) for name, file in files.items() if name in names}
    if "DATABASE_URL" in names:
        env["DATABASE_URL"] = (
            request.getfixturevalue("postgres_server").url
            if live
            else f"postgresql://postgres@{LOOPBACK}:{free_port()}/postgres"
        )
    if "REDIS_URL" in names:
        env["REDIS_URL"] = (
            request.getfixturevalue("module_redis_server").url
            if live
            else f"redis://{LOOPBACK}:{free_port()}/0"
        )
    if "TARGET" in names:
        nowhere = free_port()  # nothing listens there: the upstream is down
        default = re.search(r"\(default `([a-z]+)://", names["TARGET"])
        scheme = default.group(1) if default else None
        if scheme == "https":
            env["TARGET"] = f"https://localhost:{nowhere}"
        elif scheme == "http":
            env["TARGET"] = f"http://{LOOPBACK}:{nowhere}"
        else:
            env["TARGET"] = f"{LOOPBACK}:{nowhere}"  # host:port, as gRPC takes it
    if "OTLP_TRACES_URL" in names:
        env["OTLP_TRACES_URL"] = f"http://{LOOPBACK}:{free_port()}/v1/traces"
    if "STATSD" in names:
        env["STATSD"] = f"{LOOPBACK}:{free_udp_port()}"
    if service.grpc_stubs:
        request.getfixturevalue("grpc_stubs")  # generated as its page says
    return env


@pytest.fixture(scope="session")
def grpc_stubs() -> None:
    """The gRPC stubs, generated by the page's own script (kit.grpc_stubs)."""
    kit_grpc_stubs.generate()


def client_context(service: Service, certs: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certs / "ca.pem")
    if service.mtls:
        context.load_cert_chain(certs / "client.pem", certs / "client.key")
    return context


@dataclass
class Started:
    service: Service
    running: RunningExample
    context: ssl.SSLContext | None

    @property
    def url(self) -> str:
        scheme, host = ("https", "localhost") if self.context else ("http", LOOPBACK)
        return f"{scheme}://{host}:{self.running.port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.context or True, timeout=10)

    def connect(self) -> socket.socket:
        sock = socket.create_connection((LOOPBACK, self.running.port), timeout=5)
        if self.context is None:
            return sock
        return self.context.wrap_socket(sock, server_hostname="localhost")

    def exchange(self, payload: bytes) -> bytes:
        """Raw bytes in (over TLS for an HTTPS service); all the answer until the close."""
        with self.connect() as sock:
            sock.sendall(payload)
            return read_all(sock)

    def healthy(self) -> bool:
        with self.client() as client:
            return client.get("/health").status_code == 200


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError, ssl.SSLError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def every_worker_answers(service: Service, url: str) -> Callable[[], bool]:
    """Ready means every worker serves: /health answers with as many pids as WORKERS.

    (A signal while workers are still starting is another matter: the scaling page
    says what Sanic's manager does then.)"""
    default = re.search(r"`(\d+)`[^`]*\(default\)|\(default `(\d+)`", service.variables["WORKERS"])
    assert default, f"no default WORKERS in the docstring of {service}"
    workers = int(default.group(1) or default.group(2))
    seen: set[int] = set()

    def ready() -> bool:
        for _ in range(8):  # a new connection each time: the kernel spreads them
            try:
                health = httpx.get(f"{url}/health", timeout=1)
            except httpx.TransportError:
                return False
            if health.status_code == 200:  # 503 "starting" names no pid
                seen.add(health.json()["pid"])
        return len(seen) >= workers

    return ready


def launch(
    start_example, request: pytest.FixtureRequest, service: Service, *, eager: bool = False
) -> Started:
    """Start the service with its run line, ready as its kind says it is. `eager`: do not
    wait for /health; the test asks it itself (see signal_after_the_first_200)."""
    env = start_env(service, request)
    context = client_context(service, request.getfixturevalue("certs")) if service.tls else None
    port: int | None = None
    if service.grpc_server:
        ready: object = "port"
    elif "WORKERS" in service.variables:
        port = free_port()
        ready = every_worker_answers(service, f"http://{LOOPBACK}:{port}")
    elif eager:
        ready = ""
    elif context is not None:
        port = free_port()
        url = f"https://localhost:{port}/health"

        def ready() -> bool:
            try:
                return httpx.get(url, verify=context, timeout=1).status_code == 200
            except httpx.TransportError:
                return False

    else:
        ready = "/health"
    return Started(
        service, start_example(service.example, env=env, ready=ready, port=port), context
    )


@pytest.fixture
def start(run_example, request: pytest.FixtureRequest) -> Callable[[Service], Started]:
    """A fresh start of a service, for this test alone, not waited for: the test asks
    /health itself, to catch the first 200 the moment it is sent."""
    return lambda service: launch(run_example, request, service, eager=True)


@pytest.fixture(scope="module")
def running(run_shared_example, request: pytest.FixtureRequest) -> Callable[[Service], Started]:
    """The service started once for the module: the checks that leave it serving share it
    (process starts are most of this module's time), and the SIGTERM check ends it."""
    started: dict[str, Started] = {}

    def get(service: Service) -> Started:
        if service.example not in started or not started[service.example].running.alive():
            started[service.example] = launch(run_shared_example, request, service)
        return started[service.example]

    return get


# --- HTTP: health and hostile requests ----------------------------------------------

H = b"Host: contract\r\n"


def status_lines(answer: bytes) -> list[int]:
    # Not anchored to a line: a response follows the previous body without a newline.
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d{3}) ", answer)]


def body_of(answer: bytes) -> dict:
    """The JSON body of the first response in a raw answer."""
    head, _, rest = answer.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?im)^content-length: *(\d+)", head).group(1))
    assert re.search(rb"(?im)^content-type: *application/json", head), head
    return json.loads(rest[:length])


def hostile_requests(service: Service) -> dict[str, bytes]:
    post_to = service.body_routes[0] if service.body_routes else "/health"
    post = f"POST {post_to} HTTP/1.1\r\n".encode() + H
    return {
        "malformed request line": b"GET\r\n\r\n",
        "binary garbage": bytes(range(256)) + b"\r\n\r\n",
        "bad Content-Length": post + b"Content-Length: abc\r\n\r\n",
        "negative Content-Length": post + b"Content-Length: -5\r\n\r\n",
        "body longer than declared": (
            post + b"Content-Type: application/json\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\n{\x00\x01 and more than two bytes"
        ),
        "20 KB header": b"GET /health HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 20_000 + b"\r\n\r\n",
        "header without a colon": b"GET /health HTTP/1.1\r\n" + H + b"no colon here\r\n\r\n",
        "bad chunked body": post + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    }


@pytest.mark.parametrize("service", HTTP_SERVICES, ids=str)
def test_health_and_hostile_requests(running, service: Service) -> None:
    started = running(service)
    assert started.healthy()
    for name, payload in hostile_requests(service).items():
        answer = started.exchange(payload)
        codes = status_lines(answer)
        if name == "binary garbage":  # not HTTP at all: a 400 or a closed connection
            assert all(400 <= code < 500 for code in codes), f"{name}: {answer[:200]!r}"
        else:
            assert codes, f"{name}: no answer"
            assert all(400 <= code < 500 for code in codes), f"{name}: {answer[:200]!r}"
        assert started.running.alive(), f"{name} took {service} down"

    unknown = started.exchange(
        b"GET /no/such/route HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n"
    )
    assert status_lines(unknown)[:1] == [404], unknown[:200]
    assert body_of(unknown)
    wrong = started.exchange(b"DELETE /health HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
    assert status_lines(wrong)[:1] == [405], wrong[:200]
    assert body_of(wrong)

    for path in service.body_routes:
        post = f"POST {path} HTTP/1.1\r\n".encode() + H + b"Content-Type: application/json\r\n"
        malformed = started.exchange(
            post + b'Content-Length: 9\r\nConnection: close\r\n\r\n{"name": '
        )
        assert status_lines(malformed)[:1] == [400], f"{path}: {malformed[:200]!r}"
        assert body_of(malformed)
        # Declared larger than any limit of the site (1 MiB at most): refused from
        # the headers alone, before the body is read.
        oversized = started.exchange(post + b'Content-Length: 67108864\r\n\r\n{"name": ')
        assert status_lines(oversized)[:1] == [413], f"{path}: {oversized[:200]!r}"
        assert body_of(oversized)
        assert started.running.alive()

    assert started.healthy(), f"{service} stopped serving after the hostile requests"


@pytest.mark.parametrize("service", CONSUMERS, ids=str)
def test_a_consumer_answers_502_or_504_when_its_upstream_is_down(running, service: Service) -> None:
    started = running(service)
    # /health and /live call no one: the first other route does
    calls_upstream = next(p for p in service.get_routes if p not in ("/health", "/live"))
    path = re.sub(r"<[^>]+>", "42", calls_upstream)
    with started.client() as client:
        response = client.get(path)
    assert response.status_code in (502, 504), response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()
    assert started.healthy()


# --- clean stops ---------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("service", HTTP_SERVICES, ids=str)
def test_a_signal_stops_it_after_the_request_in_flight(
    start, running, service: Service, sig
) -> None:
    """Two requests in one write: once the first is answered, the second has been read
    by the server (it parsed both from one buffer), so it is in flight when the signal
    arrives, and it must still be answered in full before exit code 0. SIGTERM ends the
    instance the other checks used (it has served hostile requests: it must still stop
    cleanly). SIGINT goes to a fresh start, the moment /health first answers 200: Sanic
    answers requests before its start-up is over, and under uvloop a signal that arrives
    then is lost (the service never stops), so /health must say 503 until then."""
    started = running(service) if sig == signal.SIGTERM else start(service)
    answer = signal_after_the_first_200(started, sig)
    code = exit_code(started.running)
    assert status_lines(answer) == [200, 200], answer
    assert code == 0, started.running.output()


def signal_after_the_first_200(started: Started, sig: int) -> bytes:
    """Send two GET /health in one write until the first is answered 200 (503 while the
    service starts), then the signal at once; return everything answered after it."""
    request = b"GET /health HTTP/1.1\r\n" + H + b"\r\n"
    pair = request + request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        try:
            with started.connect() as sock:
                sock.sendall(pair)
                answer = sock.recv(65536)
                if status_lines(answer)[:1] == [200]:
                    started.running.process.send_signal(sig)
                    return answer + read_all(sock)
                assert status_lines(answer)[:1] == [503], answer[:200]  # still starting
        except OSError:  # not listening yet
            time.sleep(0.002)
        assert started.running.alive(), started.running.output()
        assert time.monotonic() < deadline, f"{started.service} never answered 200"


def exit_code(running: RunningExample) -> int:
    """Wait for the exit a signal already asked for, without signalling again."""
    try:
        running.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        running.kill()
        pytest.fail(f"{running.example} did not stop within {STOP_TIMEOUT:g}s")
    return running.stop()  # it has exited: this only records it


# --- gRPC ----------------------------------------------------------------------------


@pytest.mark.parametrize("service", GRPC_SERVICES, ids=str)
def test_grpc_health_and_invalid_argument(running, service: Service) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    started = running(service)
    with grpc.insecure_channel(f"{LOOPBACK}:{started.running.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        for method in grpc_methods(service):
            # Bytes that are no valid message of any method: a client's mistake.
            call = channel.unary_unary(method)  # raw bytes in and out
            with pytest.raises(grpc.RpcError) as refused:
                call(b"\xff\xff\xff\xff", timeout=5)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == 1


def grpc_methods(service: Service) -> dict[str, bool]:
    """Every method of the services in the stubs beside the example: path -> streams."""
    import importlib

    folder = (EXAMPLES / service.example).parent
    if str(folder) not in sys.path:
        sys.path.append(str(folder))  # the stubs import each other as siblings
    methods = {}
    for stub in sorted(folder.glob("*_pb2.py")):
        module = importlib.import_module(stub.stem)
        for described in module.DESCRIPTOR.services_by_name.values():
            for method in described.methods:
                if not method.client_streaming:
                    methods[f"/{described.full_name}/{method.name}"] = method.server_streaming
    assert methods, f"no gRPC service in the stubs beside {service.example}"
    return methods


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("service", GRPC_SERVICES, ids=str)
def test_a_signal_stops_a_grpc_service_after_the_call_in_flight(
    start, running, service, sig
) -> None:
    """A server-streaming call that has sent its first message is in flight: after the
    signal it must still end with OK and every message, then the process exits with 0."""
    import grpc

    started = running(service) if sig == signal.SIGTERM else start(service)
    streaming = [path for path, streams in grpc_methods(service).items() if streams]
    with grpc.insecure_channel(f"{LOOPBACK}:{started.running.port}") as channel:
        stream = channel.unary_stream(streaming[0])(b"", timeout=15)  # an empty request
        received = [next(stream)]
        started.running.process.send_signal(sig)
        received += list(stream)
        status = stream.code()
    code = exit_code(started.running)
    assert status == grpc.StatusCode.OK
    assert len(received) > 1
    assert code == 0, started.running.output()


# --- settings refused at start ------------------------------------------------------


@pytest.mark.parametrize(("service", "bad"), REFUSALS)
def test_bad_settings_stop_it_at_start(
    service: Service, bad: dict[str, str], request: pytest.FixtureRequest
) -> None:
    """Exit 2 before serving, nothing on stdout, no traceback, and one line per bad
    variable naming it (the pattern prints every problem, so one start checks all)."""
    line_env, argv = command_for(service.example)
    good = start_env(service, request, live=False)
    try:  # forked from the kit's warm interpreter when it can be (kit.forkserver)
        result = forkserver.run(
            argv, env={**os.environ, **line_env, **good, **bad}, cwd=ROOT, timeout=20
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{service} started with {bad} instead of refusing it")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    named = [line.split(":")[1].strip() for line in result.stderr.splitlines()]
    assert all(line.startswith("configuration error: ") for line in result.stderr.splitlines())
    assert sorted(named) == sorted(bad), result.stderr  # each bad variable, once


def test_the_refusal_the_settings_page_shows() -> None:
    """The output shown on "The two sample services" page, from a real run."""
    line_env, argv = command_for("why_distributed/web_api.py")
    result = forkserver.run(
        argv,
        env={**os.environ, **line_env, "PORT": "99999", "TARGET": "not-a-url"},
        cwd=ROOT,
        timeout=20,
    )
    assert result.returncode == 2
    shown = ROOT / "snippets" / "why_distributed" / "settings_refused.out"
    assert_output_is_shown(result.stderr, shown)


def test_a_secret_setting_never_shows(request: pytest.FixtureRequest) -> None:
    """A password in a URL setting: not in the refusal line, not in repr()."""
    password = "hunter2-contract"  # noqa: S105 (a test value)
    line_env, argv = command_for("observability/health_service.py")
    result = subprocess.run(
        argv,
        cwd=ROOT,
        env={
            **os.environ,
            **line_env,
            "PORT": str(free_port()),
            "DATABASE_URL": f"postgresql://app:{password}@{LOOPBACK}:99999/db",
        },
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: DATABASE_URL: ")
    assert password not in result.stdout + result.stderr
