# From the repository root. Certificates from chapter 2's script: a CA of our own and a
# server certificate for localhost and 127.0.0.1.
python examples/protocols/tls_certs.py /tmp/recipe-registry/certs
# One user, "ci", its password from the environment (bcrypt, which the registry requires).
htpasswd -Bbn ci "$REGISTRY_PASSWORD" > /tmp/recipe-registry/htpasswd
# In its own terminal (it runs in the foreground):
docker-registry serve snippets/containers/registry.yml
