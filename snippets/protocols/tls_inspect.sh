# What the server certificate says, and who signed it
openssl x509 -in certs/server.pem -noout -subject -issuer -ext subjectAltName
# Does it chain to our CA?
openssl verify -CAfile certs/ca.pem certs/server.pem
