# 10 connections, each sending its next request as soon as the previous one is
# answered (a closed loop), for 10 seconds, against recipe-api on port 4000.
npx autocannon -c 10 -d "${DURATION:-10}" "${URL:-http://127.0.0.1:4000/recipes/42}"
