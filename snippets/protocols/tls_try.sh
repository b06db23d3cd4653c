PORT=${PORT:-4443}
# Trusting our CA: the recipe, and what the connection negotiated
curl -sS --cacert certs/ca.pem https://localhost:$PORT/recipes/42; echo
# By IP address: checked against the certificate's IP entry, and no SNI is sent
curl -sS --cacert certs/ca.pem https://127.0.0.1:$PORT/recipes/42; echo
# Trusting only the system's CAs: refused
curl -sS https://localhost:$PORT/recipes/42
# Plain HTTP to the TLS port: the connection is closed
curl -sS http://localhost:$PORT/health
