"""A fuzz test: random requests against the sample services, over real sockets.

recipe-api and web-api (chapter 1), validated_service and injection_service are
started once for the module. hypothesis then sends them random methods, paths
(built from their routes, percent-encoded or raw), headers and bodies. No answer
may be a 5xx, and every process must still be alive and healthy at the end.

Bounded and reproducible: a fixed number of examples, no deadline (timing never
decides), and `derandomize=True`, so every run sends the same requests and a
failure is found again by running the test again. injection_service gets proxy
variables that point at a closed loopback port: a fetch that tried to leave the
machine would fail and answer 502, which this test reports.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from kit.examples import RunningExample
from kit.process import free_port, raw_exchange

SERVICES = ("recipe_api", "web_api", "validated", "injection")
PREFIXES = {
    "recipe_api": ["/", "/recipes/", "/recipes/42", "/health", "/live"],
    "web_api": ["/", "/health", "/live"],
    "validated": ["/recipes", "/recipes/", "/recipes/1", "/health"],
    "injection": ["/files/", "/files/menu.txt", "/fetch", "/health"],
}
# GET and POST more often than the rest: those are the methods the routes take.
METHODS = ["GET", "POST"] * 3 + ["PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def services(run_shared_example, tmp_path_factory) -> dict[str, RunningExample]:
    files = tmp_path_factory.mktemp("fuzz-files")
    (files / "menu.txt").write_text("soup\n")
    nowhere = f"http://127.0.0.1:{free_port()}"  # a proxy nobody answers on
    recipe_api = run_shared_example("why_distributed/recipe_api.py")
    return {
        "recipe_api": recipe_api,
        "web_api": run_shared_example("why_distributed/web_api.py", env={"TARGET": recipe_api.url}),
        "validated": run_shared_example("security/validated_service.py"),
        "injection": run_shared_example(
            "security/injection_service.py",
            env={
                "FILES_DIR": str(files),
                "HTTP_PROXY": nowhere,
                "HTTPS_PROXY": nowhere,
                "ALL_PROXY": nowhere,
                "NO_PROXY": "127.0.0.1,localhost,::1",
            },
        ),
    }


@pytest.fixture(scope="module")
def clients(services: dict[str, RunningExample]):
    made = {name: httpx.Client(base_url=s.url, timeout=10) for name, s in services.items()}
    yield made
    for client in made.values():
        client.close()


segment = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
header_name = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,20}\Z")
header_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(
    str.strip  # h11 (the client) refuses leading and trailing blanks
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | segment,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(segment, inner, max_size=5),
    max_leaves=20,
)
recipe_like = st.fixed_dictionaries(
    {"name": json_value, "ingredients": json_value},
    optional={"steps": json_value, "tags": json_value, "url": json_value, "admin": json_value},
)
hosts = ["127.0.0.1", "localhost", "[::1]", "169.254.169.254", "10.0.0.1", "2130706433"]
url_like = st.builds(
    lambda scheme, host, port, path: {"url": f"{scheme}://{host}:{port}/{path}"},
    st.sampled_from(["http", "https", "file", "ftp", "HTTP"]),
    st.sampled_from(hosts) | segment,
    st.integers(0, 70000),
    segment,
)
body = st.one_of(
    st.none(),
    st.binary(max_size=2000),
    json_value.map(lambda v: json.dumps(v).encode()),
    recipe_like.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"url": segment}).map(lambda v: json.dumps(v).encode()),
    url_like.map(lambda v: json.dumps(v).encode()),
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, str, dict[str, str], bytes | None]:
    service = draw(st.sampled_from(SERVICES))
    prefix = draw(st.sampled_from(PREFIXES[service]))
    encode = draw(st.booleans())
    segments = draw(st.lists(segment, max_size=3)) if draw(st.booleans()) else []
    path = prefix + "/".join(quote(s, safe="" if encode else "/") for s in segments)
    query = draw(st.dictionaries(segment, segment, max_size=3))
    if query:
        path += "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items())
    names = draw(st.lists(header_name, max_size=5, unique_by=str.lower))
    reserved = {"host", "content-length", "transfer-encoding", "connection", "expect"}
    headers = {n: draw(header_value) for n in names if n.lower() not in reserved}
    return service, draw(st.sampled_from(METHODS)), path, headers, draw(body)


@FUZZ
@given(request=requests())
def test_no_random_request_gets_a_5xx(clients, services, request) -> None:
    service, method, path, headers, content = request
    response = clients[service].request(method, path, headers=headers, content=content)
    event(f"{service}: {response.status_code}")  # --hypothesis-show-statistics lists them
    assert response.status_code < 500, (service, method, path, headers, content, response.text)
    assert services[service].alive()


@settings(FUZZ, max_examples=200)
@given(route=st.sampled_from([("validated", "/recipes"), ("injection", "/fetch")]), content=body)
def test_no_random_body_gets_a_5xx(clients, services, route, content) -> None:
    """The routes that read a body, each body straight at them (the test above reaches
    them only now and then)."""
    service, path = route
    response = clients[service].post(path, content=content)
    event(f"{service} POST {path}: {response.status_code}")
    assert response.status_code < 500, (service, path, content, response.text)
    assert services[service].alive()


raw_path = st.binary(min_size=1, max_size=80).map(
    lambda b: bytes(c for c in b if c > 0x20 and c != 0x7F)  # a request line has no spaces
)


@settings(FUZZ, max_examples=200)
@given(service=st.sampled_from(SERVICES), prefix=st.sampled_from(["/", "/files/", "/recipes/"]),
       rest=raw_path)  # fmt: skip
def test_no_raw_request_target_gets_a_5xx(services, service, prefix, rest) -> None:
    """Request targets sent byte for byte: `..`, `%00`, invalid UTF-8, no normalization."""
    target = prefix.encode() + rest
    answer = raw_exchange(
        services[service].port,
        b"GET " + target + b" HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n",
    )
    codes = [int(line.split(b" ")[1]) for line in answer.split(b"\r\n") if line[:7] == b"HTTP/1."]
    event(f"{service}: {codes}")
    assert all(code < 500 for code in codes), (service, target, answer[:300])
    assert services[service].alive()


def test_every_service_is_still_healthy(clients, services) -> None:
    """After the fuzzing (tests run in file order, in one worker): all alive and serving."""
    for name, client in clients.items():
        assert services[name].alive(), services[name].output()
        assert client.get("/health").status_code == 200
