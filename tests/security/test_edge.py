"""Security headers and TLS at the edge (docs/security/edge.md).

HAProxy runs snippets/security/edge_haproxy.cfg in front of the GraphQL producer
of chapter 2, which has an HTML route (GET /graphql, the explorer) and JSON routes
(GET /health, POST /graphql). Clients speak verified TLS to it, trusting only the
test CA that examples/protocols/tls_certs.py makes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from kit import sysdeps
from kit.process import LOOPBACK, free_port
from kit.services.haproxy import RunningHaproxy, StartHaproxy
from kit.snippets import run_script

EDGE = "snippets/security/edge_haproxy.cfg"
GRAPHQL = "protocols/graphql_producer.py"
EVERY_ANSWER = {
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sysdeps.require_localhost()  # clients reach HAProxy by name, as readers do
    directory = tmp_path_factory.mktemp("edge") / "certs"
    run_script("snippets/scaling/haproxy_tls_pem.sh", {"CERT_DIR": str(directory)})
    return directory


@pytest.fixture(scope="module")
def edge(
    run_shared_example, certs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningHaproxy]:
    backend = run_shared_example(GRAPHQL)
    start = StartHaproxy(tmp_path_factory.mktemp("haproxy"))
    env = {
        "BACKEND_PORT": str(backend.port),
        "HTTP_PORT": str(free_port()),
        "CERT_PEM": str(certs / "haproxy.pem"),
    }
    proxy = start(EDGE, env)
    yield proxy
    assert proxy.stop() == 0


@pytest.fixture(scope="module")
def client(certs: Path) -> Iterator[httpx.Client]:
    context = ssl.create_default_context(cafile=certs / "ca.pem")
    with httpx.Client(verify=context, timeout=10) as client:
        yield client


def https(edge: RunningHaproxy, path: str) -> str:
    return f"https://localhost:{edge.port}{path}"


def test_html_answers_carry_every_header_and_the_csp(edge, client) -> None:
    answer = client.get(https(edge, "/graphql"))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert {name: answer.headers.get(name) for name in EVERY_ANSWER} == EVERY_ANSWER
    csp = answer.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in directive(csp, "script-src")


def test_json_answers_carry_every_header_but_no_csp(edge, client) -> None:
    health = client.get(https(edge, "/health"))
    query = client.post(https(edge, "/graphql"), json={"query": "{ __typename }"})
    for answer in (health, query):
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/json")
        assert {name: answer.headers.get(name) for name in EVERY_ANSWER} == EVERY_ANSWER
        assert "content-security-policy" not in answer.headers


class Chatty(BaseHTTPRequestHandler):
    """A server that names itself and its version, as many do (Sanic sends no Server)."""

    def do_GET(self) -> None:
        self.send_response(200)  # adds "Server: BaseHTTP/0.6 Python/3.x"
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_sanic_itself_sends_no_server_header_nor_security_headers(edge) -> None:
    direct = httpx.get(f"http://{LOOPBACK}:{edge.env['BACKEND_PORT']}/health", timeout=10)
    assert direct.status_code == 200
    assert "server" not in direct.headers
    assert not set(EVERY_ANSWER) & set(direct.headers)  # the edge adds them, not the service


def test_the_server_header_is_removed(certs: Path, client, tmp_path: Path) -> None:
    server = ThreadingHTTPServer((LOOPBACK, 0), Chatty)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        direct = httpx.get(f"http://{LOOPBACK}:{server.server_port}/", timeout=10)
        assert direct.headers["server"].startswith("BaseHTTP/")  # the control
        env = {
            "BACKEND_PORT": str(server.server_port),
            "HTTP_PORT": str(free_port()),
            "CERT_PEM": str(certs / "haproxy.pem"),
        }
        proxy = StartHaproxy(tmp_path)(EDGE, env)
        try:
            answer = client.get(https(proxy, "/"))
            assert answer.status_code == 200
            assert "server" not in answer.headers
        finally:
            assert proxy.stop() == 0
    finally:
        server.shutdown()
        server.server_close()


def directive(csp: str, name: str) -> list[str]:
    for part in csp.split(";"):
        words = part.split()
        if words and words[0] == name:
            return words[1:]
    raise AssertionError(f"no {name} in {csp!r}")


def test_the_csp_allows_exactly_the_scripts_the_page_carries(edge, client) -> None:
    """A CSP that forgets a script breaks the page; one with 'unsafe-inline' allows
    any injected script. Hashes name the inline scripts the explorer really serves."""
    answer = client.get(https(edge, "/graphql"))
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", answer.text, re.DOTALL)
    hashes = {
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in scripts
    }
    allowed = directive(answer.headers["content-security-policy"], "script-src")
    assert len(hashes) == 2
    assert hashes <= set(allowed)
    # Every module the import map names comes from a host the policy allows.
    hosts = set(re.findall(r'"(https://[^/"]+)/', answer.text))
    assert hosts == {"https://esm.sh"}
    assert hosts <= set(allowed)


def test_plain_http_is_redirected_to_https(edge) -> None:
    url = f"http://127.0.0.1:{edge.env['HTTP_PORT']}/graphql?x=1"
    # A browser on port 80 sends the bare host name.
    answer = httpx.get(url, headers={"Host": "recipes.example"}, timeout=10)
    assert answer.status_code == 301
    assert answer.headers["location"] == "https://recipes.example/graphql?x=1"
    # HSTS means nothing over plain HTTP (a browser ignores it there): not sent.
    assert "strict-transport-security" not in answer.headers


def test_a_client_without_the_ca_refuses_the_edge(edge) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(https(edge, "/health"), timeout=10)


def test_the_page_script_shows_the_headers(edge, certs: Path) -> None:
    env = {
        **os.environ,
        "FRONTEND_PORT": str(edge.port),
        "HTTP_PORT": edge.env["HTTP_PORT"],
        "CERT_DIR": str(certs),
    }
    out = run_script("snippets/security/edge_try.sh", env).stdout.lower()
    html, health, redirect = out.split("\n\n")[:3]
    assert "content-security-policy:" in html
    assert "strict-transport-security:" in health
    assert "content-security-policy:" not in health
    assert redirect.startswith("http/1.1 301")
    assert f"location: https://localhost:{edge.env['HTTP_PORT']}/graphql" in redirect
