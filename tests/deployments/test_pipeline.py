"""The release pipeline of docs/deployments/pipeline.md, run for real.

Each test works in a scratch git repository holding what the pipeline reads (the
packaged recipe-api, pipeline.py, the page's scripts and the two configurations),
so commits can be made and broken at will. The only edit to the page's files is the
port in each configuration: a free one instead of 4100 and 4000.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from kit.process import LOOPBACK, ROOT, Process, free_port, http_ok
from kit.snippets import run_script

SNIPPETS = "snippets/deployments"
PACKAGE = "examples/deployments/recipe_api_package"
COPIED = [PACKAGE, "examples/deployments/pipeline.py", SNIPPETS]
GIT = {
    "GIT_AUTHOR_NAME": "pipeline test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "pipeline test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
}  # fmt: skip


class Repo:
    """A scratch checkout: commit changes, run the page's scripts, start a release."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ports = {"staging": free_port(), "production": free_port()}

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.path, env={**os.environ, **GIT},
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "HEAD")

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.path / relative
        text = path.read_text()
        assert old in text, f"{old!r} not in {relative}"
        path.write_text(text.replace(old, new))

    def script(self, name: str, returncode: int = 0) -> subprocess.CompletedProcess[str]:
        return run_script(f"{SNIPPETS}/{name}", cwd=self.path, returncode=returncode, timeout=60)

    def pipeline(self, *args: str, returncode: int = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["python", "examples/deployments/pipeline.py", *args], cwd=self.path,
            env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == returncode, result.stdout + result.stderr
        return result

    def current(self, environment: str) -> str:
        return os.readlink(self.path / "deploy" / environment / "current")

    def start(self, environment: str, log: Path) -> Process:
        """The page's start.sh (for production) in the given environment's directory."""
        script = (ROOT / SNIPPETS / "start.sh").read_text().replace("production", environment)
        process = Process(f"recipe-api ({environment})", ["bash", "-c", script], log,
                          cwd=self.path)  # fmt: skip
        port = self.ports[environment]
        process.start(http_ok(f"http://{LOOPBACK}:{port}/health"))
        return process

    def health(self, environment: str) -> dict:
        return httpx.get(f"http://{LOOPBACK}:{self.ports[environment]}/health").json()


def make_repo(path: Path) -> Repo:
    for relative in COPIED:
        source, target = ROOT / relative, path / relative
        if relative.endswith("pipeline.py"):  # a link: coverage measures the real file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(source)
        elif source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "dist"))
        else:
            shutil.copy(source, target)
    repo = Repo(path)
    for environment, port in repo.ports.items():
        repo.edit(f"{SNIPPETS}/{environment}.env", "PORT=", f"PORT={port}  # was ")
    repo.git("init", "--quiet", "--initial-branch=main")
    repo.commit("the packaged recipe-api and its pipeline")
    return repo


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    """The page's pipeline.sh run once: one build, released to staging and production."""
    repo = make_repo(tmp_path_factory.mktemp("repo"))
    repo.script("pipeline.sh")
    return repo


def build_record(repo: Repo) -> dict:
    (build,) = (repo.path / "deploy/builds").iterdir()
    return json.loads((build / "build.json").read_text())


def test_one_build_of_the_commit_with_its_digest(released: Repo) -> None:
    record = build_record(released)
    assert record["commit"] == released.git("rev-parse", "HEAD")
    assert record["version"] == "0.1.0"
    wheel = next((released.path / "deploy/builds").iterdir()) / record["wheel"]
    assert subprocess.run(["sha256sum", wheel], capture_output=True, text=True,
                          check=True).stdout.split()[0] == record["sha256"]  # fmt: skip


def test_staging_and_production_run_the_same_artifact_with_their_own_settings(
    released: Repo, tmp_path: Path
) -> None:
    manifests = {}
    for environment in ("staging", "production"):
        current = released.path / "deploy" / environment / "current"
        manifests[environment] = json.loads((current / "release.json").read_text())
        assert (current / "release.env").read_text() == (
            released.path / SNIPPETS / f"{environment}.env"
        ).read_text()
    staging, production = manifests["staging"], manifests["production"]
    assert staging["sha256"] == production["sha256"] == build_record(released)["sha256"]
    assert staging["config_sha256"] != production["config_sha256"]
    # each serves, on its own configured port, the one version that was built
    processes = [released.start(env, tmp_path / f"{env}.log") for env in ("staging", "production")]
    try:
        assert released.health("staging") == released.health("production")
        assert released.health("production") == {"status": "ok", "version": "0.1.0"}
    finally:
        for process in processes:
            assert process.stop(signal.SIGTERM) == 0, process.output()


