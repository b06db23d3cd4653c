"""compose.yaml, as docs/containers/compose.md uses it: validated, and the pair brought
up for real with podman-compose (the page's compose_up.sh, with a project name, a
host port and a file copy of the test's own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kit import sysdeps
from kit.process import LOOPBACK, ROOT, free_port
from kit.services.podman import Podman
from kit.snippets import commands, split

COMPOSE = ROOT / "snippets/containers/compose.yaml"


def config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`docker-compose config`: Debian's docker-compose 1.29 validates without a daemon."""
    program = sysdeps.require("docker-compose")["docker-compose"]
    clean = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    return subprocess.run(
        [program, "-f", str(COMPOSE), "config"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_file_is_valid_and_publishes_on_loopback_only() -> None:
    result = config({"POSTGRES_PASSWORD": "a-test-value"})
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"recipe-api", "web-api", "redis", "postgres"}
    ports = [port for service in services.values() for port in service.get("ports", [])]
    assert ports == ["127.0.0.1:3000:3000/tcp"]  # the one published port, on loopback
    assert services["web-api"]["environment"]["TARGET"] == "http://recipe-api:4000"
    assert services["postgres"]["volumes"] == ["pgdata:/var/lib/postgresql/data:rw"]


def test_the_database_password_must_come_from_the_environment() -> None:
    result = config({})
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in your environment" in result.stderr


@pytest.mark.usefixtures("images")
def test_up_brings_the_pair_up_by_service_name_and_down_removes_it(
    podman: Podman, tmp_path: Path
) -> None:
    project, port = podman.unique("recipes"), free_port()
    compose = COMPOSE.read_text().replace("127.0.0.1:3000:3000", f"{LOOPBACK}:{port}:3000")
    (tmp_path / "compose.yaml").write_text(compose.replace("context: ../..", f"context: {ROOT}"))
    env = {**os.environ, **podman.env, "POSTGRES_PASSWORD": "a-test-value"}
    outputs = []
    try:
        for line in commands("snippets/containers/compose_up.sh"):
            line = line.replace("--project-name recipes", f"--project-name {project}")
            line = line.replace("127.0.0.1:3000", f"{LOOPBACK}:{port}")
            argv = split(line)[1]
            if argv[0] == "podman-compose":  # this environment's
                argv[0] = str(Path(sys.executable).parent / "podman-compose")
            result = subprocess.run(
                argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                check=False,
            )  # fmt: skip
            assert result.returncode == 0, f"{line}\n{result.stdout}{result.stderr}"
            outputs.append(result.stdout)
    finally:
        subprocess.run(
            [str(Path(sys.executable).parent / "podman-compose"), "--project-name", project,
             "down"], cwd=tmp_path, env=env, capture_output=True, check=False,
        )  # fmt: skip
    body = json.loads(outputs[1])
    assert body["consumer_pid"] == 1  # web-api, in its container
    assert body["producer_data"]["producer_pid"] == 1  # recipe-api, reached by its name
    left = podman.run("ps", "-a", "--filter", f"name={project}", "--format", "{{.Names}}")
    assert left.stdout == ""  # down removed every container of the project
    networks = podman.run("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert f"{project}_default" not in networks
