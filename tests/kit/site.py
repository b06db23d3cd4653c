"""The site built once per tree for the whole test run, shared by the modules that read it.

tests/test_site_assets.py reads the built files and tests/site/test_browser.py loads
them in a browser; a strict build takes about 10 s of CPU, and they need the same
one. `built_site()` builds into a machine-wide cache keyed on everything the build
reads (the config, docs/, snippets/, examples/, the hooks, overrides and includes,
the Mermaid version in package-lock.json, the git commit for the page dates), under
a machine lock, so parallel workers wait for one build instead of making two. A
failed build fails every caller, never skips; the next call tries again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from kit import sysdeps
from kit.process import ROOT

INPUTS = (
    "mkdocs.yml",
    "package-lock.json",
    "docs",
    "snippets",
    "examples",
    "hooks",
    "overrides",
    "includes",
)
CACHE = Path(tempfile.gettempdir()) / "distributed-python-site"


def tree_key() -> str:
    digest = hashlib.sha256()
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    digest.update(head.stdout.encode())
    for name in INPUTS:
        top = ROOT / name
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            if "__pycache__" in path.parts:
                continue
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def built_site() -> Path:
    """The site of this tree, built with --strict (once per tree and machine)."""
    # The test group includes the docs group: mkdocs sits beside this interpreter.
    mkdocs = Path(sys.executable).parent / "mkdocs"
    assert mkdocs.exists(), f"no {mkdocs}: the test venv lacks the docs group (uv sync)"
    key = tree_key()
    folder = CACHE / key
    with sysdeps.machine_lock("site-build"):
        if (folder / "complete").exists():
            return folder / "site"
        for old in CACHE.glob("*"):  # one tree's build at a time is enough
            shutil.rmtree(old, ignore_errors=True)
        folder.mkdir(parents=True)
        result = subprocess.run(
            [str(mkdocs), "build", "--strict", "--quiet", "--site-dir", str(folder / "site")],
            cwd=ROOT,
            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, (
            f"mkdocs build --strict failed:\n{result.stdout}{result.stderr}"
        )
        (folder / "complete").touch()
    return folder / "site"
