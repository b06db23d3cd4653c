"""Compression: negotiation, the size threshold, streaming, uploads, and the sizes table.

Every claim of docs/protocols/compression.md, checked over real sockets
against compression_producer.py, with each encoding decoded by its own
library on the test side.
"""

from __future__ import annotations

import gzip
import os
import re
import socket
import threading
import zlib
from collections.abc import Callable

import brotli
import h11
import httpx
import orjson
import pytest
import zstandard
from kit import sysdeps
from kit.examples import RunningExample, assert_output_is_shown, run_program
from kit.process import LOOPBACK, ROOT
from kit.snippets import run_script

PRODUCER = "protocols/compression_producer.py"
SIZES = "protocols/compression_sizes.py"
SNIPPETS = ROOT / "snippets" / "protocols"
PAGE = ROOT / "docs" / "protocols" / "compression.md"
ENCODINGS = ["gzip", "br", "zstd"]
BATCH = 100  # recipes per streamed chunk, as in the producer


def decompressor(encoding: str) -> Callable[[bytes], bytes]:
    """An incremental decoder: call it with each piece, it returns what it could decode."""
    if encoding == "gzip":
        return zlib.decompressobj(wbits=31).decompress
    if encoding == "br":
        return brotli.Decompressor().process
    return zstandard.ZstdDecompressor().decompressobj().decompress


def decompress(encoding: str, data: bytes) -> bytes:
    return decompressor(encoding)(data)


@pytest.fixture(scope="module")
def producer(run_shared_example) -> RunningExample:
    return run_shared_example(PRODUCER)


def fetch(url: str, accept_encoding: str | None) -> tuple[httpx.Response, bytes]:
    """GET with exactly this Accept-Encoding (or none), returning the bytes as sent."""
    with httpx.Client(timeout=30) as client:
        del client.headers["accept-encoding"]  # httpx asks for gzip, br and zstd by default
        headers = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
        with client.stream("GET", url, headers=headers) as response:
            raw = b"".join(response.iter_raw())
    return response, raw


def assert_identity(response: httpx.Response, raw: bytes, expected: bytes) -> None:
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding"
    assert raw == expected


@pytest.fixture(scope="module")
def identity_100(producer: RunningExample) -> bytes:
    response, raw = fetch(f"{producer.url}/recipes?count=100", None)
    assert len(raw) == int(response.headers["content-length"])
    assert [r["id"] for r in orjson.loads(raw)] == list(range(1, 101))
    return raw


# --- negotiation --------------------------------------------------------------


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_each_encoding_decodes_to_exactly_the_identity_bytes(
    producer: RunningExample, identity_100: bytes, encoding: str
) -> None:
    response, raw = fetch(f"{producer.url}/recipes?count=100", encoding)
    assert response.headers["content-encoding"] == encoding
    assert response.headers["vary"] == "Accept-Encoding"
    assert int(response.headers["content-length"]) == len(raw) < len(identity_100) / 5
    assert decompress(encoding, raw) == identity_100


@pytest.mark.parametrize("accept_encoding", [None, "", "identity", "IDENTITY;q=1"])
def test_nothing_is_compressed_unless_the_client_asks(
    producer: RunningExample, identity_100: bytes, accept_encoding: str | None
) -> None:
    assert_identity(*fetch(f"{producer.url}/recipes?count=100", accept_encoding), identity_100)


BAD_HEADERS = {
    "unknown coding": "foo",
    "deflate, which we do not offer": "deflate",
    "unreadable q": "gzip;q=abc",
    "q above 1": "gzip;q=1.5, br;q=2",
    "q with 4 decimals": "zstd;q=0.0001",
    "only separators": ";;;",
    "every offer refused": "br;q=0, gzip;q=0, zstd;q=0",
    "non-token characters": 'gz"ip, b r, zst(d)',
    "7 KB of junk, under Sanic's 8 KiB header limit": "x" * 7000,
    "thousands of entries": ", ".join(["foo;q=0.5"] * 700),
}


@pytest.mark.parametrize("header", BAD_HEADERS.values(), ids=BAD_HEADERS.keys())
def test_a_bad_or_unsupported_header_falls_back_to_identity(
    producer: RunningExample, identity_100: bytes, header: str
) -> None:
    assert_identity(*fetch(f"{producer.url}/recipes?count=100", header), identity_100)


