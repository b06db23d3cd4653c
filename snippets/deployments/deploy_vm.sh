# Reader-side: from the repository root on your machine, to a Debian or Ubuntu VM with
# systemd, reached over ssh as an account that may sudo (VM=user@host). This site's
# tests run the release and rollback commands in a scratch directory and check the
# unit with systemd-analyze; they never run systemd, ssh or sudo (docs/deployments/vm.md).
set -euo pipefail
vm=${VM:?set VM to user@host of the VM}
root=/srv/recipe-api

case "${1:?usage: deploy_vm.sh setup|release|rollback}" in
setup)
    # --8<-- [start:setup]
    # Once per VM: Python's venv module, a user for the service, an environment with
    # the versions the tests ran, and the unit, enabled to start at boot.
    scp requirements/services.txt snippets/deployments/recipe-api.service "$vm:"
    ssh "$vm" sudo apt-get update
    ssh "$vm" sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv curl
    ssh "$vm" sudo useradd --system --user-group --no-create-home --shell /usr/sbin/nologin recipe-api
    ssh "$vm" sudo python3 -m venv $root/venv
    ssh "$vm" sudo $root/venv/bin/pip install --requirement services.txt
    ssh "$vm" sudo cp recipe-api.service /etc/systemd/system/recipe-api.service
    ssh "$vm" sudo systemctl daemon-reload
    ssh "$vm" sudo systemctl enable recipe-api
    # --8<-- [end:setup]
    ;;
release)
    # --8<-- [start:release]
    # Each release: build here once, copy the build over, release it there, restart, check.
    python examples/deployments/pipeline.py build HEAD
    build=deploy/builds/$(ls deploy/builds | grep -- "-$(git rev-parse --short=12 HEAD)$")
    scp -r "$build" examples/deployments/pipeline.py snippets/deployments/production.env "$vm:"
    ssh "$vm" sudo $root/venv/bin/python pipeline.py release "$(basename "$build")" production.env --to $root/production
    ssh "$vm" sudo systemctl restart recipe-api
    ssh "$vm" curl --fail --silent --show-error --retry 10 --retry-connrefused --retry-delay 1 http://127.0.0.1:4000/health
    # --8<-- [end:release]
    ;;
rollback)
    # --8<-- [start:rollback]
    # The new release misbehaves: make the previous one current, restart, check.
    ssh "$vm" sudo $root/venv/bin/python pipeline.py rollback --to $root/production
    ssh "$vm" sudo systemctl restart recipe-api
    ssh "$vm" curl --fail --silent --show-error --retry 10 --retry-connrefused --retry-delay 1 http://127.0.0.1:4000/health
    # --8<-- [end:rollback]
    ;;
*)
    echo "usage: deploy_vm.sh setup|release|rollback" >&2
    exit 2
    ;;
esac
