"""Validating a recipe by hand: what recipe-api's pydantic model does for you.

recipe-api (`http_producer.py`) checks a POSTed recipe with two small pydantic
models. This is the same check written out by hand, as an earlier version of
recipe-api did it: every rule the models state in one line each (the known
fields, the required ones, types, lengths, how many ingredients) becomes a
branch here, and each problem is reported with where it is. It prints the
problems it finds in a few bodies; the tests check that it finds the same
fields as the models.

Run it:

    python examples/protocols/http_validation_by_hand.py
"""

from __future__ import annotations

import json

# --8<-- [start:fields]
RECIPE_FIELDS = {"name", "steps", "ingredients"}
INGREDIENT_FIELDS = {"name", "quantity"}
MAX_LENGTH = {"name": 100, "steps": 2000, "quantity": 50}  # characters, per text field
MAX_INGREDIENTS = 50
Problem = dict[str, str]


def object_problems(obj: dict, fields: set[str], where: str = "") -> list[Problem]:
    """Unknown fields, missing fields and bad text fields of one JSON object."""
    unknown, missing = obj.keys() - fields, fields - obj.keys()
    problems = [{"field": where + f, "problem": "unknown field"} for f in unknown]
    problems += [{"field": where + f, "problem": "is required"} for f in missing]
    for name in sorted(fields & obj.keys() & MAX_LENGTH.keys()):
        value, limit = obj[name], MAX_LENGTH[name]
        if not isinstance(value, str):
            problem = "must be a string"
        elif not value.strip() or len(value.strip()) > limit:
            problem = f"must be 1 to {limit} characters"
        else:
            continue
        problems.append({"field": where + name, "problem": problem})
    return sorted(problems, key=lambda problem: problem["field"])


# --8<-- [end:fields]


# --8<-- [start:recipe]
def recipe_problems(body: object) -> list[Problem]:
    """Everything wrong with a POSTed recipe; an empty list means it is valid."""
    if not isinstance(body, dict):
        return [{"field": "(body)", "problem": "must be a JSON object"}]
    problems = object_problems(body, RECIPE_FIELDS)
    ingredients = body.get("ingredients")
    is_list = isinstance(ingredients, list)
    if "ingredients" not in body:
        pass  # already reported as required
    elif not is_list or not 0 < len(ingredients) <= MAX_INGREDIENTS:
        problem = f"must be a list of 1 to {MAX_INGREDIENTS} ingredients"
        problems.append({"field": "ingredients", "problem": problem})
    else:
        for i, item in enumerate(ingredients):
            if isinstance(item, dict):
                where = f"ingredients[{i}]."
                problems += object_problems(item, INGREDIENT_FIELDS, where)
            else:
                problem = {"field": f"ingredients[{i}]", "problem": "must be an object"}
                problems.append(problem)
    return problems


# --8<-- [end:recipe]

EXAMPLES = [
    {"name": "", "servings": 4, "ingredients": [{"name": "Eggs"}]},
    {"name": "Pancakes", "steps": "Mix.", "ingredients": ["flour", {"name": 2}]},
]


def main() -> None:
    for body in EXAMPLES:
        print(json.dumps(body))
        for problem in recipe_problems(body):
            print(f"  {problem['field']}: {problem['problem']}")


if __name__ == "__main__":
    main()
