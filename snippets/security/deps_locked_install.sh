# The lock, with a SHA-256 for every file it allows (uv export writes them by default)
uv export --only-group services --format requirements-txt --no-emit-project --locked --quiet -o requirements.lock.txt
# Every package pinned and every file checked against the lock; wheels only
pip install --require-hashes --only-binary :all: -r requirements.lock.txt
