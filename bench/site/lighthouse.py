"""Lighthouse scores of the built site: the home page and two long chapter pages.

Builds the committed site (HEAD, --strict), serves it on a free loopback port, and
runs Lighthouse (tools/lighthouse, pinned by its own package-lock.json) in Debian's
chromium, headless, with its desktop settings. Writes snippets/site/lighthouse.md, which
docs/about.md shows, naming every score under the bar of 95. Performance is
measured on this machine's CPU (the desktop preset does not throttle it), so a busy
machine lowers it: run it on a quiet one; the results say the load average.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from kit import sysdeps
from kit.process import Process, free_port, http_ok

from bench.common import ROOT, markdown_table, stamp, write_results

RESULTS = "site/lighthouse.md"
COMMAND = "./nox -s bench -- lighthouse"
TOOLS = ROOT / "tools" / "lighthouse"
STATIC_SERVER = Path(__file__).with_name("static_server.py")
LIGHTHOUSE = TOOLS / "node_modules" / "lighthouse" / "cli" / "index.js"
PAGES = {
    "Home": "",
    "HTTP on the wire (chapter 2)": "protocols/http/",
    "Retries (chapter 8)": "resilience/retries/",
}
CATEGORIES = {
    "performance": "Performance",
    "accessibility": "Accessibility",
    "best-practices": "Best practices",
    "seo": "SEO",
}
BAR = 95


def install() -> tuple[str, str]:
    """node, and Lighthouse as tools/lighthouse/package-lock.json pins it."""
    programs = sysdeps.require("node", "npm", "chromium")
    with sysdeps.machine_lock("npm-ci-lighthouse"):
        if not LIGHTHOUSE.exists():
            subprocess.run(sysdeps.NPM_CI, cwd=TOOLS, check=True)
    return programs["node"], programs["chromium"]


def build(scratch: Path) -> Path:
    """The site as committed (HEAD, from a worktree), built strictly into scratch/site."""
    tree, site = scratch / "tree", scratch / "site"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), "HEAD"], cwd=ROOT, check=True)
    try:
        (tree / "node_modules").symlink_to(ROOT / "node_modules")  # mermaid, for the hook
        subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
            cwd=tree,
            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
            check=True,
        )
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=True)
    return site


def audit(node: str, chromium: str, url: str, report: Path) -> dict[str, int]:
    subprocess.run(
        [
            node, str(LIGHTHOUSE), url,
            "--quiet", "--output=json", f"--output-path={report}",
            f"--only-categories={','.join(CATEGORIES)}",
            "--preset=desktop",
            "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
        ],
        env={"CHROME_PATH": chromium, "PATH": "/usr/bin:/bin"},
        check=True,
        timeout=180,
    )  # fmt: skip
    categories = json.loads(report.read_text())["categories"]
    return {key: round(categories[key]["score"] * 100) for key in CATEGORIES}


def main() -> None:
    node, chromium = install()
    with tempfile.TemporaryDirectory() as scratch:
        site = build(Path(scratch))
        port = free_port()
        server = Process(
            "site",
            [sys.executable, str(STATIC_SERVER), str(site), str(port)],
            Path(scratch) / "server.log",
            cwd=site,
        ).start(ready=http_ok(f"http://127.0.0.1:{port}/"))
        try:
            report = Path(scratch) / "report.json"
            base = f"http://127.0.0.1:{port}/"
            scores = {
                title: audit(node, chromium, base + path, report) for title, path in PAGES.items()
            }
        finally:
            server.stop()
    rows = [[title, *(scores[title][key] for key in CATEGORIES)] for title in PAGES]
    body = markdown_table(["page", *CATEGORIES.values()], rows)
    low = [
        f"{title}: {CATEGORIES[key]}"
        for title in PAGES
        for key, score in scores[title].items()
        if score < BAR
    ]
    body += (
        "\n\nLighthouse's desktop audit (`--preset=desktop`) of the committed site, served "
        "with gzip by `bench/site/static_server.py` on 127.0.0.1, in Debian's chromium, "
        f"headless; load average {os.getloadavg()[0]:.1f} on this machine during the run. "
        + (f"Under the bar of {BAR}: {'; '.join(low)}." if low else f"Every score {BAR} or more.")
    )
    lighthouse = json.loads((TOOLS / "package.json").read_text())["dependencies"]["lighthouse"]
    chromium_version = subprocess.run(
        [chromium, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    write_results(
        RESULTS,
        body,
        stamp(["mkdocs", "mkdocs-material"], {"node": ["node", "--version"]})[:-1]
        + f", Lighthouse {lighthouse}, {chromium_version}.",
        COMMAND,
    )
    low = [
        f"{title}: {CATEGORIES[key]} {score}"
        for title in PAGES
        for key, score in scores[title].items()
        if score < BAR
    ]
    if low:  # on the page, in the results file, and on the terminal
        print("under the bar of 95: " + "; ".join(low), file=sys.stderr)
