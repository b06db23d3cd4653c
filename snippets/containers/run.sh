# A network of their own: containers on it find each other by name.
podman network create recipes
podman run -d --name recipe --network recipes recipe-api:0.1.0
podman run -d --name web --network recipes -p 127.0.0.1:3000:3000 -e TARGET=http://recipe:4000 web-api:0.1.0
curl --silent --retry 5 --retry-connrefused --retry-delay 1 --write-out '\n' http://127.0.0.1:3000/
# Stop the caller first, then what it calls; SIGTERM, and SIGKILL after 10 s.
podman stop web
podman stop recipe
podman rm web
podman rm recipe
podman network rm recipes