def test_names_only_increase_and_rollback_serves_the_previous_release(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path_factory.mktemp("repo"))
    repo.script("pipeline.sh")  # v1 in production: 0.1.0
    repo.edit(f"{PACKAGE}/src/recipe_api/__init__.py", '"0.1.0"', '"0.2.0"')
    repo.commit("0.2.0")
    repo.script("pipeline.sh")  # v2: 0.2.0
    assert repo.current("production") == "releases/v2"
    process = repo.start("production", tmp_path / "v2.log")
    assert repo.health("production")["version"] == "0.2.0"
    assert process.stop(signal.SIGTERM) == 0

    result = repo.script("rollback.sh")
    assert result.stdout.splitlines()[-1] == "releases/v1"
    process = repo.start("production", tmp_path / "v1.log")
    assert repo.health("production")["version"] == "0.1.0"  # the previous release answers
    assert process.stop(signal.SIGTERM) == 0

    # a release after a rollback gets a new name, never a used one
    (build,) = [p for p in (repo.path / "deploy/builds").iterdir() if p.name.startswith("0.2.0")]
    out = repo.pipeline("release", str(build), f"{SNIPPETS}/production.env",
                        "--to", "deploy/production").stdout  # fmt: skip
    assert "released v3" in out
    names = sorted(p.name for p in (repo.path / "deploy/production/releases").glob("v*"))
    assert names == ["v1", "v2", "v3"]
    # nothing before v1: a rollback there is refused, and current stays put
    repo.pipeline("rollback", "--to", "deploy/production")  # v3 -> v2
    repo.pipeline("rollback", "--to", "deploy/production")  # v2 -> v1
    refused = repo.pipeline("rollback", "--to", "deploy/production", returncode=1)
    assert "nothing to roll back to" in refused.stderr
    assert repo.current("production") == "releases/v1"


def test_a_failing_test_stops_the_pipeline_before_any_build_or_release(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path)
    repo.edit(f"{PACKAGE}/src/recipe_api/app.py", '"Chicken Tikka Masala"', '"Chicken"')
    repo.commit("a change that breaks a unit test")
    result = repo.script("pipeline.sh", returncode=1)
    assert "pipeline stopped: test failed" in result.stderr
    assert "test_a_known_recipe_is_found" in result.stderr  # pytest's report is shown
    assert not (repo.path / "deploy").exists()  # no build, no release, no directory


def test_only_committed_code_is_built(tmp_path: Path) -> None:
    """An edit left in the working tree is not in the build: git archive reads the commit."""
    repo = make_repo(tmp_path)
    repo.edit(f"{PACKAGE}/src/recipe_api/__init__.py", '"0.1.0"', '"9.9.9"')  # not committed
    out = repo.pipeline("build", "HEAD").stdout
    assert re.search(r"built deploy/builds/0\.1\.0-[0-9a-f]{12} ", out), out


def test_lint_runs_first_and_stops_on_a_finding(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    repo.edit(f"{PACKAGE}/src/recipe_api/__init__.py", '__version__ = "0.1.0"',
              '__version__ = "0.1.0"\nimport os')  # fmt: skip
    repo.commit("an unused import")
    result = repo.pipeline("build", "HEAD", returncode=1)
    assert result.stdout.splitlines() == ["--> lint"]
    assert "pipeline stopped: lint failed" in result.stderr
    assert "F401" in result.stderr


def test_bad_arguments_exit_2_with_one_line(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    result = repo.pipeline("release", "deploy/builds/nothing", f"{SNIPPETS}/staging.env",
                           "--to", "deploy/staging", returncode=2)  # fmt: skip
    assert result.stderr.splitlines()[-1].endswith(
        "deploy/builds/nothing/build.json does not exist"
    )
    unknown = repo.pipeline("build", "no-such-commit", returncode=1)
    assert "no commit 'no-such-commit'" in unknown.stderr
