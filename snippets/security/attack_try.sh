SERVICE=${SERVICE:-http://127.0.0.1:4000}
# Each answer: the JSON body, then the HTTP status on a line of its own.
# A recipe with a field the schema does not know:
curl -s -w '\n%{http_code}\n' -X POST "$SERVICE/recipes" -H 'Content-Type: application/json' \
    -d '{"name": "Soup", "ingredients": [{"name": "leek", "quantity": "2"}], "admin": true}'
# A name too long, no ingredients, a tag that is not a slug:
curl -s -w '\n%{http_code}\n' -X POST "$SERVICE/recipes" -H 'Content-Type: application/json' \
    -d '{"name": "'"$(printf 'x%.0s' $(seq 101))"'", "ingredients": [], "tags": ["A B"]}'
# A query parameter that is not a number:
curl -s -w '\n%{http_code}\n' "$SERVICE/recipes?limit=ten"
