CERT_DIR=${CERT_DIR:-certs}
# A private CA, and a server certificate for 127.0.0.1 and localhost (chapter 2)
python examples/protocols/tls_certs.py "$CERT_DIR"
# HAProxy wants the certificate and its private key in one PEM file, private to its owner
(umask 077 && cat "$CERT_DIR/server.pem" "$CERT_DIR/server.key" > "$CERT_DIR/haproxy.pem")
