"""uv.lock is in step with pyproject.toml, readers' requirements/examples.txt is what
uv.lock exports, and every floor is the major.minor the lock was tested with.

Offline and fast: nothing here resolves or downloads. After changing a dependency
group, `./nox -s lock` refreshes all three.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# The uv that ./nox pins and the sessions install with: a different uv may write a
# different lock format.
UV = ROOT / ".venv-nox/bin/uv"
# The very command of noxfile.py's lock session: uv writes it into the file's header,
# so a difference between the two shows up as a different header.
EXPORTED_GROUPS = ("examples", "services")


def export_command(group: str) -> tuple[str, ...]:
    return (
        *("uv", "export", "--only-group", group, "--no-hashes", "--no-emit-project"),
        *("--format", "requirements-txt", "--locked", "--quiet", "-o", f"requirements/{group}.txt"),
    )


REFRESH = (
    "run ./nox -s lock (every package to its newest) or ./nox -s lock -- --upgrade-package "
    "NAME (only NAME), then commit pyproject.toml, uv.lock and requirements/*.txt"
)
OFFLINE = {**os.environ, "UV_OFFLINE": "1", "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def uv() -> str:
    assert UV.exists(), f"{UV} is missing: run the tests through ./nox, which installs it"
    return str(UV)


def test_uv_lock_is_in_step_with_pyproject(uv: str) -> None:
    result = subprocess.run(
        [uv, "lock", "--check"],
        cwd=ROOT,
        env=OFFLINE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (
        f"{result.stderr}\nuv.lock does not match pyproject.toml's dependency groups: {REFRESH}"
    )


@pytest.mark.parametrize("group", EXPORTED_GROUPS)
def test_requirements_file_is_a_fresh_export_of_the_lock(
    uv: str, tmp_path: Path, group: str
) -> None:
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(ROOT / name, tmp_path)
    result = subprocess.run(
        [uv, *export_command(group)[1:]],
        cwd=tmp_path,
        env=OFFLINE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    fresh = (tmp_path / f"requirements/{group}.txt").read_text()
    committed = (ROOT / f"requirements/{group}.txt").read_text()
    assert committed == fresh, f"requirements/{group}.txt is stale: {REFRESH}"


def floor_for(version: Version) -> str:
    """The same rule as noxfile.py: major.minor (0.66b2 -> 0.66b0, 0.0.18 stays)."""
    if version.major == 0 and version.minor == 0:
        return version.base_version
    floor = f"{version.major}.{version.minor}"
    if version.pre:
        floor += f"{version.pre[0]}0"
    return floor


def test_every_floor_is_the_tested_major_minor() -> None:
    locked: dict[str, Version] = {}
    for package in tomllib.loads((ROOT / "uv.lock").read_text())["package"]:
        name, version = canonicalize_name(package["name"]), Version(package["version"])
        locked[name] = min(locked.get(name, version), version)  # a fork: its older one
    groups = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]
    behind = []
    for group in groups.values():
        for line in group:
            if isinstance(line, dict):  # {include-group = ...}
                continue
            requirement = Requirement(line)
            for specifier in requirement.specifier:
                if specifier.operator == ">=":
                    floor = floor_for(locked[canonicalize_name(requirement.name)])
                    if Version(specifier.version) < Version(floor):
                        behind.append(f"{line} -> {requirement.name}>={floor}")
    assert not behind, f"floors below the versions uv.lock tests: {', '.join(behind)}; {REFRESH}"
