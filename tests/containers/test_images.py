"""The images of recipe-api and web-api, as docs/containers/images.md builds and runs them.

Built with podman from the committed Dockerfiles on the local Debian base (the page
shows python:3.13-slim; the file is the same, `--build-arg BASE=` differs), then run
with a port published on the host's loopback, on a network of their own, stopped
with a request in flight, and given a bad setting. The build's secret (the machine's
CA bundle, for pip behind this sandbox's TLS proxy) carries a marker line that must
appear in no layer of the image.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import socket
import ssl
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from containers.conftest import MARKER, RECIPE_API, SNIPPETS, WEB_API
from kit.examples import assert_output_is_shown, run_program
from kit.process import LOOPBACK, ROOT, free_port, wait_until
from kit.services.podman import BASE_IMAGE, Podman, Registry
from kit.snippets import commands, split

# The first test here may build the base image (debootstrap, once per machine), minutes on
# a fresh machine under a parallel suite; pytest-timeout counts fixture time as the test's.
pytestmark = pytest.mark.timeout(900)

READER_DIR = "/tmp/recipe-registry"  # noqa: S108  (the reader's directory in the scripts)


def run_detached(podman: Podman, containers: list[str], image: str, *args: str) -> str:
    name = podman.unique(image.split("/")[-1].split(":")[0])
    containers.append(name)
    podman.run("run", "-d", "--name", name, *args, image)
    return name


def published(podman: Podman, containers: list[str], image: str, port: int, *args: str):
    """Run the image with its port published on 127.0.0.1 only; wait for /health."""
    host_port = free_port()
    name = run_detached(podman, containers, image, "-p", f"{LOOPBACK}:{host_port}:{port}", *args)
    url = f"http://{LOOPBACK}:{host_port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, 30, f"{name} to answer /health")
    return name, url


def exit_code(podman: Podman, name: str) -> int:
    return podman.inspect("container", name)["State"]["ExitCode"]


# --- what the images are ------------------------------------------------------------


@pytest.mark.parametrize("service", ["recipe-api", "web-api"])
def test_the_image_runs_python_as_pid_1_as_a_user_with_a_health_check(
    podman: Podman, images: dict[str, str], service: str
) -> None:
    image = podman.inspect("image", images[service])
    config = image["Config"]
    assert config["User"] == "10001"  # not root
    assert config["Cmd"] == ["python3", f"{service.replace('-', '_')}.py"]  # exec form
    assert config["StopSignal"] == "SIGTERM"
    assert image["Healthcheck"]["Test"][0] == "CMD"  # kept: built in Docker format
    assert any(variable.startswith("PATH=/venv/bin:") for variable in config["Env"])


def test_the_release_stage_has_the_venv_and_the_program_only(
    podman: Podman, images: dict[str, str]
) -> None:
    listing = podman.run("run", "--rm", RECIPE_API, "ls", "-A", "/app").stdout
    assert listing.split() == ["recipe_api.py"]  # the program, alone
    # The build stage's directory and its requirements file did not come along.
    result = podman.run("run", "--rm", RECIPE_API, "ls", "/build", check=False)
    assert result.returncode != 0


# --- run, publish, reach ------------------------------------------------------------


def test_recipe_api_serves_on_a_published_loopback_port(
    podman: Podman, images: dict[str, str], containers: list[str]
) -> None:
    name, url = published(podman, containers, RECIPE_API, 4000)
    answer = httpx.get(f"{url}/recipes/42")
    assert answer.status_code == 200
    assert answer.json()["recipe"]["name"] == "Chicken Tikka Masala"
    # Inside its container it is process 1... (the pid in the answer)
    assert answer.json()["producer_pid"] == 1
    # ...and the image's HEALTHCHECK, run on demand (no systemd here to run its timer).
    assert podman.run("healthcheck", "run", name).returncode == 0


def security_context(service: str) -> tuple[dict, dict]:
    """The pod's and the container's securityContext in chapter 7's Deployment."""
    manifest = ROOT / f"snippets/orchestration/base/{service}.yaml"
    (deployment,) = [d for d in yaml.safe_load_all(manifest.read_text())
                     if d["kind"] == "Deployment"]  # fmt: skip
    pod = deployment["spec"]["template"]["spec"]
    return pod["securityContext"], pod["containers"][0]["securityContext"]


SERVICES = [("recipe-api", RECIPE_API, 4000), ("web-api", WEB_API, 3000)]


