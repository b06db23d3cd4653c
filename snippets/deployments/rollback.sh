# From the repository root: production goes back to the release before the current one.
python examples/deployments/pipeline.py rollback --to deploy/production
readlink deploy/production/current
