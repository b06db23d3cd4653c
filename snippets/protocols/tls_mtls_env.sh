export TARGET=https://localhost:4444
export TLS_CLIENT_CERT=certs/client.pem TLS_CLIENT_KEY=certs/client.key