@pytest.mark.parametrize(("service", "image", "port"), SERVICES)
def test_the_image_runs_under_the_orchestration_chapters_security_context(
    podman: Podman, images: dict[str, str], containers: list[str],
    service: str, image: str, port: int,
) -> None:  # fmt: skip
    """What docs/orchestration/manifests.md asks of the pod (a read-only root, every
    capability dropped, no privilege escalation, uid 10001) is what the image can do:
    the same constraints given to podman, the service still answers."""
    pod, container = security_context(service)
    assert container["readOnlyRootFilesystem"] is True
    assert container["capabilities"]["drop"] == ["ALL"]
    assert container["allowPrivilegeEscalation"] is False
    user = f"{pod['runAsUser']}:{pod['runAsGroup']}"
    name, url = published(
        podman, containers, image, port,
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--user", user,
    )  # fmt: skip
    assert httpx.get(f"{url}/live").status_code == 200
    status = podman.run("exec", name, "cat", "/proc/1/status").stdout
    assert re.search(r"^CapEff:\s+0+$", status, re.M), status  # no capability left
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)
    assert re.search(r"^Uid:\s+10001\s", status, re.M)
    # and the root file system really is read-only
    write = podman.run("exec", name, "touch", "/app/x", check=False)
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr


def test_web_api_reaches_recipe_api_by_name_on_a_network(
    podman: Podman, images: dict[str, str], containers: list[str], network: str
) -> None:
    recipe = run_detached(podman, containers, RECIPE_API, "--network", network)
    target = f"TARGET=http://{recipe}:4000"
    _, url = published(podman, containers, WEB_API, 3000, "--network", network, "-e", target)

    def answered() -> httpx.Response | None:
        response = httpx.get(url, timeout=5)
        return response if response.status_code == 200 else None

    wait_until(answered, 30, "web-api to reach recipe-api by name")  # both just started
    body = httpx.get(url, timeout=5).json()
    assert body["producer_data"]["producer_pid"] == 1
    assert body["producer_data"]["recipe"]["id"] == 42


# --- stopping -----------------------------------------------------------------------

H = b"Host: containers\r\n"


def stop_with_a_request_in_flight(podman: Podman, name: str, url: str, grace: int) -> bytes:
    """Two requests in one write; once the first is answered the second is in the
    server's hands; then `podman stop` (SIGTERM, SIGKILL after `grace` seconds)."""
    port = int(url.rsplit(":", 1)[1])
    request = b"GET /health HTTP/1.1\r\n" + H + b"\r\n"
    last = request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    with socket.create_connection((LOOPBACK, port), timeout=20) as sock:
        sock.sendall(request + last)
        answer = sock.recv(65536)
        podman.run("stop", "-t", str(grace), name, timeout=grace + 30)
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_sigterm_stops_it_with_exit_0_after_the_request_in_flight(
    podman: Podman, images: dict[str, str], containers: list[str]
) -> None:
    name, url = published(podman, containers, RECIPE_API, 4000)
    answer = stop_with_a_request_in_flight(podman, name, url, grace=10)
    assert answer.count(b"HTTP/1.1 200 OK") == 2, answer
    assert exit_code(podman, name) == 0  # not 137: it stopped itself, no SIGKILL needed


def test_the_shell_form_waits_out_the_grace_period_and_dies_by_sigkill(
    podman: Podman, images: dict[str, str], containers: list[str]
) -> None:
    tag = "localhost/recipe-api:shell-form"
    podman.run(
        "build", "--pull=never", "--format", "docker", "--build-arg", f"IMAGE={RECIPE_API}",
        "-f", f"{SNIPPETS}/shell_form.Dockerfile", "-t", tag, str(ROOT),
    )  # fmt: skip
    name, _ = published(podman, containers, tag, 4000)
    # The container's process 1, as the container's own /proc sees it: the shell.
    pid_1 = podman.run("exec", name, "cat", "/proc/1/cmdline").stdout.split("\0")
    assert pid_1[:3] == ["/bin/sh", "-c", "python3 recipe_api.py"]
    started = time.monotonic()
    podman.run("stop", "-t", "1", name)
    assert time.monotonic() - started >= 1  # the whole grace period...
    assert exit_code(podman, name) == 137  # ...then SIGKILL (128 + 9)


# --- settings and secrets -----------------------------------------------------------


