"""The "Injection" page's claims: SQL injection, path traversal and SSRF, on real sockets.

No packet leaves the machine, not even to prove a refusal: injection_service runs
with HTTP_PROXY, HTTPS_PROXY and ALL_PROXY pointing at a sink on loopback (and
NO_PROXY for loopback), so any connection it made to a non-loopback address would
land in the sink. Every SSRF test asserts the sink saw nothing; one control lists
a non-loopback address on purpose and shows the sink catching the attempt.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from kit.examples import (
    RunningExample,
    assert_output_is_shown,
    assert_refuses_to_start,
    run_program,
)
from kit.fake_upstream import FakeUpstream, start_fake_upstream
from kit.process import LOOPBACK, ROOT, free_port, raw_exchange

SERVICE = "security/injection_service.py"
SNIPPETS = ROOT / "snippets" / "security"
SECRET = "text-outside-the-files-directory"  # noqa: S105  # pragma: allowlist secret (file content)
GUARDED = "10.255.255.1:80"  # listed on purpose by one control, and caught by the sink


# --- SQL injection ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch_db(postgres_server) -> str:
    """A database of this module's own in the worker's PostgreSQL."""
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS security_injection")
        conn.execute("CREATE DATABASE security_injection")
    return postgres_server.url.rsplit("/", 1)[0] + "/security_injection"


def test_the_sql_injection_run_is_the_one_the_page_shows(scratch_db: str) -> None:
    """f-string: `' OR '1'='1` returns every row and the stacked DROP TABLE runs;
    parameters: the same names find nothing and the table stays (the shown output)."""
    output = run_program("security/injection_sql.py", env={"DATABASE_URL": scratch_db})
    assert_output_is_shown(output, SNIPPETS / "injection_sql.out")
    blocks = output.split("find_user")
    assert "('carol', 'key-carol')" in blocks[2]  # every row, through the f-string
    assert "users table still there: False" in blocks[3]  # the stacked DROP ran
    assert all("rows: []" in b and "still there: True" in b for b in blocks[5:])


def test_a_parametrized_query_carries_quotes_as_data(scratch_db: str) -> None:
    """The name with its quote is stored and found as written: data stays data. And with
    parameters psycopg binds on the server, where one statement is all that is allowed."""
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS people (name text)")
        conn.execute("INSERT INTO people VALUES (%s)", ("O'Brien'; DROP TABLE people; --",))
        found = conn.execute(
            "SELECT name FROM people WHERE name = %s", ("O'Brien'; DROP TABLE people; --",)
        ).fetchall()
        assert found == [("O'Brien'; DROP TABLE people; --",)]
        with pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"):
            conn.execute("SELECT %s; DROP TABLE people", ("x",))
        assert conn.execute("SELECT count(*) FROM people").fetchone()[0] == 1


# --- the service: files and fetch ------------------------------------------------------


class Sink:
    """A loopback listener that records every connection: the proxy the service would
    have to go through to reach anything that is not loopback."""

    def __init__(self) -> None:
        self.listener = socket.create_server((LOOPBACK, 0))
        self.connections = 0
        threading.Thread(target=self.accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.listener.getsockname()[1]}"

    def accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    sink = Sink()
    yield sink
    sink.listener.close()


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    started = (start_fake_upstream(), start_fake_upstream())
    yield started
    for fake in started:
        fake.stop()


@pytest.fixture(scope="module")
def files_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """menu.txt and sub/inner.txt inside; secret.txt beside the directory, outside it;
    a symlink to the secret (escape) and one to menu.txt (inside_link)."""
    base = tmp_path_factory.mktemp("files")
    (base / "secret.txt").write_text(SECRET)
    served = base / "served"
    (served / "sub").mkdir(parents=True)
    (served / "menu.txt").write_text("Soup of the day: tomato.\n")
    (served / "sub" / "inner.txt").write_text("inner\n")
    (served / "escape").symlink_to(base / "secret.txt")
    (served / "inside_link").symlink_to(served / "menu.txt")
    return served


@pytest.fixture(scope="module")
def service(run_shared_example, files_dir: Path, fakes, sink: Sink) -> RunningExample:
    first, second = fakes
    allow = [
        f"127.0.0.1:{first.port}",  # listed as an address: trusted as written
        f"127.0.0.1:{second.port}",
        f"localhost:{first.port}",  # listed as a name: checked once resolved
        GUARDED,
    ]
    env = {
        "FILES_DIR": str(files_dir),
        "FETCH_ALLOW": ",".join(allow),
        "FETCH_TIMEOUT": "5",
        "HTTP_PROXY": sink.url,
        "HTTPS_PROXY": sink.url,
        "ALL_PROXY": sink.url,
        "NO_PROXY": "127.0.0.1,localhost,::1",
    }
    return run_shared_example(SERVICE, env=env)


def get_raw(service: RunningExample, target: str) -> tuple[int, bytes]:
    """GET `target` sent byte for byte (an HTTP client would normalize `..` away)."""
    request = f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
    answer = raw_exchange(service.port, request)
    return int(answer.split(b" ", 2)[1]), answer


@pytest.mark.parametrize(
    "target",
    ["/files/menu.txt", "/files/sub/inner.txt", "/files/inside_link", "/files/sub/../menu.txt"],
)
def test_a_file_inside_the_directory_is_served(service: RunningExample, target: str) -> None:
    """The control: names that stay inside, a symlink that stays inside included."""
    status, answer = get_raw(service, target)
    assert status == 200, answer
    assert answer.endswith(b"\n")
    assert SECRET.encode() not in answer


TRAVERSALS = {
    "dot-dot": "/files/../secret.txt",
    "dot-dot from a subdirectory": "/files/sub/../../secret.txt",
    "encoded slash": "/files/..%2fsecret.txt",
    "all encoded": "/files/%2e%2e%2fsecret.txt",
    "encoded backslash is no separator here": "/files/..%5csecret.txt",
    "absolute path": "/files/%2fetc%2fpasswd",
    "absolute path, doubled slash": "/files//etc/passwd",
    "symlink pointing outside": "/files/escape",
    "NUL byte": "/files/menu.txt%00.png",
    "invalid UTF-8": "/files/%ff%fe",
}


@pytest.mark.parametrize("case", TRAVERSALS, ids=str)
def test_a_name_that_escapes_is_refused(service: RunningExample, case: str) -> None:
    status, answer = get_raw(service, TRAVERSALS[case])
    assert 400 <= status < 500, answer
    assert b"application/json" in answer
    assert SECRET.encode() not in answer
    assert b"root:" not in answer


def test_bad_files_and_fetch_settings_stop_it_at_start() -> None:
    assert_refuses_to_start(SERVICE, {"FILES_DIR": "/nonexistent/files"}, "FILES_DIR")
    assert_refuses_to_start(SERVICE, {"FETCH_ALLOW": "not-a-host"}, "FETCH_ALLOW")
    assert_refuses_to_start(SERVICE, {"FETCH_ALLOW": "example.com:80/path"}, "FETCH_ALLOW")


def fetch(service: RunningExample, url: str) -> httpx.Response:
    return httpx.post(f"{service.url}/fetch", json={"url": url}, timeout=15)


def test_a_listed_address_is_fetched(service: RunningExample, fakes) -> None:
    first, _ = fakes
    first.behave(200, {"menu": "soup"})
    before = len(first.requests)
    response = fetch(service, f"http://127.0.0.1:{first.port}/menu")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "url": f"http://127.0.0.1:{first.port}/menu",
        "status": 200,
        "body": '{"menu": "soup"}',
    }
    assert [r.path for r in first.requests[before:]] == ["/menu"]


REFUSED = {
    "unlisted port on a listed host": ("http://127.0.0.1:{free}/", 403),
    "loopback": ("http://127.0.0.1/", 403),
    "localhost": ("http://localhost/", 403),
    "IPv6 loopback": ("http://[::1]:{port}/", 403),
    "IPv4-mapped loopback": ("http://[::ffff:127.0.0.1]:{port}/", 403),
    "unspecified": ("http://0.0.0.0:{port}/", 403),
    "loopback as a decimal number": ("http://2130706433:{port}/", 403),
    "loopback in hex": ("http://0x7f.1:{port}/", 403),
    "loopback, short form": ("http://127.1:{port}/", 403),
    "IPv4-mapped loopback in hex": ("http://[::ffff:7f00:1]:{port}/", 403),
    "cloud metadata (link-local)": ("http://169.254.169.254/latest/meta-data/", 403),
    "private 10/8": ("http://10.0.0.1/", 403),
    "private 172.16/12": ("http://172.16.0.1/", 403),
    "private 192.168/16": ("http://192.168.1.1/", 403),
    "a public name not listed": ("https://example.com/", 403),
    "user info to confuse the host": ("http://127.0.0.1:{port}@169.254.169.254/", 403),
    "file scheme": ("file:///etc/passwd", 400),
    "gopher scheme": ("gopher://127.0.0.1:{port}/", 400),
    "not a URL": ("http://[::1", 400),
}


@pytest.mark.parametrize("case", REFUSED, ids=str)
def test_anything_not_listed_is_refused_before_connecting(
    service: RunningExample, fakes, sink: Sink, case: str
) -> None:
    first, _ = fakes
    url, status = REFUSED[case]
    before, caught = len(first.requests), sink.connections
    response = fetch(service, url.format(port=first.port, free=free_port()))
    assert response.status_code == status, response.text
    assert response.json()["error"]
    assert len(first.requests) == before  # nothing reached the fake...
    assert sink.connections == caught  # ...nor anything beyond loopback


def test_a_listed_name_that_resolves_to_loopback_is_refused(
    service: RunningExample, fakes, sink: Sink
) -> None:
    """localhost:PORT is listed, and is the very server the address entry reaches: the
    name is refused because of what it resolves to (a DNS name pointed inside)."""
    first, _ = fakes
    before = len(first.requests)
    response = fetch(service, f"http://localhost:{first.port}/")
    assert response.status_code == 403
    # Which address comes first depends on the machine's /etc/hosts (Debian lists ::1 too).
    assert response.json()["error"] in {
        "localhost resolves to 127.0.0.1, a loopback address",
        "localhost resolves to ::1, a loopback address",
    }
    assert len(first.requests) == before


def test_a_redirect_to_a_place_not_listed_is_refused(
    service: RunningExample, fakes, sink: Sink
) -> None:
    first, _ = fakes
    metadata = "http://169.254.169.254/latest/meta-data/iam/"
    first.behave(302, b"", headers={"Location": metadata})
    before, caught = len(first.requests), sink.connections
    response = fetch(service, f"http://127.0.0.1:{first.port}/preview")
    assert response.status_code == 403, response.text
    assert "169.254.169.254:80 is not in the allow-list" in response.json()["error"]
    assert len(first.requests) == before + 1  # the first hop only
    assert sink.connections == caught


def test_a_redirect_to_a_listed_place_is_followed(service: RunningExample, fakes) -> None:
    first, second = fakes
    first.behave(302, b"", headers={"Location": f"http://127.0.0.1:{second.port}/moved"})
    second.behave(200, "here", content_type="text/plain")
    response = fetch(service, f"http://127.0.0.1:{first.port}/old")
    assert response.status_code == 200, response.text
    assert response.json()["body"] == "here"
    assert second.requests[-1].path == "/moved"


def test_a_redirect_loop_ends(service: RunningExample, fakes) -> None:
    first, _ = fakes
    first.behave(302, b"", headers={"Location": "/again"})
    before = len(first.requests)
    response = fetch(service, f"http://127.0.0.1:{first.port}/loop")
    assert response.status_code == 502
    assert len(first.requests) - before == 4  # the first request and three redirects


def test_the_guard_catches_a_connection_beyond_loopback(service: RunningExample, sink) -> None:
    """The control for the sink: an address listed on purpose (10.255.255.1:80) is
    connected to, through the proxy variables, and the sink records it. Had a refusal
    above connected anywhere but loopback, the sink would have counted it."""
    caught = sink.connections
    response = fetch(service, f"http://{GUARDED}/")
    assert response.status_code == 502  # the sink hangs up
    assert sink.connections > caught
