"""The limit: GET /recipes/42 on a bare asyncio protocol, uvloop and httptools, no framework.

No routing table, no request object, no error pages, no limits, no graceful
drain: what is left of a Python web server once a framework is taken away.
Run: HOST=127.0.0.1 PORT=4002 python bench/why_distributed/server_bare.py
"""

from __future__ import annotations

import asyncio
import os
import signal

import httptools
import orjson
import uvloop

RECIPE = {
    "id": 42,
    "name": "Chicken Tikka Masala",
    "steps": "Throw it in a pot...",
    "ingredients": [
        {"id": 1, "name": "Chicken", "quantity": "1 lb"},
        {"id": 2, "name": "Sauce", "quantity": "2 cups"},
    ],
}
NOT_FOUND = orjson.dumps({"error": "not found"})


def response(status: bytes, body: bytes) -> bytes:
    head = b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    return head % (status, len(body)) + body


class Recipes(asyncio.Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(response(b"400 Bad Request", b'{"error":"bad request"}'))
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url = url

    def on_message_complete(self) -> None:
        if self.parser.get_method() == b"GET" and self.url == b"/recipes/42":
            body = orjson.dumps({"producer_pid": os.getpid(), "recipe": RECIPE})
            self.transport.write(response(b"200 OK", body))
        else:
            self.transport.write(response(b"404 Not Found", NOT_FOUND))
        if not self.parser.should_keep_alive():
            self.transport.close()


async def main() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "4002"))
    server = await loop.create_server(Recipes, host, port)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    uvloop.run(main())