def test_a_bad_setting_stops_the_container_with_exit_2_and_one_line(
    podman: Podman, images: dict[str, str], containers: list[str]
) -> None:
    """bad_setting.sh, its container named uniquely."""
    name = podman.unique("bad")
    containers.append(name)
    run, logs, remove = (
        split(re.sub(r"\bbad\b", name, line))[1] for line in commands(f"{SNIPPETS}/bad_setting.sh")
    )
    assert run[:2] == ["podman", "run"]
    assert podman.run(*run[1:], check=False).returncode == 2
    printed = podman.run(*logs[1:])
    assert printed.stdout == ""
    assert printed.stderr.splitlines() == [
        "configuration error: PORT: Input should be a valid integer, unable to parse string "
        "as an integer"
    ]
    podman.run(*remove[1:])
    assert podman.run("container", "exists", name, check=False).returncode == 1


def layers(podman: Podman, image: str, directory: Path) -> Iterator[tuple[str, bytes]]:
    """Every file of every layer of the saved image: (layer/path, content)."""
    archive = directory / "image.tar"
    podman.run("save", "--format", "docker-archive", "-o", str(archive), image)
    with tarfile.open(archive) as outer:
        for member in outer.getmembers():
            data = outer.extractfile(member)
            if data is None:
                continue
            content = data.read()
            if member.name.endswith(".tar"):
                with tarfile.open(fileobj=io.BytesIO(content)) as layer:
                    for item in layer.getmembers():
                        if item.isfile():  # links point at files listed on their own
                            inner = layer.extractfile(item)
                            assert inner is not None
                            yield f"{member.name}/{item.name}", inner.read()
            else:
                yield member.name, content  # the image's config and manifest


def test_the_build_secret_is_in_no_layer_and_not_in_the_history(
    podman: Podman, images: dict[str, str], build_secret: Path, tmp_path: Path
) -> None:
    assert MARKER in build_secret.read_bytes()  # what the build was given
    found = [name for name, content in layers(podman, RECIPE_API, tmp_path) if MARKER in content]
    assert found == []
    history = podman.run("history", "--no-trunc", RECIPE_API).stdout
    assert "pip_cert" not in history.replace("id=pip_cert", "")  # only the mount's name
    assert MARKER.decode() not in history


# --- the page's run script ----------------------------------------------------------


