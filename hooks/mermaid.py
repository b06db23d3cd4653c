"""Mermaid from the npm package pinned in package-lock.json, never from a CDN.

As a MkDocs hook (`hooks:` in mkdocs.yml) it adds node_modules/mermaid/dist/mermaid.min.js
to the site as javascripts/mermaid.min.js, and fails the build when that file is missing
or is not the version package-lock.json pins. Material renders diagrams with a global
`mermaid` when a page has loaded one, and fetches it from unpkg.com otherwise: the pages
with a diagram load this copy (overrides/main.html), so the CDN is never asked.

Run as a script (`python hooks/mermaid.py`, as `nox -s docs` and `nox -s serve` do), it
runs `npm ci` at the repository root when node_modules is out of step, with the test
kit's installer (node and npm from apt when missing, one `npm ci` per machine at a time).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "node_modules" / "mermaid"
SCRIPT = PACKAGE / "dist" / "mermaid.min.js"
SITE_PATH = "javascripts/mermaid.min.js"


def locked_version() -> str:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    return lock["packages"]["node_modules/mermaid"]["version"]


def installed_version() -> str | None:
    try:
        return json.loads((PACKAGE / "package.json").read_text())["version"]
    except FileNotFoundError:
        return None


def problem() -> str | None:
    """Why node_modules cannot give the site its Mermaid, or None when it can."""
    locked, installed = locked_version(), installed_version()
    if installed is None or not SCRIPT.exists():
        return f"{SCRIPT.relative_to(ROOT)} is missing (package-lock.json pins mermaid {locked})"
    if installed != locked:
        return f"node_modules has mermaid {installed}, package-lock.json pins {locked}"
    return None


def on_files(files: Files, config: MkDocsConfig) -> Files:
    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import File

    found = problem()
    if found:
        raise PluginError(f"{found}: run `npm ci` at the repository root (`./nox -s docs` does)")
    files.append(File.generated(config, SITE_PATH, abs_src_path=str(SCRIPT)))
    return files


def install() -> None:
    """`npm ci` when node_modules does not hold the pinned Mermaid; nothing otherwise."""
    if problem() is None:
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from kit import sysdeps

    sysdeps.require("node", "npm")
    with sysdeps.machine_lock("npm-ci"):  # the lock the test kit's `npm ci` holds
        found = problem()
        if found is None:  # another process installed it meanwhile
            return
        print(f"{found}: {' '.join(sysdeps.NPM_CI)}", flush=True)
        subprocess.run(sysdeps.NPM_CI, cwd=ROOT, check=True)
    found = problem()
    if found:
        raise SystemExit(f"npm ci did not install mermaid: {found}")


if __name__ == "__main__":
    install()
