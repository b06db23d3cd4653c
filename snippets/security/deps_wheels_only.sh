# From an index or a folder that has only an sdist of the package: refused,
# and nothing of it runs (pip's exit code 1, "No matching distribution")
pip install --only-binary :all: pydantic-setings
