# On your own machine, not run by our tests: Docker, kind and kubectl, chapter 5's images
# built with `docker build` (same arguments as build.sh), secrets.sh run. From snippets/orchestration:
kind create cluster --name recipes
kind load docker-image --name recipes recipe-api:0.1.0 web-api:0.1.0  # the node cannot see your images
kubectl apply -k overlays/staging
kubectl rollout status deployment/web-api --namespace recipes-staging --timeout 120s
kubectl rollout history deployment/web-api --namespace recipes-staging
