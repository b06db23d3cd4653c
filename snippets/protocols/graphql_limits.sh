RECIPE_API=${RECIPE_API:-http://127.0.0.1:4001}

# Seven fields deep, round the Recipe -> Ingredient -> Recipe cycle.
curl -s -w ' HTTP %{http_code}\n' "$RECIPE_API/graphql" --json \
  '{"query": "{ recipe(id: 42) { ingredients { usedIn { ingredients { usedIn { ingredients { name } } } } } } }"}'

# Shallow, but a hundred recipes, each with its ingredients.
curl -s -w ' HTTP %{http_code}\n' "$RECIPE_API/graphql" --json \
  '{"query": "{ recipes(limit: 100) { name ingredients { name } } }"}'
