"""HTTPS, TLS and mutual TLS: what the two pages claim, over real TLS connections on loopback.

Certificates are made for each test session by running tls_certs.py as the
page says, twice: our CA, and another CA with the same names but other keys.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from kit import sysdeps
from kit.examples import (
    RunningExample,
    assert_output_is_shown,
    assert_refuses_to_start,
    run_program,
)
from kit.process import LOOPBACK, ROOT, connections_to, free_port, wait_until

CERTS = "protocols/tls_certs.py"
PRODUCER = "protocols/tls_producer.py"
CONSUMER = "protocols/tls_consumer.py"
MTLS_PRODUCER = "protocols/mtls_producer.py"
SNIPPETS = ROOT / "snippets/protocols"
PAGE = ROOT / "docs/protocols/tls.md"
MTLS_PAGE = ROOT / "docs/protocols/mtls.md"

CERT_FILES = {"ca.pem", "server.pem", "server.key", "client.pem", "client.key"}
WEB_API_SUBJECT = {
    "organizationName": "Distributed Python",
    "organizationalUnitName": "services",
    "commonName": "web-api",
}


def make_certs(directory: Path) -> str:
    output = run_program(CERTS, str(directory))
    return output.replace(str(directory), "certs")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our CA and its certificates, in <tmp>/certs as the page's commands expect."""
    sysdeps.require_localhost()  # the tests reach the producers by name, as readers do
    directory = tmp_path_factory.mktemp("ours") / "certs"
    assert_output_is_shown(make_certs(directory), SNIPPETS / "tls_certs.out")
    return directory


