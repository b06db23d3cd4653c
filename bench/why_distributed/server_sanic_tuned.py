"""GET /recipes/42 with Sanic, set up for speed as far as a production service would go.

Against recipe-api: the answer is encoded by orjson straight into a plain
`HTTPResponse` (no `json()` helper), objects that live for the whole run are
frozen out of the garbage collector's sight (`gc.freeze()`), and nothing else:
one process, no access log, no debug, no banner, as recipe-api already runs.
`ASGI=1` serves the same app with uvicorn (uvloop, httptools) instead of Sanic's server.
Run: HOST=127.0.0.1 PORT=4007 python bench/why_distributed/server_sanic_tuned.py
"""

from __future__ import annotations

import gc
import os
import signal

import orjson
from sanic import Request, Sanic
from sanic.exceptions import NotFound
from sanic.response import HTTPResponse

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

app = Sanic("recipe-api-tuned", dumps=orjson.dumps)
app.config.FALLBACK_ERROR_FORMAT = "json"
app.config.MOTD = False


@app.get("/recipes/<recipe_id:int>")
async def get_recipe(request: Request, recipe_id: int) -> HTTPResponse:
    recipe = RECIPES.get(recipe_id)
    if recipe is None:
        raise NotFound(f"no recipe with id {recipe_id}")
    body = orjson.dumps({"producer_pid": os.getpid(), "recipe": recipe})
    return HTTPResponse(body, content_type="application/json")


@app.after_server_start
async def freeze(app: Sanic) -> None:
    gc.freeze()  # what exists now (modules, routes, the app) is never scanned again


if __name__ == "__main__":
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "4007"))
    if os.environ.get("ASGI") == "1":
        import uvicorn

        signal.signal(signal.SIGTERM, lambda *_: None)  # see server_starlette.py
        uvicorn.run(
            app,
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level="warning",
        )
    else:
        app.run(host=host, port=port, single_process=True, access_log=False, debug=False)
