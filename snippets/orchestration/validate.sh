# From snippets/orchestration: render each overlay to the plain YAML `kubectl apply -k`
# would send, then check every object. Nothing here contacts a cluster.
set -euo pipefail
mkdir -p rendered  # holds the Secrets too: .gitignore keeps it out of git
kubectl kustomize overlays/staging --output rendered/staging.yaml
kubectl kustomize overlays/production --output rendered/production.yaml
# Against the API schemas of Kubernetes 1.37; --strict refuses fields the API does not have.
kubernetes-validate --strict --kubernetes-version 1.37.0 rendered/staging.yaml rendered/production.yaml
