"""HAProxy: every claim of docs/scaling/haproxy.md, with a real HAProxy and real backends.

Each test starts HAProxy with one of the page's cfg files (checked first with
`haproxy -c`) and the backends it balances: recipe-api from chapter 1, or
slow_service.py where a slow endpoint is needed.
"""

from __future__ import annotations

import gzip
import os
import re
import shlex
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from kit import sysdeps
from kit.examples import RunningExample, assert_output_is_shown
from kit.fake_upstream import FakeUpstream
from kit.process import LOOPBACK, ROOT, Process, free_port, port_open, wait_until
from kit.snippets import run_script

RECIPE_API = "why_distributed/recipe_api.py"
SLOW = "scaling/slow_service.py"
CERTS = "protocols/tls_certs.py"
SNIPPETS = "snippets/scaling"
LB = f"{SNIPPETS}/haproxy_lb.cfg"
COMPRESSION = f"{SNIPPETS}/haproxy_compression.cfg"
TLS = f"{SNIPPETS}/haproxy_tls.cfg"
BACKPRESSURE = f"{SNIPPETS}/haproxy_backpressure.cfg"
RATELIMIT = f"{SNIPPETS}/haproxy_ratelimit.cfg"
PAGE = ROOT / "docs/scaling/haproxy.md"
EDGE_PAGE = ROOT / "docs/scaling/haproxy_edge.md"  # compression, TLS, back pressure, rate limits
PATH = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # `python` is ours
BOUND = 30.0  # seconds: a generous bound for a state to be reached, never a threshold


def eventually(check: Callable[[], bool], what: str) -> None:
    wait_until(check, BOUND, what)


def recipe_pid(client: httpx.Client) -> int:
    answer = client.get("/recipes/42")
    assert answer.status_code == 200, answer.text
    return answer.json()["producer_pid"]


