# Clients trust our CA for this registry only: a directory with the CA as ca.crt.
mkdir -p /tmp/recipe-registry/trust
cp /tmp/recipe-registry/certs/ca.pem /tmp/recipe-registry/trust/ca.crt
# Two tags for one image: the version, and the version with the commit it was built from.
podman tag recipe-api:0.1.0 127.0.0.1:5000/recipe-api:0.1.0
podman tag recipe-api:0.1.0 127.0.0.1:5000/recipe-api:0.1.0-git.$(git rev-parse --short HEAD)
echo "$REGISTRY_PASSWORD" | podman login --cert-dir /tmp/recipe-registry/trust --username ci --password-stdin 127.0.0.1:5000
podman push --cert-dir /tmp/recipe-registry/trust 127.0.0.1:5000/recipe-api:0.1.0
podman push --cert-dir /tmp/recipe-registry/trust 127.0.0.1:5000/recipe-api:0.1.0-git.$(git rev-parse --short HEAD)
# Gone from this machine, then back from the registry, and run:
podman rmi 127.0.0.1:5000/recipe-api:0.1.0
podman pull --cert-dir /tmp/recipe-registry/trust 127.0.0.1:5000/recipe-api:0.1.0
podman run --rm 127.0.0.1:5000/recipe-api:0.1.0 python3 -c "import recipe_api; print('ok')"
