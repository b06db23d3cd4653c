# A file written in a container's own layer goes when the container goes:
podman run --name scratch python:3.13-slim python3 -c "open('/srv/note', 'w').write('hello')"
podman rm scratch
podman run --rm python:3.13-slim ls -A /srv
# A file on a named volume outlives every container that used it:
podman volume create notes
podman run --rm -v notes:/srv python:3.13-slim python3 -c "open('/srv/note', 'w').write('hello')"
podman run --rm -v notes:/srv python:3.13-slim cat /srv/note
podman volume rm notes
