"""The GitHub Actions workflows: the page's ci.yml and the project's own pages.yml.

No GitHub runner is reachable from here, so the workflows are checked, not run:
check-jsonschema's GitHub workflow schema (a misspelt key fails it), then what a
schema cannot see, read from the YAML: jobs in the pipeline's order, every path
and tool version the steps name is this repository's, least privilege, no
untrusted expression pasted into a shell. actionlint would do part of the second
half; its PyPI wrapper builds by downloading from GitHub, which is not reachable
here, so docs/deployments/pipeline.md says it is not run.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from kit.process import ROOT

CI = ROOT / "snippets/deployments/ci.yml"
WORKFLOWS = [CI, *sorted((ROOT / ".github/workflows").glob("*.yml"))]
# Event fields a stranger controls (a pull request's title, a branch name...).
UNTRUSTED = re.compile(r"\$\{\{\s*github\.(event\.|head_ref)")


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    program = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [program, "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def load(path: Path) -> dict:
    # YAML 1.1 reads the key `on` as True; a workflow means the string.
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def run_scripts(workflow: dict) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job.get("steps", [])
            if "run" in step]  # fmt: skip


def injected(workflow: dict) -> list[str]:
    return [script for script in run_scripts(workflow) if UNTRUSTED.search(script)]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_the_workflow_keeps_githubs_schema(path: Path) -> None:
    result = schema_check(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_fails_a_misspelt_key(tmp_path: Path) -> None:
    typo = tmp_path / "ci.yml"
    typo.write_text(CI.read_text().replace("runs-on:", "run-on:", 1))
    result = schema_check(typo)
    assert result.returncode == 1
    assert "'run-on'" in result.stdout


def test_the_jobs_run_in_the_pipelines_order() -> None:
    jobs = load(CI)["jobs"]
    assert list(jobs) == ["lint", "test", "build", "release"]
    assert jobs["test"]["needs"] == "lint"
    assert jobs["build"]["needs"] == "test"
    assert jobs["release"]["needs"] == "build"
    assert jobs["release"]["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert load(CI)["on"]["push"]["tags"] == ["v*"]


def test_tests_run_against_redis_and_postgresql_service_containers() -> None:
    test = load(CI)["jobs"]["test"]
    services = test["services"]
    assert services["redis"]["image"] == "redis:7-bookworm"  # compose.yaml's images
    assert services["postgres"]["image"] == "postgres:15-bookworm"
    for service in services.values():
        assert "--health-cmd" in service["options"]  # the job starts when they are ready
    # the integration step's service reads exactly these settings
    doc = (ROOT / "examples/observability/health_service.py").read_text()
    for name in test["env"]:
        assert f"`{name}`" in doc
    scripts = " ".join(run_scripts({"jobs": {"test": test}}))
    assert "--fail-under=90" in scripts  # the coverage gate


def test_every_path_and_pin_the_steps_name_is_this_repositorys() -> None:
    workflow = load(CI)
    package = workflow["env"]["PACKAGE"]
    assert (ROOT / package / "pyproject.toml").is_file()
    scripts = "\n".join(run_scripts(workflow))
    for path in re.findall(r"(?:examples|snippets|requirements)/[\w./-]+", scripts):
        assert (ROOT / path).exists(), path
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    ruff = next(pin for pin in pyproject["dependency-groups"]["lint"] if pin.startswith("ruff"))
    assert f"pip install {ruff}" in scripts  # the same ruff as ./nox -s lint


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege_and_actions_pinned_to_a_version(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"]["contents"] == "read"  # the default for every job
    for job in workflow["jobs"].values():
        for step in job.get("steps", []):
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]
    writers = [name for name, job in workflow["jobs"].items()
               if job.get("permissions", {}).get("contents") == "write"]  # fmt: skip
    assert writers == (["release"] if path == CI else [])


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_untrusted_expression_is_pasted_into_a_shell(path: Path) -> None:
    assert injected(load(path)) == []


def test_the_injection_check_can_fail(tmp_path: Path) -> None:
    bad = load(CI)
    bad["jobs"]["lint"]["steps"].append({"run": 'echo "${{ github.event.pull_request.title }}"'})
    assert len(injected(bad)) == 1
