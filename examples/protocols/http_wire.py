"""HTTP/1.1 on the wire: two requests and two responses, byte for byte.

Opens one TCP connection to recipe-api with nothing but the `socket` module,
sends `GET /recipes/42` and then `GET /recipes/7` on the same connection, and
prints the exact bytes that went each way, with every `\\r\\n` made visible.
The first request leaves the connection open (HTTP/1.1 keeps it alive by
default); the second asks the server to close it after answering.

Run it (with recipe-api listening on port 4000):

    python examples/protocols/http_wire.py

Environment:

- `TARGET`: base URL of recipe-api (default `http://127.0.0.1:4000`).

It reads responses framed by `Content-Length`, which is what recipe-api sends;
a real client also handles `Transfer-Encoding: chunked`, redirects, TLS and
much more, which is why you use one (httpx) everywhere else.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

TARGET = os.environ.get("TARGET", "http://127.0.0.1:4000")


# --8<-- [start:request]
def build_request(path: str, host: str, *, close: bool = False) -> bytes:
    """A request is text: a request line, header lines, a blank line. Each ends in CRLF."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}",  # the only header HTTP/1.1 requires
        "User-Agent: http_wire.py",
        "Accept: application/json",
    ]
    if close:
        lines.append("Connection: close")  # without it, the server keeps the connection open
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


# --8<-- [end:request]


# --8<-- [start:response]
def read_response(sock: socket.socket, buffer: bytearray) -> bytes:
    """Read one response: the head up to the blank line, then Content-Length bytes.

    Bytes that arrive after it stay in `buffer`: on a kept-alive connection they
    belong to the next response. The body has no terminator of its own, so the
    length header is the only way to know where one response ends.
    """
    while b"\r\n\r\n" not in buffer:
        buffer += receive(sock)
    head_end = buffer.index(b"\r\n\r\n") + 4
    length = 0
    for line in bytes(buffer[:head_end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(buffer) < head_end + length:
        buffer += receive(sock)
    response = bytes(buffer[: head_end + length])
    del buffer[: head_end + length]
    return response


def receive(sock: socket.socket) -> bytes:
    # Small reads on purpose: TCP delivers a stream of bytes, not messages, and a
    # response can arrive in any number of pieces. The loops above must not care.
    chunk = sock.recv(100)
    if not chunk:
        message = "the server closed the connection in the middle of a response"
        raise ConnectionError(message)
    return chunk


# --8<-- [end:response]


def show(label: str, data: bytes) -> None:
    """Print bytes one line per CRLF-terminated line, with the CRLF shown as \\r\\n."""
    print(f"{label} ({len(data)} bytes)")
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        print(line.decode("ascii", "backslashreplace") + "\\r\\n")
    print("\\r\\n")
    body = data.split(b"\r\n\r\n", 1)[1]
    if body:
        print(body.decode("utf-8", "backslashreplace"))


# --8<-- [start:main]
def main() -> None:
    url = urlsplit(TARGET)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    with socket.create_connection((host, port), timeout=5) as sock:
        local_port = sock.getsockname()[1]
        buffer = bytearray()
        requests = [("/recipes/42", False), ("/recipes/7", True)]  # (path, close after)
        for number, (path, close) in enumerate(requests, 1):
            request = build_request(path, url.netloc, close=close)
            sock.sendall(request)
            show(f">>> request {number}", request)
            show(f"<<< response {number}", read_response(sock, buffer))
        closed = sock.recv(1) == b""  # the server closes after "Connection: close"
    print(f"both exchanges used one connection, from local port {local_port}")
    print(f"closed by the server after the second response: {closed}")


# --8<-- [end:main]

if __name__ == "__main__":
    main()
