# On your own cluster, not run by our tests: the staging overlay applied with apply.sh,
# and a recipe-api:0.2.0 image built and loaded as 0.1.0 was.
# --8<-- [start:scale]
# web-api by hand (recipe-api's count belongs to its autoscaler, which would undo this)
kubectl scale deployment/web-api --replicas 2 --namespace recipes-staging
kubectl get deployment/web-api --namespace recipes-staging
# --8<-- [end:scale]
# --8<-- [start:update]
# A new version: a new pod template, so a new ReplicaSet and a rolling update
kubectl set image deployment/recipe-api recipe-api=recipe-api:0.2.0 --namespace recipes-staging
kubectl annotate deployment/recipe-api kubernetes.io/change-cause="recipe-api 0.2.0: by hand" --overwrite --namespace recipes-staging
kubectl rollout status deployment/recipe-api --namespace recipes-staging --timeout 120s
# --8<-- [end:update]
# --8<-- [start:history]
kubectl rollout history deployment/recipe-api --namespace recipes-staging
# the old ReplicaSet is still there, scaled to 0: that is what a rollback scales up again
kubectl get replicasets --selector app.kubernetes.io/name=recipe-api --namespace recipes-staging
# --8<-- [end:history]
# --8<-- [start:undo]
kubectl rollout undo deployment/recipe-api --namespace recipes-staging
kubectl rollout status deployment/recipe-api --namespace recipes-staging --timeout 120s
kubectl rollout history deployment/recipe-api --namespace recipes-staging
# --8<-- [end:undo]
