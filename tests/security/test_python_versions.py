"""Upgrading Python (docs/security/python_versions.md): the CI matrix follows the
support calendar on the page and requires-python in pyproject.toml.

No GitHub runner is reachable from here: the workflow is checked, not run.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from kit.process import ROOT
from packaging.specifiers import SpecifierSet

MATRIX = ROOT / "snippets/security/python_matrix.yml"
PAGE = ROOT / "docs/security/python_versions.md"
SUPPORTED_STATUSES = {"bugfix", "security"}


def calendar() -> dict[str, str]:
    """version -> status, from the table that follows the page's marker comment."""
    text = PAGE.read_text()
    table = text[text.index("<!-- python-calendar") :].split("\n\n")[0]
    rows = [line.split("|")[1:-1] for line in table.splitlines() if re.match(r"\| 3\.", line)]
    return {cells[0].strip(): cells[3].strip() for cells in rows}


def matrix_versions() -> list[str]:
    workflow = yaml.safe_load(MATRIX.read_text())
    return workflow["jobs"]["tests"]["strategy"]["matrix"]["python"]


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    program = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [program, "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_workflow_keeps_githubs_schema(tmp_path: Path) -> None:
    result = schema_check(MATRIX)
    assert result.returncode == 0, result.stdout + result.stderr
    typo = tmp_path / "python.yml"  # the control: a misspelt key fails it
    typo.write_text(MATRIX.read_text().replace("runs-on:", "run-on:", 1))
    bad = schema_check(typo)
    assert bad.returncode == 1
    assert "'run-on'" in bad.stdout


def test_the_matrix_is_every_supported_version_requires_python_admits() -> None:
    requires = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
                            ["requires-python"])  # fmt: skip
    statuses = calendar()
    assert set(statuses) >= {"3.10", "3.11", "3.12", "3.13", "3.14"}
    expected = [
        version
        for version, status in statuses.items()
        if status in SUPPORTED_STATUSES and requires.contains(f"{version}.0")
    ]
    assert matrix_versions() == expected
    assert expected == ["3.11", "3.12", "3.13", "3.14"]  # what the page says in words
    # Every version the matrix runs is one nox is told to use, with the job's own value.
    step = yaml.safe_load(MATRIX.read_text())["jobs"]["tests"]["steps"][-1]
    assert "--force-python" in step["run"]
    assert step["env"]["PYTHON_VERSION"] == "${{ matrix.python }}"


def test_the_running_interpreter_is_one_the_matrix_covers() -> None:
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in matrix_versions()


def test_the_311_features_the_examples_use_are_here() -> None:
    async def both() -> list[int]:
        async with asyncio.timeout(5):
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(asyncio.sleep(0, result=n)) for n in (1, 2)]
        return [task.result() for task in tasks]

    assert asyncio.run(both()) == [1, 2]
    assert tomllib.loads("a = 1") == {"a": 1}
