"""GET /recipes/42 with Starlette, served by uvicorn (uvloop, httptools, no access log).

Also served by Granian's ASGI interface: `GRANIAN=1`.
Run: HOST=127.0.0.1 PORT=4003 python bench/why_distributed/server_starlette.py
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

RECIPES = {
    42: {
        "id": 42,
        "name": "Chicken Tikka Masala",
        "steps": "Throw it in a pot...",
        "ingredients": [
            {"id": 1, "name": "Chicken", "quantity": "1 lb"},
            {"id": 2, "name": "Sauce", "quantity": "2 cups"},
        ],
    },
}


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


async def get_recipe(request: Request) -> Response:
    recipe = RECIPES.get(request.path_params["recipe_id"])
    if recipe is None:
        raise HTTPException(404, "no such recipe")
    return JSONResponse({"producer_pid": os.getpid(), "recipe": recipe})


app = Starlette(routes=[Route("/recipes/{recipe_id:int}", get_recipe, methods=["GET"])])

if __name__ == "__main__":
    # uvicorn sends itself the stop signal again once it has shut down gracefully;
    # a handler that does nothing turns that into a normal exit, code 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "4003"))
    if os.environ.get("GRANIAN") == "1":
        from granian.constants import Interfaces, Loops
        from granian.server import Server

        Server(
            f"{Path(__file__).stem}:app",
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            loop=Loops.uvloop,
            websockets=False,
            log_access=False,
        ).serve()
    else:
        import uvicorn

        uvicorn.run(
            app,
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
        )
