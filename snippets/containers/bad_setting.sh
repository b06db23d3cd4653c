# A bad setting: the container stops at once with exit code 2, and its log says why.
podman run --name bad -e PORT=abc recipe-api:0.1.0
podman logs bad
podman rm bad
