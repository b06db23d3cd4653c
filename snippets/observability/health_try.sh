SERVICE=${SERVICE:-http://127.0.0.1:4000}
# The body, then the HTTP status on a line of its own
curl -s -w '\n%{http_code}\n' "$SERVICE/health"