def answers_health(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


# --- load balancing and the stats page --------------------------------------


@pytest.fixture
def balanced(run_example, haproxy) -> tuple[Any, list[RunningExample]]:
    backends = [run_example(RECIPE_API) for _ in range(3)]
    env = {f"BACKEND{i}_PORT": str(b.port) for i, b in enumerate(backends, start=1)}
    proxy = haproxy(LB, env)
    eventually(lambda: all(proxy.server("recipe_api", f"recipe{i}")["status"] == "UP"
                           for i in (1, 2, 3)), "all three servers UP")  # fmt: skip
    return proxy, backends


def test_requests_are_spread_over_every_backend(balanced) -> None:
    proxy, backends = balanced
    with httpx.Client(base_url=proxy.url) as client:
        pids = [recipe_pid(client) for _ in range(9)]
    assert set(pids) == {b.pid for b in backends}
    # round robin: each of the three answered every third request
    assert pids[:3] * 3 == pids


def test_stats_page_as_csv(balanced) -> None:
    proxy, _ = balanced
    with httpx.Client(base_url=proxy.url) as client:
        for _ in range(6):
            recipe_pid(client)
    rows = proxy.stats()
    names = {(r["pxname"], r["svname"]) for r in rows}
    assert {("recipes", "FRONTEND"), ("recipe_api", "BACKEND")} <= names
    servers = [r for r in rows if r["pxname"] == "recipe_api" and r["svname"] != "BACKEND"]
    assert [s["svname"] for s in servers] == ["recipe1", "recipe2", "recipe3"]
    for server in servers:
        assert server["status"] == "UP"
        # the last health check got its 200 ("* " while the next one is under way)
        assert server["check_status"].removeprefix("* ") == "L7OK"
        assert int(server["stot"]) == 2  # six requests, two per server
        assert int(server["scur"]) == 0  # none in progress now
    backend = next(r for r in rows if r["svname"] == "BACKEND")
    assert int(backend["stot"]) == 6


def test_a_killed_backend_goes_down_and_requests_keep_succeeding(balanced) -> None:
    proxy, backends = balanced
    victim = backends[1]
    victim.stop(signal.SIGKILL)
    eventually(lambda: proxy.server("recipe_api", "recipe2")["status"] == "DOWN", "recipe2 DOWN")
    with httpx.Client(base_url=proxy.url) as client:
        pids = {recipe_pid(client) for _ in range(6)}
    assert pids == {backends[0].pid, backends[2].pid}


def test_a_restarted_backend_rejoins(balanced, run_example) -> None:
    proxy, backends = balanced
    victim = backends[1]
    victim.stop(signal.SIGKILL)
    eventually(lambda: proxy.server("recipe_api", "recipe2")["status"] == "DOWN", "recipe2 DOWN")
    # On the same port as before: HAProxy knows servers by address.
    reborn = run_example(RECIPE_API, env={"PORT": str(victim.port)}, ready="")
    eventually(lambda: answers_health(victim.url), "the new recipe-api answering")
    eventually(lambda: proxy.server("recipe_api", "recipe2")["status"] == "UP", "recipe2 UP")
    with httpx.Client(base_url=proxy.url) as client:
        pids = {recipe_pid(client) for _ in range(6)}
    assert pids == {backends[0].pid, reborn.pid, backends[2].pid}


def test_no_request_fails_while_a_backend_is_killed(balanced) -> None:
    """A steady stream of sequential requests; one backend dies in the middle of it."""
    proxy, backends = balanced
    statuses: list[int] = []
    errors: list[str] = []
    killed = threading.Event()

    def stream() -> None:
        with httpx.Client(base_url=proxy.url, timeout=10) as client:
            # before, during and after: until the victim is out of rotation, then 100 more
            after_down = 0
            while after_down < 100 and len(statuses) < 5000:
                try:
                    statuses.append(client.get("/recipes/42").status_code)
                except httpx.HTTPError as error:
                    errors.append(repr(error))
                if len(statuses) == 100:
                    killed.set()
                if killed.is_set() and down.is_set():
                    after_down += 1

    down = threading.Event()
    worker = threading.Thread(target=stream)
    worker.start()
    assert killed.wait(BOUND)
    backends[1].stop(signal.SIGKILL)
    eventually(lambda: proxy.server("recipe_api", "recipe2")["status"] == "DOWN", "recipe2 DOWN")
    down.set()
    worker.join(BOUND)
    assert not worker.is_alive()
    assert errors == []
    assert len(statuses) >= 200
    assert set(statuses) == {200}  # zero failed requests
    # HAProxy did see failures, and hid them: its retries and redispatches
    # HAProxy did meet the dead server, and hid it: requests moved to another one
    backend = next(r for r in proxy.stats() if r["svname"] == "BACKEND")
    assert int(backend["wredis"]) + int(backend["wretr"]) >= 1


# --- the proxy as a shield --------------------------------------------------

WELL_FORMED = b"GET /recipes/42 HTTP/1.1\r\nHost: recipes\r\nConnection: close\r\n\r\n"
MALFORMED = {
    "a space in a header name": b"Bad Header: 1",
    "a control character in a header name": b"Bad\x01Header: 1",
    "a header line without a colon": b"JustAName",
    "two different Content-Length headers": b"Content-Length: 0\r\nContent-Length: 2",
}


def malformed(header_lines: bytes) -> bytes:
    return WELL_FORMED.replace(b"Connection:", header_lines + b"\r\nConnection:")


def read_answer(connection: socket.socket) -> bytes:
    """One HTTP answer: its head, then Content-Length bytes of body; the connection may stay."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = connection.recv(65536)
        assert chunk, f"connection closed mid-answer: {answer!r}"
        answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    while length and len(body) < int(length[1]):
        body += connection.recv(65536)
    return head + b"\r\n\r\n" + body


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes over a plain socket (no client library to tidy them up)."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as connection:
        connection.sendall(request)
        return read_answer(connection)


def forwarded(fakes: list[FakeUpstream]) -> list[str]:
    """The paths of the requests the services received, health checks aside."""
    return [r.path for fake in fakes for r in fake.requests if r.path != "/health"]


@pytest.fixture
def shielded(fake_upstream, haproxy) -> tuple[Any, list[FakeUpstream]]:
    """haproxy_lb.cfg in front of three recording backends, each one counting requests."""
    fakes = [fake_upstream() for _ in range(3)]
    env = {f"BACKEND{i}_PORT": str(fake.port) for i, fake in enumerate(fakes, start=1)}
    proxy = haproxy(LB, env)
    eventually(lambda: all(proxy.server("recipe_api", f"recipe{i}")["status"] == "UP"
                           for i in (1, 2, 3)), "all three servers UP")  # fmt: skip
    return proxy, fakes


def test_a_malformed_request_gets_400_from_haproxy_and_never_reaches_a_service(
    shielded,
) -> None:
    proxy, fakes = shielded
    # control: a well-formed request on a raw socket goes through
    assert raw_exchange(proxy.port, WELL_FORMED).startswith(b"HTTP/1.1 200 ")
    assert forwarded(fakes) == ["/recipes/42"]
    for name, header_lines in MALFORMED.items():
        answer = raw_exchange(proxy.port, malformed(header_lines))
        assert answer.startswith(b"HTTP/1.1 400 "), name
        assert b"<h1>400 Bad request</h1>" in answer, name  # HAProxy's own page
        assert b"\r\nConnection: close\r\n" in answer, name
        assert forwarded(fakes) == ["/recipes/42"], name  # no service saw it
    assert raw_exchange(proxy.port, WELL_FORMED).startswith(b"HTTP/1.1 200 ")
    assert forwarded(fakes) == ["/recipes/42"] * 2


def test_without_the_proxy_a_lenient_server_takes_the_same_requests(fake_upstream) -> None:
    """Negative control: the recording backend would see (and serve) every one of them."""
    fake = fake_upstream()
    for name, header_lines in MALFORMED.items():
        before = len(fake.requests)
        answer = raw_exchange(fake.port, malformed(header_lines))
        assert answer.startswith(b"HTTP/1.1 200 "), name  # Python's http.server shrugs
        assert len(fake.requests) == before + 1, name
        if name != "two different Content-Length headers":
            # it read the bad line as the end of the head: the headers after it are lost
            assert "Connection" not in fake.requests[-1].headers, name


def test_the_client_sees_only_the_proxy_address(shielded) -> None:
    proxy, fakes = shielded
    with socket.create_connection((LOOPBACK, proxy.port), timeout=10) as connection:
        assert connection.getpeername() == (LOOPBACK, proxy.port)
        connection.sendall(WELL_FORMED)
        answer = read_answer(connection)
    assert answer.startswith(b"HTTP/1.1 200 ")
    for fake in fakes:  # no service address or port in anything the client got
        assert str(fake.port).encode() not in answer
    # what a service says about itself does pass through
    assert re.search(rb"(?im)^server: BaseHTTP/0\.6 Python/3\.\d+", answer)
    assert forwarded(fakes) == ["/recipes/42"]


# --- compression offload ----------------------------------------------------


@pytest.fixture
def compressing(run_example, haproxy):
    backend = run_example(RECIPE_API)
    return backend, haproxy(COMPRESSION, {"BACKEND_PORT": str(backend.port)})


def test_gzip_for_clients_that_accept_it(compressing) -> None:
    backend, proxy = compressing
    direct = httpx.get(backend.url + "/recipes/42", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in direct.headers  # the service itself never compresses
    # a raw stream, so that what arrived is checked before any decoding
    with httpx.stream("GET", proxy.url + "/recipes/42", headers={"Accept-Encoding": "gzip"}) as r:
        raw = b"".join(r.iter_raw())
        assert r.status_code == 200
        assert r.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in r.headers["vary"].lower()
    assert gzip.decompress(raw) == direct.content


def test_identity_for_clients_that_do_not(compressing) -> None:
    _, proxy = compressing
    answer = httpx.get(proxy.url + "/recipes/42", headers={"Accept-Encoding": "identity"})
    assert answer.status_code == 200
    assert "content-encoding" not in answer.headers
    assert answer.json()["recipe"]["id"] == 42
    assert "vary" not in answer.headers  # HAProxy 2.6 adds Vary only when it compresses


# --- TLS termination --------------------------------------------------------


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    sysdeps.require_localhost()  # clients reach HAProxy by name, as readers do
    directory = tmp_path / "certs"
    run_script(f"{SNIPPETS}/haproxy_tls_pem.sh", {"CERT_DIR": str(directory)})
    pem = (directory / "haproxy.pem").read_text()
    assert "BEGIN CERTIFICATE" in pem
    assert "PRIVATE KEY" in pem
    assert (directory / "haproxy.pem").stat().st_mode & 0o077 == 0
    return directory


@pytest.fixture
def terminating(run_example, haproxy, certs: Path):
    backend = run_example(SLOW)
    env = {"BACKEND_PORT": str(backend.port), "CERT_PEM": str(certs / "haproxy.pem")}
    return haproxy(TLS, env)


def test_https_through_haproxy_to_a_plain_http_service(terminating, certs: Path) -> None:
    context = ssl.create_default_context(cafile=certs / "ca.pem")
    url = f"https://localhost:{terminating.port}/slow?ms=0"
    # a client's own X-Forwarded-Proto is overruled: HAProxy sets the header
    with httpx.stream("GET", url, verify=context, headers={"X-Forwarded-Proto": "http"}) as answer:
        tls = answer.extensions["network_stream"].get_extra_info("ssl_object")
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
        answer.read()
    assert answer.status_code == 200
    assert answer.json()["x_forwarded_proto"] == "https"
    assert answer.json()["x_forwarded_for"] == LOOPBACK


def test_the_page_tls_script(terminating, certs: Path) -> None:
    env = {**os.environ, "FRONTEND_PORT": str(terminating.port), "CERT_DIR": str(certs)}
    # curl's exit 60: "peer certificate cannot be authenticated"
    result = run_script(f"{SNIPPETS}/haproxy_tls_try.sh", env, returncode=60)
    first = result.stdout.splitlines()[0]
    assert '"x_forwarded_for":"127.0.0.1","x_forwarded_proto":"https"' in first
    assert "certificate" in result.stderr  # curl: SSL certificate problem


def test_a_client_without_our_ca_refuses_the_certificate(terminating) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://localhost:{terminating.port}/slow?ms=0")


# --- back pressure ----------------------------------------------------------


def concurrent_gets(url: str, count: int) -> list[httpx.Response]:
    def get(_: int) -> httpx.Response:
        return httpx.get(url, timeout=30)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(get, range(count)))


def test_excess_requests_wait_in_the_queue_and_all_succeed(run_example, haproxy) -> None:
    backend = run_example(SLOW)
    proxy = haproxy(BACKPRESSURE, {"BACKEND_PORT": str(backend.port)})
    answers = concurrent_gets(proxy.url + "/slow?ms=1000", 6)
    assert [a.status_code for a in answers] == [200] * 6
    assert max(a.json()["in_flight"] for a in answers) == 2  # the service never saw more
    server = proxy.server("slow_service", "slow1")
    assert int(server["smax"]) == 2  # most sessions on the server at once
    # the others waited in the backend's queue (no server was chosen for them yet)
    queue = proxy.server("slow_service", "BACKEND")
    assert int(queue["qmax"]) >= 1


def test_past_the_queue_timeout_requests_get_503(run_example, haproxy) -> None:
    backend = run_example(SLOW)
    env = {"BACKEND_PORT": str(backend.port), "QUEUE_TIMEOUT": "100ms"}
    proxy = haproxy(BACKPRESSURE, env)
    answers = concurrent_gets(proxy.url + "/slow?ms=1000", 6)
    statuses = sorted(a.status_code for a in answers)
    served = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 503]
    assert len(served) >= 2, statuses
    assert refused, statuses
    assert len(served) + len(refused) == 6, statuses
    assert max(a.json()["in_flight"] for a in served) <= 2
    assert refused[0].json() == {"error": "service busy, try again later"}
    assert refused[0].headers["content-type"] == "application/json"
    server = proxy.server("slow_service", "slow1")
    assert int(server["smax"]) <= 2


# --- rate limiting ----------------------------------------------------------


def test_past_the_rate_limit_a_client_gets_429(run_example, haproxy) -> None:
    backend = run_example(RECIPE_API)
    proxy = haproxy(RATELIMIT, {"BACKEND_PORT": str(backend.port), "RATE_LIMIT": "5"})
    with httpx.Client(base_url=proxy.url) as client:
        answers = [client.get("/recipes/42") for _ in range(8)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 3
    assert answers[-1].json() == {"error": "too many requests"}
    # another client address has a budget of its own
    other = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=proxy.url, transport=other) as client:
        assert client.get("/recipes/42").status_code == 200


# --- the page ---------------------------------------------------------------


@pytest.mark.parametrize("cfg", [LB, COMPRESSION, TLS, BACKPRESSURE, RATELIMIT])
def test_the_page_runs_each_cfg_with_the_command_the_tests_use(haproxy, cfg: str) -> None:
    """The fixture starts HAProxy with the command of the script the page shows."""
    script = cfg.removesuffix(".cfg") + ".sh"
    text = (PAGE if cfg == LB else EDGE_PAGE).read_text()
    assert f'```bash title="{script}"\n--8<-- "{script}"\n```' in text
    assert f'--8<-- "{cfg}"' in text
    assert shlex.join(haproxy.command(cfg)) in (ROOT / cfg).read_text()  # its own comment


def normalize_pids(output: str) -> str:
    """Pids differ on every run: name them A, B, C in the order they first answer."""
    names: dict[str, str] = {}
    lines = []
    for line in output.splitlines():
        if line.isdigit():
            line = names.setdefault(line, "pid " + "ABCDEFG"[len(names)])
        lines.append(line)
    return "\n".join(lines) + "\n"


def test_the_page_scripts_start_three_backends_and_balance_them(haproxy, tmp_path: Path) -> None:
    ports = {f"BACKEND{i}_PORT": str(free_port()) for i in (1, 2, 3)}
    # The script starts three recipe-apis in the background: the runner's process group
    # holds the shell and its three children, as a reader's terminal does.
    backends = Process(
        "haproxy_lb_backends.sh",
        ["sh", f"{SNIPPETS}/haproxy_lb_backends.sh"],
        tmp_path / "backends.log",
        env={"PATH": PATH, **ports},
    ).start()
    try:
        for i in (1, 2, 3):
            url = f"http://{LOOPBACK}:{ports[f'BACKEND{i}_PORT']}"
            eventually(lambda url=url: answers_health(url), f"recipe-api {i}")
        proxy = haproxy(LB, ports)
        eventually(lambda: all(proxy.server("recipe_api", f"recipe{i}")["status"] == "UP"
                               for i in (1, 2, 3)), "all three servers UP")  # fmt: skip
        front = {"FRONTEND_PORT": str(proxy.port), "STATS_PORT": proxy.env["STATS_PORT"]}
        result = run_script(f"{SNIPPETS}/haproxy_lb_try.sh", {**ports, **front})
        assert result.stderr == ""
        output = normalize_pids(result.stdout)
        assert output.splitlines()[:6] == ["pid A", "pid B", "pid C"] * 2
        assert_output_is_shown(output, ROOT / SNIPPETS / "haproxy_lb_try.out")
    finally:
        assert backends.popen is not None
        os.killpg(backends.popen.pid, signal.SIGTERM)  # Ctrl-C in the reader's terminal does
        assert backends.stop() in (0, -signal.SIGTERM)  # the shell may die of the signal itself
        ports_open = [int(port) for port in ports.values()]
        wait_until(lambda: not any(map(port_open, ports_open)), 10, "the three backends to stop")


# --- the slow service on its own ---------------------------------------------


def test_slow_service_waits_and_reports(run_example) -> None:
    slow = run_example(SLOW)
    answer = httpx.get(slow.url + "/slow")
    assert answer.status_code == 200
    body = answer.json()
    assert body == {
        "pid": slow.pid,
        "slept_ms": 100,  # the default
        "in_flight": 1,
        "x_forwarded_for": None,  # nothing in front of it
        "x_forwarded_proto": None,
    }


@pytest.mark.parametrize("ms", ["abc", "-1", "10001", "1.5"])
def test_slow_service_bad_ms_is_400(run_example, ms: str) -> None:
    slow = run_example(SLOW)
    answer = httpx.get(slow.url + "/slow", params={"ms": ms})
    assert answer.status_code == 400
    assert "ms must be an integer" in answer.json()["message"]


def test_slow_service_other_client_errors(run_example) -> None:
    slow = run_example(SLOW)
    assert httpx.get(slow.url + "/nope").status_code == 404
    assert httpx.post(slow.url + "/slow").status_code == 405
    assert httpx.get(slow.url + "/nope").headers["content-type"] == "application/json"
    # a body over the 64 KiB limit: never a 5xx, and the service keeps answering
    big = httpx.request("GET", slow.url + "/slow?ms=0", content=b"x" * (128 * 1024))
    assert big.status_code < 500
    assert answers_health(slow.url)
