# From examples/deployments/recipe_api_package. Where to upload and as whom come from the
# environment: TWINE_REPOSITORY_URL, TWINE_USERNAME, TWINE_PASSWORD, and INDEX_URL to install.
# --8<-- [start:build]
python -m build --wheel
# --8<-- [end:build]
# --8<-- [start:upload]
python -m twine upload --non-interactive dist/*.whl
# --8<-- [end:upload]
# --8<-- [start:install]
# Elsewhere (a server, a CI job): a new directory, a new environment, only the private index.
cd "$(mktemp -d)"
python -m venv venv
venv/bin/pip install --index-url "$INDEX_URL" dp-recipe-api
venv/bin/recipe-api --version
# --8<-- [end:install]
