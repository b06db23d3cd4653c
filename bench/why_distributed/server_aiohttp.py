"""GET /recipes/42 with aiohttp's own server on uvloop, no access log.

Run: HOST=127.0.0.1 PORT=4005 python bench/why_distributed/server_aiohttp.py
"""

from __future__ import annotations

import os

import orjson
import uvloop
from aiohttp import web

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

routes = web.RouteTableDef()


@routes.get(r"/recipes/{recipe_id:\d+}")
async def get_recipe(request: web.Request) -> web.Response:
    recipe = RECIPES.get(int(request.match_info["recipe_id"]))
    if recipe is None:
        raise web.HTTPNotFound(text='{"error": "no such recipe"}', content_type="application/json")
    body = orjson.dumps({"producer_pid": os.getpid(), "recipe": recipe})
    return web.Response(body=body, content_type="application/json")


app = web.Application()
app.add_routes(routes)

if __name__ == "__main__":
    web.run_app(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "4005")),
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )
