"""GET /recipes/42 on Granian's own interface (RSGI): HTTP in Rust, the handler in Python.

Run: HOST=127.0.0.1 PORT=4006 python bench/why_distributed/server_granian_rsgi.py
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
from granian.constants import Interfaces, Loops
from granian.server import Server

RECIPES = {
    "/recipes/42": {
        "id": 42,
        "name": "Chicken Tikka Masala",
        "steps": "Throw it in a pot...",
        "ingredients": [
            {"id": 1, "name": "Chicken", "quantity": "1 lb"},
            {"id": 2, "name": "Sauce", "quantity": "2 cups"},
        ],
    },
}
HEADERS = [("content-type", "application/json")]


async def app(scope, protocol) -> None:  # RSGI: scope and protocol from Granian
    recipe = RECIPES.get(scope.path) if scope.method == "GET" else None
    if recipe is None:
        protocol.response_bytes(404, HEADERS, b'{"error": "not found"}')
    else:
        body = orjson.dumps({"producer_pid": os.getpid(), "recipe": recipe})
        protocol.response_bytes(200, HEADERS, body)


if __name__ == "__main__":
    Server(
        f"{Path(__file__).stem}:app",
        address=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "4006")),
        interface=Interfaces.RSGI,
        loop=Loops.uvloop,
        websockets=False,
        log_access=False,
    ).serve()
