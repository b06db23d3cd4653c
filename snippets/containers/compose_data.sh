# From snippets/containers, with POSTGRES_PASSWORD set: what the named volume keeps.
set -euo pipefail
sql() {  # psql in a one-off container (no TTY: -T) on the project network
    podman-compose run --rm -T -e PGPASSWORD="$POSTGRES_PASSWORD" postgres \
        psql --host postgres --username postgres --tuples-only --no-align --command "$1"
}
ready() {  # the server takes a moment after `up`: ask until it answers (at most 10 s)
    for _ in $(seq 20); do sql 'select 1' >/dev/null 2>&1 && return; sleep 0.5; done
    sql 'select 1'
}
podman-compose up -d postgres
ready
sql "create table notes (body text); insert into notes values ('written before down')"
podman-compose down  # containers and network go; named volumes stay
podman-compose up -d postgres
ready
sql 'select body from notes'
podman-compose down --volumes  # and now the data goes too
