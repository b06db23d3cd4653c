FRONTEND_PORT=${FRONTEND_PORT:-8443}
CERT_DIR=${CERT_DIR:-certs}
# Trusting our CA: the service's answer, with the headers HAProxy added
curl -sS --cacert "$CERT_DIR/ca.pem" "https://localhost:$FRONTEND_PORT/slow?ms=0"; echo
# Trusting only the system's CAs: refused
curl -sS "https://localhost:$FRONTEND_PORT/slow?ms=0"
