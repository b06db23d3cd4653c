# From snippets/containers: the pair, built if needed, in the background.
podman-compose --project-name recipes up -d recipe-api web-api
curl --silent --retry 5 --retry-connrefused --retry-delay 1 --write-out '\n' http://127.0.0.1:3000/
podman-compose --project-name recipes down
