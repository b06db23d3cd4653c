# For comparison only (the figures of `./nox -s bench -- container_images`): recipe-api
# in one stage. Whatever the build leaves (here: the requirements file) stays in the image.
ARG BASE=python:3.13-slim
FROM ${BASE}
WORKDIR /app
COPY requirements/services.txt requirements.txt
RUN --mount=type=secret,id=pip_cert \
    if [ -f /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && python3 -m venv /venv \
    && /venv/bin/pip install --no-cache-dir --disable-pip-version-check -r requirements.txt
COPY examples/why_distributed/recipe_api.py recipe_api.py
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 HOST=0.0.0.0 PORT=4000
USER 10001
EXPOSE 4000
CMD ["python3", "recipe_api.py"]