def test_a_10_kb_header_is_refused_by_sanic_before_it_reaches_the_parser(
    producer: RunningExample,
) -> None:
    response, _ = fetch(f"{producer.url}/recipes?count=100", "x" * 10_000)
    assert response.status_code == 413  # Sanic's header limit: 8 KiB for all headers
    assert httpx.get(f"{producer.url}/health").status_code == 200


CHOICES = {
    "gzip, deflate, br, zstd": "zstd",  # a browser: our preference decides
    "gzip, br": "br",
    "*": "zstd",
    "GZIP": "gzip",  # case-insensitive
    "gzip ; q=0.8 , br ; Q=0.9": "br",  # whitespace around separators is allowed
    "gzip;q=0.5, br;q=0.9": "br",
    "gzip;q=1.0, zstd;q=0.999": "gzip",
    "zstd;q=0, *": "br",
    "*;q=0, gzip": "gzip",
    "identity;q=0, gzip": "gzip",
    "gzip;q=0.5, identity": "identity",  # the client prefers uncompressed
    "gzip, identity;q=0.5": "gzip",
    "foo, gzip;q=0.1": "gzip",
}


@pytest.mark.parametrize(("header", "chosen"), CHOICES.items(), ids=CHOICES.keys())
def test_the_best_accepted_encoding_is_chosen(
    producer: RunningExample, identity_100: bytes, header: str, chosen: str
) -> None:
    response, raw = fetch(f"{producer.url}/recipes?count=100", header)
    assert response.headers.get("content-encoding", "identity") == chosen
    decoded = raw if chosen == "identity" else decompress(chosen, raw)
    assert decoded == identity_100


@pytest.mark.parametrize("header", ["identity;q=0", "*;q=0", "*;q=0, foo", "gzip;q=0, *;q=0"])
def test_refusing_identity_and_everything_offered_is_406(
    producer: RunningExample, header: str
) -> None:
    for path in ["/recipes?count=100", "/recipes/stream?count=100"]:
        response, raw = fetch(producer.url + path, header)
        assert response.status_code == 406
        assert response.headers["vary"] == "Accept-Encoding"
        assert orjson.loads(raw)["message"] == (
            "identity is refused and none of zstd, br, gzip is accepted"
        )


# --- the threshold ------------------------------------------------------------


def test_bodies_under_1_kib_are_not_compressed(producer: RunningExample) -> None:
    compressed_counts = set()
    for count in range(1, 11):
        _, identity = fetch(f"{producer.url}/recipes?count={count}", None)
        response, raw = fetch(f"{producer.url}/recipes?count={count}", "gzip")
        compressed = response.headers.get("content-encoding") == "gzip"
        assert compressed == (len(identity) >= 1024), (count, len(identity))
        assert response.headers["vary"] == "Accept-Encoding"  # on both sides of the line
        assert (decompress("gzip", raw) if compressed else raw) == identity
        if compressed:
            compressed_counts.add(count)
    assert compressed_counts == set(range(6, 11))  # 5 recipes are 1,006 bytes, 6 are 1,262


