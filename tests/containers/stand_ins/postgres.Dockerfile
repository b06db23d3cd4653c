# Test-only stand-in for the official postgres:15-bookworm image (no public registry
# is reachable on the test machines): Debian 12's PostgreSQL 15 with the official
# image's contract that compose.yaml relies on: POSTGRES_PASSWORD required, a cluster
# made on first start in PGDATA (a volume), password auth over the network.
ARG BASE=localhost/debian-python:bookworm
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
    && chmod 700 /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/15/bin:$PATH PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
USER postgres
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
