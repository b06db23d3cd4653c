# From the repository root: one commit built once, then released to staging and production.
set -euo pipefail
python examples/deployments/pipeline.py build HEAD
build=deploy/builds/$(ls deploy/builds | grep -- "-$(git rev-parse --short=12 HEAD)$")
python examples/deployments/pipeline.py release "$build" snippets/deployments/staging.env --to deploy/staging
python examples/deployments/pipeline.py release "$build" snippets/deployments/production.env --to deploy/production
