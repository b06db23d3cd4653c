RECIPE_API=${RECIPE_API:-http://127.0.0.1:4001}

# A query with a variable: the answer has the shape of the question.
curl -s -w ' HTTP %{http_code}\n' "$RECIPE_API/graphql" --json \
  '{"query": "query ($id: ID!) { recipe(id: $id) { name ingredients { name } } }",
    "variables": {"id": "42"}}'

# A field whose resolver fails: the rest of the data, and an error with its path.
curl -s -w ' HTTP %{http_code}\n' "$RECIPE_API/graphql" --json \
  '{"query": "{ recipe(id: 42) { name calories } }"}'

# A field the schema does not have: refused before anything runs.
curl -s -w ' HTTP %{http_code}\n' "$RECIPE_API/graphql" --json \
  '{"query": "{ recipe(id: 42) { name chef } }"}'

# A mutation, with an input object in a variable.
curl -s -w ' HTTP %{http_code}\n' "$RECIPE_API/graphql" --json \
  '{"query": "mutation ($r: RecipeInput!) { addRecipe(recipe: $r) { id ingredients { id name } } }",
    "variables": {"r": {"name": "Chicken Soup", "steps": "Simmer.", "ingredients": [
      {"name": "Chicken", "quantity": "500 g"}, {"name": "Leek", "quantity": "1"}]}}}'
