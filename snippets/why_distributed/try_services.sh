RECIPE_API=${RECIPE_API:-http://127.0.0.1:4000}
WEB_API=${WEB_API:-http://127.0.0.1:3000}
curl -s "$RECIPE_API/recipes/42"; echo
curl -s "$WEB_API/"; echo
curl -s "$RECIPE_API/recipes/0"; echo
curl -s "$RECIPE_API/recipes/7"; echo