def test_the_run_script_starts_the_pair_and_cleans_up(
    podman: Podman, images: dict[str, str], containers: list[str]
) -> None:
    """run.sh as the page gives it, with the names and the host port made unique (the
    tests run beside other work); its output is what the page shows."""
    suffix = podman.unique("")
    names = {"recipe": f"recipe{suffix}", "web": f"web{suffix}", "recipes": f"recipes{suffix}"}
    containers += [names["recipe"], names["web"]]  # removed even if the script fails
    port = free_port()

    def local(line: str) -> str:
        line = re.sub(r"\b(recipes|recipe|web)\b(?![-.:])", lambda m: names[m.group(1)], line)
        line = line.replace("http://recipe:", f"http://{names['recipe']}:")
        return line.replace("127.0.0.1:3000", f"{LOOPBACK}:{port}")

    output = []
    for line in commands(f"{SNIPPETS}/run.sh"):
        argv = split(local(line))[1]
        if argv[0] == "podman":
            output.append(podman.run(*argv[1:]).stdout)
        else:
            output.append(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    shown = "".join(output)
    for original, unique in names.items():
        shown = shown.replace(unique, original)
    shown = re.sub(r"\b[0-9a-f]{64}\b", "<container id>", shown)
    assert_output_is_shown(shown, ROOT / SNIPPETS / "run.out")
    body = json.loads(output[3])
    assert body["consumer_pid"] == 1
    assert body["producer_data"]["producer_pid"] == 1
    ps = podman.run("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert names["recipe"] not in ps
    assert names["web"] not in ps  # stopped and removed


def test_the_one_stage_file_the_figures_compare_builds_and_serves(
    podman: Podman, images: dict[str, str], build_secret: Path, containers: list[str]
) -> None:
    tag = "localhost/recipe-api:one-stage"
    argv = ["podman", "build", "--format", "docker", "-f", f"{SNIPPETS}/single_stage.Dockerfile"]
    podman.build([*argv, "-t", tag, "."], secrets={"pip_cert": build_secret})
    _, url = published(podman, containers, tag, 4000)
    assert httpx.get(f"{url}/recipes/42").status_code == 200
    # What this file leaves in the image that the page's two stages do not:
    assert podman.run("run", "--rm", tag, "ls", "/app").stdout.split() == [
        "recipe_api.py",
        "requirements.txt",
    ]


# --- volumes ------------------------------------------------------------------------


def test_a_container_loses_its_files_and_a_named_volume_keeps_them(podman: Podman) -> None:
    """volumes.sh, on the local base image and with names of the test's own."""
    suffix = podman.unique("")
    names = {"scratch": f"scratch{suffix}", "notes": f"notes{suffix}"}

    def local(line: str) -> list[str]:
        line = line.replace("python:3.13-slim", BASE_IMAGE)
        line = re.sub(r"\b(scratch|notes)\b", lambda m: names[m.group(1)], line)
        return split(line)[1][1:]  # after "podman"

    outputs = []
    try:
        for line in commands(f"{SNIPPETS}/volumes.sh"):
            outputs.append(podman.run(*local(line)).stdout)
    finally:
        podman.run("rm", "-f", names["scratch"], check=False)
        podman.run("volume", "rm", "-f", names["notes"], check=False)
    listing, read = outputs[2], outputs[5]
    assert listing == ""  # the new container has no /srv/note: it went with `scratch`
    assert read == "hello"  # the volume kept it for the next container
    assert podman.run("volume", "exists", names["notes"], check=False).returncode == 1


# --- a private registry -------------------------------------------------------------


def test_push_remove_pull_run_through_a_private_registry_with_tls_and_a_password(
    podman: Podman, images: dict[str, str], tmp_path: Path
) -> None:
    """registry_start.sh and registry_push.sh, with /tmp/recipe-registry and port 5000
    replaced by the test's own; the registry runs the committed registry.yml."""
    password = secrets.token_urlsafe(16)
    env = {**os.environ, "REGISTRY_PASSWORD": password}
    registry = Registry(tmp_path, f"{SNIPPETS}/registry.yml")

    def local(line: str) -> str:
        line = line.replace(READER_DIR, str(tmp_path))
        return line.replace("127.0.0.1:5000", registry.address)

    certs, users, serve = commands(f"{SNIPPETS}/registry_start.sh")
    run_program("protocols/tls_certs.py", split(local(certs))[1][-1])
    subprocess.run(["bash", "-c", local(users)], env=env, check=True)
    assert split(serve)[1] == ["docker-registry", "serve", f"{SNIPPETS}/registry.yml"]
    assert password not in (tmp_path / "htpasswd").read_text()  # a bcrypt hash of it
    registry.start()
    pushed = f"{registry.address}/recipe-api:0.1.0"
    try:
        for line in commands(f"{SNIPPETS}/registry_push.sh"):
            script = local(line)
            if script.startswith("podman "):  # with the test's podman configuration
                result = subprocess.run(
                    ["bash", "-c", script], env={**env, **podman.env}, cwd=ROOT,
                    capture_output=True, text=True, timeout=300, check=False,
                )  # fmt: skip
            else:
                result = subprocess.run(
                    ["bash", "-c", script], env=env, cwd=ROOT,
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
            assert result.returncode == 0, f"{script}\n{result.stdout}{result.stderr}"
        assert result.stdout == "ok\n"  # the last line: the pulled image runs
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        tags = httpx.get(
            f"https://{registry.address}/v2/recipe-api/tags/list",
            auth=("ci", password),
            verify=ssl.create_default_context(cafile=tmp_path / "certs/ca.pem"),
        ).json()["tags"]
        assert sorted(tags) == ["0.1.0", f"0.1.0-git.{sha}"]
        # Without the CA the certificate does not verify; without a login, no access.
        untrusted = podman.run("pull", pushed, check=False)
        assert untrusted.returncode != 0
        assert "certificate signed by unknown authority" in untrusted.stderr
        podman.run("logout", registry.address)  # (podman 4.3 as root keeps logins in /run)
        anonymous = podman.run("pull", "--cert-dir", str(tmp_path / "trust"), pushed, check=False)
        assert anonymous.returncode != 0
        assert "authentication required" in anonymous.stderr or "unauthorized" in anonymous.stderr
    finally:
        podman.run("logout", registry.address, check=False)
        registry.stop()
        # The page's images again under their own names, for the tests after this one.
        podman.run("tag", pushed, RECIPE_API, check=False)
        podman.run("rmi", "-f", pushed, f"{registry.address}/recipe-api:0.1.0-git.{sha}",
                   check=False)  # fmt: skip
