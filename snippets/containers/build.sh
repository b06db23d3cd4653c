# From the repository root (the build context: .dockerignore keeps all but three files out).
# --format docker: podman's default image format (OCI) has no HEALTHCHECK.
podman build --format docker -f snippets/containers/recipe_api.Dockerfile -t recipe-api:0.1.0 .
podman build --format docker -f snippets/containers/web_api.Dockerfile -t web-api:0.1.0 .
