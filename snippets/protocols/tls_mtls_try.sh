PORT=${PORT:-4444}
# No client certificate: the server hangs up
curl -sS --cacert certs/ca.pem https://localhost:$PORT/recipes/42
# web-api's certificate: the recipe, and who the server says we are
curl -sS --cacert certs/ca.pem --cert certs/client.pem --key certs/client.key \
  https://localhost:$PORT/recipes/42; echo
