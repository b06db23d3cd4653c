"""GET /recipes/42 with FastAPI, served by uvicorn (uvloop, httptools, no access log).

The return type is a pydantic model: FastAPI serializes it to JSON bytes with
pydantic-core, its fastest path (ORJSONResponse is deprecated for it).
Run: HOST=127.0.0.1 PORT=4004 python bench/why_distributed/server_fastapi.py
"""

from __future__ import annotations

import os
import signal
from typing import Annotated

import uvicorn
from fastapi import FastAPI, HTTPException, Path
from pydantic import BaseModel


class Ingredient(BaseModel):
    id: int
    name: str
    quantity: str


class Recipe(BaseModel):
    id: int
    name: str
    steps: str
    ingredients: list[Ingredient]


class RecipeAnswer(BaseModel):
    producer_pid: int
    recipe: Recipe


RECIPES = {
    42: Recipe(
        id=42,
        name="Chicken Tikka Masala",
        steps="Throw it in a pot...",
        ingredients=[
            Ingredient(id=1, name="Chicken", quantity="1 lb"),
            Ingredient(id=2, name="Sauce", quantity="2 cups"),
        ],
    ),
}

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/recipes/{recipe_id}")
async def get_recipe(recipe_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> RecipeAnswer:
    recipe = RECIPES.get(recipe_id)
    if recipe is None:
        raise HTTPException(404, f"no recipe with id {recipe_id}")
    return RecipeAnswer(producer_pid=os.getpid(), recipe=recipe)


if __name__ == "__main__":
    # uvicorn sends itself the stop signal again once it has shut down gracefully;
    # a handler that does nothing turns that into a normal exit, code 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    uvicorn.run(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "4004")),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
