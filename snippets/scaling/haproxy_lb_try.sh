FRONTEND_PORT=${FRONTEND_PORT:-8000}
STATS_PORT=${STATS_PORT:-8404}
# Six requests: the pid in each answer says which process served it
for i in 1 2 3 4 5 6; do
  curl -sS http://127.0.0.1:$FRONTEND_PORT/recipes/42 | python -c 'import json, sys; print(json.load(sys.stdin)["producer_pid"])'
done
# The stats page as CSV, the backend's rows: proxy, server, sessions so far (stot), status
curl -sS "http://127.0.0.1:$STATS_PORT/stats;csv" | cut -d, -f1,2,8,18 | grep -e "^#" -e "^recipe_api"
