# recipe-api's image. Build from the repository root:
#   podman build -f snippets/containers/recipe_api.Dockerfile -t recipe-api:0.1.0 .
# (docker build takes the same arguments.)
ARG BASE=python:3.13-slim

# --- build stage: a virtual environment with the locked dependencies --------------
FROM ${BASE} AS build
WORKDIR /build
# The lock file first, the code later: this layer and the next are rebuilt only
# when the dependencies change, not on every code change.
COPY requirements/services.txt requirements.txt
# A network whose proxy re-signs TLS (a company proxy, our CI) needs its CA to reach
# PyPI: pass it as a build secret (--secret id=pip_cert,src=FILE). It is mounted for
# this one command and is in no layer of the image.
RUN --mount=type=secret,id=pip_cert \
    if [ -f /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && python3 -m venv /venv \
    && /venv/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.txt

# --- release stage: the venv and the program, nothing else ------------------------
FROM ${BASE}
# A user of its own: a process that breaks out of the app is not root.
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /venv /venv
COPY examples/why_distributed/recipe_api.py /app/recipe_api.py
WORKDIR /app
# 0.0.0.0 inside the container: its own network namespace. Publish the port on the
# host's loopback only (podman run -p 127.0.0.1:4000:4000).
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 HOST=0.0.0.0 PORT=4000
USER 10001
EXPOSE 4000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=3 \
    CMD ["python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:4000/health', timeout=2)"]
# Exec form: python3 is PID 1 and receives SIGTERM itself.
CMD ["python3", "recipe_api.py"]