@pytest.mark.parametrize(
    "query", ["count=0", "count=10001", "count=-1", "count=abc", "count=1e3", "count=%C2%B2"]
)
def test_count_out_of_range_is_400(producer: RunningExample, query: str) -> None:
    for path in ["/recipes", "/recipes/stream"]:
        response = httpx.get(f"{producer.url}{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert response.json()["message"] == "count must be an integer from 1 to 10000"


# --- streaming ---------------------------------------------------------------


def stream_chunks(
    port: int, target: str, accept_encoding: str | None, *, stop_after: int | None = None
) -> tuple[h11.Response, list[bytes]]:
    """GET over a raw socket, returning the response head and each HTTP chunk as sent."""
    connection = h11.Connection(h11.CLIENT)
    headers = [("Host", f"{LOOPBACK}:{port}"), ("Connection", "close")]
    if accept_encoding is not None:
        headers.append(("Accept-Encoding", accept_encoding))
    chunks: list[bytes] = []
    current = b""
    response = None
    with socket.create_connection((LOOPBACK, port), timeout=30) as sock:
        sock.sendall(connection.send(h11.Request(method="GET", target=target, headers=headers)))
        sock.sendall(connection.send(h11.EndOfMessage()))
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                connection.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                current += event.data
                if event.chunk_end:
                    chunks.append(current)
                    current = b""
                    if stop_after is not None and len(chunks) >= stop_after:
                        break
            elif isinstance(event, h11.EndOfMessage):
                break
    assert response is not None
    return response, chunks


@pytest.fixture(scope="module")
def identity_stream(producer: RunningExample) -> list[bytes]:
    """The uncompressed stream of 1,000 recipes, one chunk per batch of 100 lines."""
    response, chunks = stream_chunks(producer.port, "/recipes/stream?count=1000", None)
    headers = dict(response.headers)
    assert headers[b"transfer-encoding"] == b"chunked"
    assert headers[b"content-type"] == b"application/x-ndjson"
    assert headers[b"vary"] == b"Accept-Encoding"
    assert b"content-encoding" not in headers
    assert len(chunks) == 10
    assert all(chunk.count(b"\n") == BATCH and chunk.endswith(b"\n") for chunk in chunks)
    return chunks


def test_the_stream_is_the_same_recipes_as_the_buffered_list(
    producer: RunningExample, identity_stream: list[bytes]
) -> None:
    _, listed = fetch(f"{producer.url}/recipes?count=200", None)
    streamed = b"".join(identity_stream[:2]).splitlines()
    assert [orjson.loads(line) for line in streamed] == orjson.loads(listed)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_each_streamed_chunk_decompresses_on_its_own_arrival(
    producer: RunningExample, identity_stream: list[bytes], encoding: str
) -> None:
    response, chunks = stream_chunks(producer.port, "/recipes/stream?count=1000", encoding)
    assert dict(response.headers)[b"content-encoding"] == encoding.encode()
    assert len(chunks) == len(identity_stream) + 1  # one per batch, then the end of the stream
    decode = decompressor(encoding)
    for i, chunk in enumerate(chunks[:-1]):
        # Everything sent so far decodes now, to exactly the lines of this batch:
        # the client need not wait for the rest of the stream.
        assert decode(chunk) == identity_stream[i]
    assert decode(chunks[-1]) == b""
    assert sum(map(len, chunks)) < sum(map(len, identity_stream)) / 5


def test_a_client_that_leaves_mid_stream_does_no_harm(run_example) -> None:
    producer = run_example(PRODUCER)
    _, chunks = stream_chunks(producer.port, "/recipes/stream?count=10000", "br", stop_after=1)
    assert decompress("br", chunks[0]).count(b"\n") == BATCH
    assert httpx.get(f"{producer.url}/health").status_code == 200
    assert producer.stop() == 0
    assert "Traceback" not in producer.output()


def test_sigterm_lets_a_stream_in_flight_finish(run_example) -> None:
    producer = run_example(PRODUCER)
    connection = h11.Connection(h11.CLIENT)
    with socket.create_connection((LOOPBACK, producer.port), timeout=30) as sock:
        request = h11.Request(
            method="GET",
            target="/recipes/stream?count=10000",
            headers=[("Host", "x"), ("Accept-Encoding", "gzip")],
        )
        sock.sendall(connection.send(request) + connection.send(h11.EndOfMessage()))
        connection.receive_data(sock.recv(1024))  # the stream has started
        stopping = threading.Thread(target=producer.stop)
        stopping.start()
        body = b""
        while not isinstance(event := connection.next_event(), h11.EndOfMessage):
            if event is h11.NEED_DATA:
                connection.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Data):
                body += event.data
        stopping.join()
    assert decompress("gzip", body).count(b"\n") == 10_000
    assert producer.process.returncode == 0


# --- compressed uploads ----------------------------------------------------------


def upload(url: str, body: bytes, encoding: str | None = "gzip") -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if encoding:
        headers["Content-Encoding"] = encoding
    return httpx.post(f"{url}/recipes", content=body, headers=headers)


def test_upload_gzipped_or_not(producer: RunningExample, identity_100: bytes) -> None:
    expected = {"received": 100, "decompressed_bytes": len(identity_100)}
    assert upload(producer.url, gzip.compress(identity_100)).json() == expected
    assert upload(producer.url, identity_100, encoding=None).json() == expected
    assert upload(producer.url, identity_100, encoding="identity").json() == expected


def test_a_decompression_bomb_is_413_not_a_memory_spike(producer: RunningExample) -> None:
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]")  # 50 MB of JSON in about 50 KB
    assert len(bomb) < 64 * 1024
    response = upload(producer.url, bomb)
    assert response.status_code == 413
    assert response.json()["message"] == "the body exceeds 1048576 bytes once decompressed"
    just_fits = gzip.compress(b"[" + b" " * (1024 * 1024 - 2) + b"]")
    assert upload(producer.url, just_fits).json()["received"] == 0


