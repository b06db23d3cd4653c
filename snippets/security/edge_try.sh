FRONTEND_PORT=${FRONTEND_PORT:-443}
HTTP_PORT=${HTTP_PORT:-80}
CERT_DIR=${CERT_DIR:-certs}
# The headers of an HTML page and of a JSON answer, over HTTPS (trusting our CA)
curl -sS -o /dev/null -D - --cacert "$CERT_DIR/ca.pem" "https://localhost:$FRONTEND_PORT/graphql"
curl -sS -o /dev/null -D - --cacert "$CERT_DIR/ca.pem" "https://localhost:$FRONTEND_PORT/health"
# Plain HTTP: a redirect, and nothing else
curl -sS -o /dev/null -D - "http://localhost:$HTTP_PORT/graphql"
