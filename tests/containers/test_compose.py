"""compose.yaml, as docs/containers/compose.md uses it: validated by docker-compose and
by the compose-spec schema, the pair brought up for real with podman-compose (the
page's compose_up.sh, with a project name, a host port and a file copy of the test's
own), and PostgreSQL's data kept by its named volume across `down` and `up` (the
page's compose_data.sh)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kit import sysdeps
from kit.process import LOOPBACK, ROOT, free_port, wait_until
from kit.services.podman import Podman
from kit.snippets import commands, run_script, split

# The first test here may build the base image (debootstrap, once per machine), minutes on
# a fresh machine under a parallel suite; pytest-timeout counts fixture time as the test's.
pytestmark = pytest.mark.timeout(900)

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


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    program = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [program, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_the_page_checks_pass_and_the_schema_check_can_fail(tmp_path: Path) -> None:
    sysdeps.require("docker-compose")
    result = run_script("snippets/containers/compose_check.sh", cwd=COMPOSE.parent)
    assert result.stdout.strip() == "ok -- validation done"
    # the check can fail: a misspelt key (docker-compose 1.29 would say so too)
    typo = tmp_path / "compose.yaml"
    typo.write_text(COMPOSE.read_text().replace("    ports:", "    port:"))
    result = schema_check(typo)
    assert result.returncode == 1
    assert "'port' was unexpected" in result.stdout


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


@pytest.mark.usefixtures("stores")
def test_the_named_volume_keeps_postgresql_data_across_down_and_up(podman: Podman) -> None:
    project = podman.unique("recipes")
    env = {**podman.env, "COMPOSE_PROJECT_NAME": project, "POSTGRES_PASSWORD": "a-test-value"}
    try:
        result = run_script(
            "snippets/containers/compose_data.sh", env, cwd=COMPOSE.parent, timeout=60
        )
    finally:
        subprocess.run(
            [str(Path(sys.executable).parent / "podman-compose"), "down", "--volumes"],
            cwd=COMPOSE.parent, env={**os.environ, **env}, capture_output=True, check=False,
        )  # fmt: skip
    lines = result.stdout.splitlines()
    # the row written before `down` is read back after `up`, from a new container
    assert "written before down" in lines
    assert lines.index("written before down") > lines.index("INSERT 0 1")
    left = podman.run("ps", "-a", "--filter", f"name={project}", "--format", "{{.Names}}")
    assert left.stdout == ""
    volumes = podman.run("volume", "ls", "--format", "{{.Name}}").stdout.split()
    assert f"{project}_pgdata" not in volumes  # `down --volumes` removed the data


@pytest.mark.usefixtures("stores")
def test_postgresql_refuses_a_wrong_password_from_the_project_network(podman: Podman) -> None:
    """The password from the environment is really the database's: a client on the
    project's network with another one is refused, with the same one let in."""
    project = podman.unique("recipes")
    env = {**os.environ, **podman.env, "COMPOSE_PROJECT_NAME": project,
           "POSTGRES_PASSWORD": "a-test-value"}  # fmt: skip
    compose = [str(Path(sys.executable).parent / "podman-compose")]

    def psql(password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*compose, "run", "--rm", "-T", "-e", f"PGPASSWORD={password}", "postgres",
             "psql", "--host", "postgres", "--username", "postgres", "--command", "select 1"],
            cwd=COMPOSE.parent, env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip

    try:
        subprocess.run([*compose, "up", "-d", "postgres"], cwd=COMPOSE.parent, env=env,
                       capture_output=True, check=True)  # fmt: skip
        wait_until(lambda: psql("a-test-value").returncode == 0, 20, "PostgreSQL in compose")
        refused = psql("another-value")
    finally:
        subprocess.run([*compose, "down", "--volumes"], cwd=COMPOSE.parent, env=env,
                       capture_output=True, check=False)  # fmt: skip
    assert refused.returncode == 2
    assert 'password authentication failed for user "postgres"' in refused.stderr
