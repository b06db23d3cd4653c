"""The set-up commands on the home page give a venv that runs the examples, at the
versions the tests ran with (requirements/examples.txt, exported from uv.lock)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest
from kit import sysdeps
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "snippets/why_distributed/install.sh"
REQUIREMENTS = ROOT / "requirements/examples.txt"

INSTALLED = """
import importlib.metadata, json
print(json.dumps({d.metadata["Name"]: d.version for d in importlib.metadata.distributions()}))
"""


def pinned() -> dict[str, str]:
    """name -> version of every line of requirements/examples.txt that applies here."""
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate():
                (specifier,) = requirement.specifier
                assert specifier.operator == "==", line
                pins[canonicalize_name(requirement.name)] = specifier.version
    return pins


def wheelhouse() -> Path:
    """Every file requirements/examples.txt names, fetched from the package index once
    per machine (and again when the file changes). pip spends about 15 s of CPU reading
    the index pages of ~50 projects (tens of thousands of links) on every install; the
    test installs from these files instead, the way a company mirror serves them."""
    key = hashlib.sha256(
        REQUIREMENTS.read_bytes() + f"{sys.version_info[:2]}{sysconfig.get_platform()}".encode()
    ).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "distributed-python-wheelhouse" / key
    with sysdeps.machine_lock("wheelhouse"):
        if not (folder / "complete").exists():
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(folder),
                 "-r", str(REQUIREMENTS)],
                capture_output=True, text=True, timeout=540, check=False,
            )  # fmt: skip
            assert result.returncode == 0, result.stdout + result.stderr
            (folder / "complete").touch()
    return folder


# The page's commands as a reader runs them; pip reads a local copy of the index's files
# (wheelhouse above) instead of the index itself: the same files, the same resolution.
@pytest.mark.timeout(600)
def test_install_snippet_makes_a_venv_with_the_locked_versions(tmp_path: Path) -> None:
    (tmp_path / "requirements").mkdir()
    shutil.copy(REQUIREMENTS, tmp_path / "requirements")
    script = INSTALL.read_text() + "python -c 'import sanic, httpx, orjson, grpc, redis'\n"
    # Byte-compiling every module is most of pip's time here, and nothing the page claims.
    env = {
        **os.environ,
        "PIP_NO_COMPILE": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheelhouse()),
        "PIP_CONFIG_FILE": os.devnull,  # this machine's own index settings play no part
    }
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    python = tmp_path / ".venv/bin/python"
    report = subprocess.run(
        [python, "-c", INSTALLED], capture_output=True, text=True, check=True, timeout=60
    )
    installed = {canonicalize_name(k): v for k, v in json.loads(report.stdout).items()}
    expected = pinned()
    assert {name: installed.get(name) for name in expected} == expected
    # Nothing beyond the pins, except the installer itself.
    assert set(installed) - set(expected) == {"pip"}
