# Test-only stand-in for the official redis:7-bookworm image (no public registry is
# reachable on the test machines): Debian 12's Redis 7, the same data directory,
# and protected mode off as the official image has it, so other containers connect.
ARG BASE=localhost/debian-python:bookworm
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir /data && chown redis:redis /data \
    && printf '#!/bin/sh\nexec /usr/bin/redis-server "$@" --protected-mode no\n' \
        > /usr/local/bin/redis-server \
    && chmod 755 /usr/local/bin/redis-server
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