@pytest.fixture(scope="module")
def other_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second run: another CA, with the same names as ours but its own keys."""
    directory = tmp_path_factory.mktemp("other") / "certs"
    make_certs(directory)
    return directory


def server_env(certs: Path, **extra: str) -> dict[str, str]:
    return {"TLS_CERT": str(certs / "server.pem"), "TLS_KEY": str(certs / "server.key"), **extra}


def trusting(ca_dir: Path, client_dir: Path | None = None) -> ssl.SSLContext:
    """A client context that trusts the CA in ca_dir (and presents client_dir's cert)."""
    context = ssl.create_default_context(cafile=ca_dir / "ca.pem")
    if client_dir is not None:
        context.load_cert_chain(client_dir / "client.pem", client_dir / "client.key")
    return context


def https_url(service: RunningExample, host: str = "localhost") -> str:
    return f"https://{host}:{service.port}"


def wait_healthy(service: RunningExample, context: ssl.SSLContext) -> RunningExample:
    """The harness probes plain HTTP; a TLS service is probed with a verifying client."""

    def healthy() -> bool:
        assert service.alive(), service.output()
        try:
            response = httpx.get(f"{https_url(service)}/health", verify=context, timeout=1)
        except httpx.TransportError:
            return False
        return response.status_code == 200

    wait_until(healthy, 15, f"{service.example} to answer over TLS")
    return service


def causes(error: BaseException | None) -> Iterator[BaseException]:
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def verify_error(error: BaseException) -> ssl.SSLCertVerificationError:
    found = [e for e in causes(error) if isinstance(e, ssl.SSLCertVerificationError)]
    assert found, f"no certificate verification error behind {error!r}"
    return found[0]


@pytest.fixture(scope="module")
def producer(run_shared_example, certs: Path) -> RunningExample:
    service = run_shared_example(PRODUCER, env=server_env(certs), ready="port")
    return wait_healthy(service, trusting(certs))


@pytest.fixture(scope="module")
def mtls_producer(run_shared_example, certs: Path) -> RunningExample:
    env = server_env(certs, TLS_CA=str(certs / "ca.pem"))
    service = run_shared_example(MTLS_PRODUCER, env=env, ready="port")
    return wait_healthy(service, trusting(certs, client_dir=certs))


# --- the certificates ------------------------------------------------------


def test_certs_are_written_keys_private_and_no_ca_key(certs: Path) -> None:
    assert {p.name for p in certs.iterdir()} == CERT_FILES  # the CA's key is never written
    for path in certs.iterdir():
        text = path.read_text()
        if path.suffix == ".key":
            assert path.stat().st_mode & 0o777 == 0o600
            assert "PRIVATE KEY-----" in text
        else:
            assert text.startswith("-----BEGIN CERTIFICATE-----")
            assert "PRIVATE KEY" not in text


def test_server_cert_names_127_0_0_1_and_localhost_and_is_signed_by_the_ca(certs: Path) -> None:
    ca = x509.load_pem_x509_certificate((certs / "ca.pem").read_bytes())
    server = x509.load_pem_x509_certificate((certs / "server.pem").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server.verify_directly_issued_by(ca)  # raises if the CA's key did not sign it


def test_each_run_makes_a_new_ca_with_the_same_names(certs: Path, other_certs: Path) -> None:
    ours = x509.load_pem_x509_certificate((certs / "ca.pem").read_bytes())
    other = x509.load_pem_x509_certificate((other_certs / "ca.pem").read_bytes())
    assert ours.subject == other.subject
    assert ours.public_key() != other.public_key()


def test_cert_dir_from_the_environment_and_key_modes_tightened(tmp_path: Path) -> None:
    directory = tmp_path / "from-env"
    directory.mkdir()
    (directory / "server.key").write_text("an old key, readable by all")
    (directory / "server.key").chmod(0o644)
    output = run_program(CERTS, env={"CERT_DIR": str(directory), "CERT_DAYS": "2"})
    assert output.endswith("the server and client certificates expire in 2 days\n")
    assert (directory / "server.key").stat().st_mode & 0o777 == 0o600
    server = x509.load_pem_x509_certificate((directory / "server.pem").read_bytes())
    lifetime = server.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=1) < lifetime <= datetime.timedelta(days=2)


def test_inspect_snippet_prints_what_the_page_shows(certs: Path) -> None:
    sysdeps.require("openssl")
    result = run_snippet("tls_inspect.sh", cwd=certs.parent)
    assert_output_is_shown(result, SNIPPETS / "tls_inspect.out")
    assert "IP Address:127.0.0.1, DNS:localhost" in result
    assert "certs/server.pem: OK" in result


# --- the producer ------------------------------------------------------------


def test_client_trusting_our_ca_gets_the_recipe_over_tls_1_3(producer: RunningExample, certs):
    response = httpx.get(f"{https_url(producer)}/recipes/42", verify=trusting(certs))
    assert response.status_code == 200
    body = response.json()
    assert body["producer_pid"] == producer.pid
    assert body["recipe"]["name"] == "Chicken Tikka Masala"
    assert body["tls"]["version"] == "TLSv1.3"
    assert body["tls"]["server_name"] == "localhost"  # the name the client sent (SNI)


def test_by_ip_address_the_cert_verifies_and_no_sni_is_sent(producer: RunningExample, certs):
    url = f"{https_url(producer, LOOPBACK)}/recipes/42"
    response = httpx.get(url, verify=trusting(certs))
    assert response.status_code == 200
    assert response.json()["tls"]["server_name"] == ""


@pytest.mark.parametrize(
    "trust_store",
    [pytest.param(True, id="httpx default (certifi)"), pytest.param(None, id="system CAs")],
)
def test_client_without_our_ca_fails_verification(producer: RunningExample, trust_store):
    verify = trust_store if trust_store is not None else ssl.create_default_context()
    with pytest.raises(httpx.ConnectError) as caught:
        httpx.get(f"{https_url(producer)}/health", verify=verify)
    assert verify_error(caught.value).verify_message == "unable to get local issuer certificate"


def test_client_trusting_another_ca_fails_verification(producer: RunningExample, other_certs):
    with pytest.raises(httpx.ConnectError) as caught:
        httpx.get(f"{https_url(producer)}/health", verify=trusting(other_certs))
    assert verify_error(caught.value).verify_message == "unable to get local issuer certificate"


def test_a_name_the_cert_does_not_carry_fails_verification(producer: RunningExample, certs):
    # Same server, same CA: only the name the client expects differs.
    with (
        httpx.Client(verify=trusting(certs)) as client,
        pytest.raises(httpx.ConnectError) as caught,
    ):
        client.get(
            f"{https_url(producer, LOOPBACK)}/health",
            extensions={"sni_hostname": "recipe-api.internal"},
        )
    message = verify_error(caught.value).verify_message
    assert message == "Hostname mismatch, certificate is not valid for 'recipe-api.internal'."


def test_plain_http_to_the_tls_port_is_closed_and_service_keeps_serving(
    producer: RunningExample, certs: Path
) -> None:
    with socket.create_connection((LOOPBACK, producer.port), timeout=5) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert sock.recv(1024) == b""  # closed, not a 400: TLS failed before any HTTP
    with pytest.raises(httpx.RemoteProtocolError, match="disconnected without sending"):
        httpx.get(f"http://{LOOPBACK}:{producer.port}/health")
    assert producer.alive()
    assert httpx.get(f"{https_url(producer)}/health", verify=trusting(certs)).status_code == 200
    assert not re.search(r"ERROR|WARNING|Traceback", producer.output()), producer.output()


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/recipes/7", None, 404),
        ("GET", "/recipes/0", None, 400),
        ("GET", "/nope", None, 404),
        ("POST", "/recipes/42", b"{}", 405),
    ],
)
@pytest.mark.parametrize("example", ["producer", "mtls_producer"])
def test_bad_requests_over_tls_get_json_4xx(
    request: pytest.FixtureRequest, certs, example, method, path, body, status
):
    service = request.getfixturevalue(example)
    context = trusting(certs, client_dir=certs)
    response = httpx.request(method, https_url(service) + path, content=body, verify=context)
    assert response.status_code == status
    assert response.json()["status"] == status


