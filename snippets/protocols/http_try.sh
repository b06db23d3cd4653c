RECIPE_API=${RECIPE_API:-http://127.0.0.1:4000}
status='\n%{http_code}\n'
# A new recipe: 201 Created, and the address of the new resource in Location
curl -s -w '\n%{http_code} Location: %header{location}\n' "$RECIPE_API/recipes" \
  -H 'Content-Type: application/json' \
  -d '{"name": "Pancakes", "steps": "Mix, rest, fry.", "ingredients": [{"name": "Flour", "quantity": "200 g"}]}'
# The same POST again: POST is not idempotent, and the name must be unique
curl -s -w "$status" "$RECIPE_API/recipes" -H 'Content-Type: application/json' \
  -d '{"name": "pancakes", "steps": "Mix, rest, fry.", "ingredients": [{"name": "Flour", "quantity": "200 g"}]}'
# JSON, but not a recipe: 422, with every problem
curl -s -w "$status" "$RECIPE_API/recipes" -H 'Content-Type: application/json' \
  -d '{"name": "", "servings": 4, "ingredients": [{"name": "Eggs"}]}'
# Not JSON at all: 400
curl -s -w "$status" "$RECIPE_API/recipes" -H 'Content-Type: application/json' \
  -d '{"name": "Pancakes",'
# Not labelled as JSON: 415
curl -s -w "$status" "$RECIPE_API/recipes" -H 'Content-Type: text/plain' -d 'Pancakes'
# A client that only takes HTML: 406
curl -s -w "$status" "$RECIPE_API/recipes/42" -H 'Accept: text/html'
