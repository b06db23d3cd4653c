"""The set-up commands on the home page give a venv that runs the examples."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from harness import ROOT

INSTALL = ROOT / "snippets/why_distributed/install.sh"


def test_install_snippet_makes_a_venv_that_imports_the_examples(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    script = INSTALL.read_text() + "python -c 'import sanic, httpx, orjson'\n"
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / ".venv/bin/python").exists()