@pytest.mark.parametrize("example", ["producer", "mtls_producer"])
def test_an_oversized_body_gets_no_5xx(request: pytest.FixtureRequest, certs, example) -> None:
    # No route reads a body; Sanic answers, then drains at most REQUEST_MAX_SIZE and hangs up.
    service = request.getfixturevalue(example)
    context = trusting(certs, client_dir=certs)
    oversized = b"x" * (128 * 1024)
    response = httpx.request(
        "GET", f"{https_url(service)}/health", content=oversized, verify=context
    )
    assert response.status_code < 500
    assert httpx.get(f"{https_url(service)}/health", verify=context).status_code == 200


def test_try_snippet_prints_what_the_page_shows(producer: RunningExample, certs: Path) -> None:
    sysdeps.require("curl")
    output = run_snippet("tls_try.sh", cwd=certs.parent, PORT=str(producer.port))
    output = output.replace(str(producer.port), "4443")
    assert_output_is_shown(output, SNIPPETS / "tls_try.out", normalize=without_pids)
    assert output.count('"name":"Chicken Tikka Masala"') == 2
    assert "curl: (60) SSL certificate problem: unable to get local issuer certificate" in output
    assert "curl: (52) Empty reply from server" in output


def test_a_cafile_replaces_the_system_trust_store(certs: Path) -> None:
    # What the consumer's context relies on: with cafile=, our CA is the only anchor.
    assert len(ssl.create_default_context().get_ca_certs()) > 1
    context = ssl.create_default_context(cafile=certs / "ca.pem")
    assert [ca["subject"] for ca in context.get_ca_certs()] == [
        ((("organizationName", "Distributed Python"),), (("organizationalUnitName", "dev CA"),))
    ]
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)


UNVERIFIED = re.compile(
    r"verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False|_create_unverified_context"
)


def test_no_example_disables_tls_verification() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / "examples").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if UNVERIFIED.search(line)
    ]
    assert not offenders, "\n".join(offenders)


# --- the consumer ------------------------------------------------------------


def test_consumer_trusting_our_ca_gets_the_recipe_through_one_tls_connection(
    run_example, producer: RunningExample, certs: Path
) -> None:
    env = {"TARGET": https_url(producer), "TARGET_CA": str(certs / "ca.pem")}
    web_api = run_example(CONSUMER, env=env)
    body = httpx.get(web_api.url).json()
    assert body["consumer_pid"] == web_api.pid
    assert body["producer_data"]["producer_pid"] == producer.pid
    assert body["producer_data"]["tls"]["version"] == "TLSv1.3"
    for _ in range(4):
        assert httpx.get(web_api.url).status_code == 200
    assert connections_to(web_api.pid, producer.port) == 1  # one TLS handshake for five requests


def test_consumer_answers_502_when_the_producer_cert_is_from_another_ca(
    run_example, producer: RunningExample, other_certs: Path
) -> None:
    env = {"TARGET": https_url(producer), "TARGET_CA": str(other_certs / "ca.pem")}
    web_api = run_example(CONSUMER, env=env)
    response = httpx.get(web_api.url, timeout=10)
    assert response.status_code == 502
    assert response.json() == {
        "error": "recipe-api unavailable",
        "reason": "recipe-api's certificate did not verify: unable to get local issuer certificate",
    }
    assert httpx.get(f"{web_api.url}/health").status_code == 200