def test_a_compressed_body_over_64_kib_is_413(producer: RunningExample) -> None:
    assert upload(producer.url, os.urandom(64 * 1024 + 1)).status_code == 413


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not gzip at all", "corrupt gzip data"),
        (gzip.compress(b"[1, 2, 3]", mtime=0)[:-6], "truncated gzip data"),
        (gzip.compress(b"[1, 2,", mtime=0), "malformed JSON"),
        (gzip.compress(b'{"not": "a list"}', mtime=0), "the body must be a JSON array of recipes"),
    ],
)
def test_bad_uploads_are_400(producer: RunningExample, body: bytes, message: str) -> None:
    response = upload(producer.url, body)
    assert response.status_code == 400
    assert response.json()["message"].startswith(message)


def test_malformed_json_without_compression_is_400(producer: RunningExample) -> None:
    assert upload(producer.url, b'[{"id": 1},', encoding=None).status_code == 400


@pytest.mark.parametrize("encoding", ["br", "zstd", "deflate", "gzip, gzip", "compress"])
def test_an_upload_encoding_other_than_gzip_is_415(producer: RunningExample, encoding) -> None:
    response = upload(producer.url, b"[]", encoding=encoding)
    assert response.status_code == 415
    assert response.headers["accept-encoding"] == "gzip"


def test_unknown_route_404_wrong_method_405(producer: RunningExample) -> None:
    assert httpx.get(f"{producer.url}/nope").status_code == 404
    assert httpx.delete(f"{producer.url}/recipes").status_code == 405
    assert httpx.post(f"{producer.url}/recipes/stream", content=b"[]").status_code == 405


# --- the sizes table -------------------------------------------------------------


ROW = re.compile(r"^\| (?P<label>[^|]+?) \| (?P<identity>[\d,]+) \|(?P<rest>.*)\|$", re.M)


def parse_table(text: str) -> dict[str, dict[str, int]]:
    table = {}
    for row in ROW.finditer(text):
        sizes = [int(cell.split()[0].replace(",", "")) for cell in row["rest"].split("|")]
        table[row["label"]] = {"identity": int(row["identity"].replace(",", ""))} | dict(
            zip(ENCODINGS, sizes, strict=True)
        )
    return table


@pytest.fixture(scope="module")
def sizes_output() -> str:
    return run_program(SIZES)


def test_tiny_payloads_grow_and_large_ones_shrink(sizes_output: str) -> None:
    table = parse_table(sizes_output)
    assert list(table) == [
        "health answer",
        "404 error",
        "1 recipe",
        "10 recipes",
        "100 recipes",
        "1,000 recipes",
        "10,000 recipes",
    ]
    for encoding in ENCODINGS:
        tiny, large = table["health answer"], table["10,000 recipes"]
        assert tiny[encoding] > tiny["identity"], encoding  # headers and checksums cost more
        assert large[encoding] < large["identity"] / 10, encoding
        assert table["404 error"][encoding] >= table["404 error"]["identity"]
        assert table["1 recipe"][encoding] < table["1 recipe"]["identity"]


def test_the_table_gives_the_bytes_the_producer_sends(
    producer: RunningExample, sizes_output: str
) -> None:
    table = parse_table(sizes_output)
    for count, label in [(10, "10 recipes"), (100, "100 recipes"), (1000, "1,000 recipes")]:
        for encoding in ["identity", *ENCODINGS]:
            _, raw = fetch(f"{producer.url}/recipes?count={count}", encoding)
            assert len(raw) == table[label][encoding], (label, encoding)


def test_the_page_shows_todays_sizes(sizes_output: str) -> None:
    bench = (SNIPPETS / "bench_compression_sizes.md").read_text()
    assert sizes_output.strip() in bench, "sizes changed: rerun ./nox -s bench -- compression_sizes"


# --- the commands the page gives ---------------------------------------------------


def test_try_script_prints_what_the_page_shows(run_example) -> None:
    sysdeps.require("curl")
    producer = run_example(PRODUCER)
    result = run_script(SNIPPETS / "compression_try.sh", {"RECIPE_API": producer.url})
    assert_output_is_shown(result.stdout, SNIPPETS / "compression_try.out")


def test_every_snippet_of_this_page_is_included_by_it() -> None:
    page = PAGE.read_text()
    for name in ["compression_try.sh", "compression_try.out", "bench_compression_sizes.md"]:
        assert f'--8<-- "snippets/protocols/{name}"' in page
