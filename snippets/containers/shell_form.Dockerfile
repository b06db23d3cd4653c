# What not to do: recipe-api's image with the shell form of CMD. The runtime starts
# `/bin/sh -c "python3 recipe_api.py"`: the shell is PID 1 and Python its child, and
# the shell neither handles SIGTERM nor passes it on. `podman stop` waits the whole
# grace period, then kills both with SIGKILL (exit code 137).
ARG IMAGE=recipe-api:0.1.0
FROM ${IMAGE}
# hadolint ignore=DL3025
CMD python3 recipe_api.py