def with_our_certificate(certs: Path) -> ssl.SSLContext:
    """What a fake producer serves: our server certificate, so TLS itself works."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs / "server.pem", certs / "server.key")
    return context


MISBEHAVIOURS = {
    "silent": ({"never": True}, True, "no answer within 0.3s"),
    "500": ({"status": 500}, True, "answered 500"),
    "not json": ({"body": "<html>down</html>"}, True, "answered something that is not JSON"),
    "plain HTTP producer": ({"status": 500}, False, "TLS handshake failed: WRONG_VERSION_NUMBER"),
}


@pytest.mark.parametrize(
    ("behaviour", "tls", "reason"), MISBEHAVIOURS.values(), ids=MISBEHAVIOURS.keys()
)
def test_consumer_answers_502_when_the_producer_misbehaves(
    run_example, fake_upstream, certs: Path, behaviour: dict, tls: bool, reason: str
) -> None:
    producer = fake_upstream(tls=with_our_certificate(certs) if tls else None).behave(**behaviour)
    env = {
        "TARGET": f"https://localhost:{producer.port}",
        "TARGET_CA": str(certs / "ca.pem"),
        "TARGET_TIMEOUT": "0.3",
    }
    web_api = run_example(CONSUMER, env=env)
    response = httpx.get(web_api.url, timeout=10)
    assert response.status_code == 502
    assert response.json() == {"error": "recipe-api unavailable", "reason": reason}


def test_consumer_answers_502_when_nothing_listens(run_example, certs: Path) -> None:
    env = {"TARGET": f"https://{LOOPBACK}:{free_port()}", "TARGET_CA": str(certs / "ca.pem")}
    web_api = run_example(CONSUMER, env=env)
    response = httpx.get(web_api.url, timeout=10)
    assert response.status_code == 502
    assert response.json() == {"error": "recipe-api unavailable", "reason": "ConnectError"}


# --- mutual TLS --------------------------------------------------------------


def test_mtls_client_with_our_cert_gets_in_and_is_named(mtls_producer, certs: Path) -> None:
    url = f"{https_url(mtls_producer)}/recipes/42"
    response = httpx.get(url, verify=trusting(certs, client_dir=certs))
    assert response.status_code == 200
    assert response.json()["client"] == WEB_API_SUBJECT


@pytest.mark.parametrize(
    "client_dir", [pytest.param(None, id="no certificate"), pytest.param("other", id="other CA")]
)
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_mtls_refuses_clients_without_a_cert_from_our_ca(
    mtls_producer, certs: Path, other_certs: Path, client_dir: str | None, version
) -> None:
    context = trusting(certs, client_dir=other_certs if client_dir else None)
    context.maximum_version = version
    with socket.create_connection((LOOPBACK, mtls_producer.port), timeout=5) as sock:
        if version == ssl.TLSVersion.TLSv1_2:
            # TLS 1.2: the server checks the client's certificate inside the handshake.
            # An EOF or a clean close (SSLZeroReturnError), depending on the OpenSSL build.
            with pytest.raises((ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError)):
                context.wrap_socket(sock, server_hostname="localhost", suppress_ragged_eofs=False)
        else:
            # TLS 1.3: the client's side of the handshake completes before the server
            # has read the certificate; the refusal arrives as the connection closing.
            # How it closes depends on the OpenSSL build and timing: an EOF, an alert,
            # a reset or a clean close_notify. What never arrives is an HTTP answer.
            with context.wrap_socket(
                sock, server_hostname="localhost", suppress_ragged_eofs=False
            ) as tls:
                assert tls.version() == "TLSv1.3"
                try:
                    tls.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    answer = tls.recv(1024)
                except (ssl.SSLError, ConnectionError):
                    answer = b""
                assert answer == b""
    assert mtls_producer.alive()


@pytest.mark.parametrize("client_dir", [None, "other"], ids=["no certificate", "other CA"])
def test_mtls_refusal_as_an_http_client_sees_it(
    mtls_producer, certs: Path, other_certs: Path, client_dir: str | None
) -> None:
    context = trusting(certs, client_dir=other_certs if client_dir else None)
    # Closed before an answer (EOF), or reset if our request was still unread.
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        httpx.get(f"{https_url(mtls_producer)}/recipes/42", verify=context)


def test_mtls_try_snippet_prints_what_the_page_shows(mtls_producer, certs: Path) -> None:
    sysdeps.require("curl")
    output = run_snippet("tls_mtls_try.sh", cwd=certs.parent, PORT=str(mtls_producer.port))
    output = output.replace(str(mtls_producer.port), "4444")
    assert_output_is_shown(output, SNIPPETS / "tls_mtls_try.out", normalize=curl_refusal)
    assert '"commonName":"web-api"' in output


def snippet_env(certs: Path, producer_port: int) -> dict[str, str]:
    """The variables tls_mtls_env.sh exports, as the consumer would see them."""
    result = subprocess.run(
        ["bash", "-c", f". {SNIPPETS / 'tls_mtls_env.sh'} && env -0"],
        cwd=certs.parent,
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    )
    exported = dict(item.split("=", 1) for item in result.stdout.split("\0") if "=" in item)
    env = {name: exported[name] for name in ("TARGET", "TLS_CLIENT_CERT", "TLS_CLIENT_KEY")}
    assert env["TARGET"] == "https://localhost:4444"  # mtls_producer.py's default port
    env["TARGET"] = f"https://localhost:{producer_port}"
    for name in ("TLS_CLIENT_CERT", "TLS_CLIENT_KEY"):
        env[name] = str(certs.parent / env[name])  # relative to where the reader runs it
    return env


def test_consumer_with_the_snippets_client_cert_passes_mtls(
    run_example, mtls_producer, certs: Path
) -> None:
    env = {**snippet_env(certs, mtls_producer.port), "TARGET_CA": str(certs / "ca.pem")}
    web_api = run_example(CONSUMER, env=env)
    body = httpx.get(web_api.url).json()
    assert body["producer_data"]["client"] == WEB_API_SUBJECT


@pytest.mark.parametrize("client_dir", [None, "other"], ids=["no certificate", "other CA"])
def test_consumer_refused_by_mtls_answers_502(
    run_example, mtls_producer, certs: Path, other_certs: Path, client_dir: str | None
) -> None:
    env = {"TARGET": https_url(mtls_producer), "TARGET_CA": str(certs / "ca.pem")}
    if client_dir:
        env["TLS_CLIENT_CERT"] = str(other_certs / "client.pem")
        env["TLS_CLIENT_KEY"] = str(other_certs / "client.key")
    web_api = run_example(CONSUMER, env=env)
    response = httpx.get(web_api.url, timeout=10)
    assert response.status_code == 502
    assert response.json()["reason"] in {"RemoteProtocolError", "ReadError"}


# --- clean stops -------------------------------------------------------------


def test_every_server_stops_cleanly_on_sigterm(run_example, certs: Path) -> None:
    producer = wait_healthy(
        run_example(PRODUCER, env=server_env(certs), ready="port"), trusting(certs)
    )
    mtls = run_example(
        MTLS_PRODUCER, env=server_env(certs, TLS_CA=str(certs / "ca.pem")), ready="port"
    )
    wait_healthy(mtls, trusting(certs, client_dir=certs))
    consumer = run_example(
        CONSUMER, env={"TARGET": https_url(producer), "TARGET_CA": str(certs / "ca.pem")}
    )
    assert httpx.get(consumer.url).status_code == 200  # leaves a kept-alive TLS connection
    for service in (consumer, producer, mtls):
        assert service.stop() == 0, service.output()


# --- helpers for the shell snippets ------------------------------------------


def run_snippet(name: str, cwd: Path, **env: str) -> str:
    result = subprocess.run(
        ["bash", str(SNIPPETS / name)],
        cwd=cwd,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stdout


def without_pids(text: str) -> str:
    return re.sub(r'"producer_pid":\d+', '"producer_pid":PID', text)


def curl_refusal(text: str) -> str:
    # Whether curl sees the refusal as a close or a reset depends on whether the
    # server had read our request before it hung up: a race, both are correct.
    text = re.sub(
        r"curl: \((?:52|56)\) (?:Empty reply from server|Recv failure: Connection reset by peer)",
        "curl: REFUSED",
        text,
    )
    return without_pids(text)


@pytest.mark.parametrize(
    ("page", "names"),
    [
        (PAGE, ["tls_certs.out", "tls_inspect.out", "tls_try.out"]),
        (MTLS_PAGE, ["tls_mtls_try.sh", "tls_mtls_try.out", "tls_mtls_env.sh"]),
    ],
)
def test_pages_show_the_outputs_they_explain(page: Path, names: list[str]) -> None:
    text = page.read_text()
    for name in names:
        assert f'--8<-- "snippets/protocols/{name}"' in text


@pytest.mark.parametrize("days", ["abc", "0"])
def test_tls_certs_refuses_a_bad_cert_days(days: str, tmp_path: Path) -> None:
    stderr = assert_refuses_to_start(CERTS, {"CERT_DAYS": days, "CERT_DIR": str(tmp_path)}, "")
    assert stderr.startswith("configuration error: CERT_DAYS: ")
    assert len(stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written
