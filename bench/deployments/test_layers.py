"""What each layer of tests costs: wall-clock seconds for one run, median of ROUNDS.

The layers, each run as a developer or CI runs it, in a process of its own:

- unit: the packaged recipe-api's own tests (`python -m pytest -q -p no:cacheprovider`
  with PYTHONPATH=src, in a scratch copy of examples/deployments/recipe_api_package);
- integration: tests/why_distributed/test_sample_services.py, the sample services
  started as real processes on loopback ports and driven over HTTP (`-n 0`);
- contract: tests/test_contract.py for recipe-api alone (`-k recipe_api -n 0`);
- build: the pipeline's whole build of a commit (`pipeline.py build HEAD` in a scratch
  git repository: git archive, lint, the unit tests, the wheel).

The rounds interleave the layers, after one warm-up run of each. Wall clock counts
from the start of the process to its exit (interpreter, imports, collection,
fixtures); pytest's own figure is the time it reports for the session. Writes
snippets/deployments/test_layers.md.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kit.process import ROOT

from bench.common import markdown_table, stamp, write_results

RESULTS = "deployments/test_layers.md"
COMMAND = "./nox -s bench -- test_layers"
ROUNDS = 5
PACKAGE = "examples/deployments/recipe_api_package"
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
GIT = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
}  # fmt: skip


@dataclass
class Layer:
    name: str
    what: str  # the table's description
    argv: list[str]
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    fresh_out: bool = False  # the build: a new output directory each run
    walls: list[float] = field(default_factory=list)
    reported: list[float] = field(default_factory=list)  # pytest's "in 1.23s"
    tests: int = 0

    def run(self, scratch: Path) -> None:
        argv = list(self.argv)
        if self.fresh_out:
            argv += ["--out", tempfile.mkdtemp(dir=scratch)]
        started = time.perf_counter()
        result = subprocess.run(argv, cwd=self.cwd, env=self.env, capture_output=True,
                                text=True, timeout=600, check=False)  # fmt: skip
        wall = time.perf_counter() - started
        if result.returncode != 0:
            sys.exit(f"{self.name} failed:\n{result.stdout}{result.stderr}")
        self.walls.append(wall)
        summary = re.search(r"(\d+) passed.* in ([\d.]+)s", result.stdout)
        if summary:
            self.tests = int(summary[1])
            self.reported.append(float(summary[2]))


def clean_env(**extra: str) -> dict[str, str]:
    """This environment's tools first on PATH; no PYTHONPATH or coverage of the caller."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("COV")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return {**env, **extra}


def scratch_package(scratch: Path) -> Path:
    target = scratch / "unit" / "recipe_api_package"
    ignore = shutil.ignore_patterns("__pycache__", "dist", ".ruff_cache")
    shutil.copytree(ROOT / PACKAGE, target, ignore=ignore)
    return target


def scratch_repo(scratch: Path) -> Path:
    """A git repository with what the pipeline's build reads, one commit."""
    repo = scratch / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "dist", ".ruff_cache")
    shutil.copytree(ROOT / PACKAGE, repo / PACKAGE, ignore=ignore)
    shutil.copy(ROOT / "examples/deployments/pipeline.py", repo / "examples/deployments")
    env = clean_env(**GIT)
    for argv in (["git", "init", "--quiet"], ["git", "add", "-A"], ["git", "commit", "-qm", "x"]):
        subprocess.run(argv, cwd=repo, env=env, check=True, capture_output=True)
    return repo


def unit_count(package: Path) -> int:
    result = subprocess.run([*PYTEST, "--collect-only"], cwd=package, capture_output=True,
                            text=True, env=clean_env(PYTHONPATH="src"), check=True)  # fmt: skip
    return int(re.search(r"(\d+) tests? collected", result.stdout)[1])  # type: ignore[index]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-layers-") as tmp:
        scratch = Path(tmp)
        package, repo = scratch_package(scratch), scratch_repo(scratch)
        layers = [
            Layer("unit", "unit: the package's own tests, no server",
                  PYTEST, package, clean_env(PYTHONPATH="src")),
            Layer("integration", "integration: `test_sample_services.py`, real processes",
                  [*PYTEST, "-n", "0", "tests/why_distributed/test_sample_services.py"],
                  ROOT, clean_env()),
            Layer("contract", "contract: `test_contract.py -k recipe_api`",
                  [*PYTEST, "-n", "0", "-k", "recipe_api", "tests/test_contract.py"],
                  ROOT, clean_env()),
            Layer("build", "the pipeline's build: lint, unit tests, wheel",
                  [sys.executable, "examples/deployments/pipeline.py", "build", "HEAD"],
                  repo, clean_env(), fresh_out=True),
        ]  # fmt: skip
        for layer in layers:  # warm-up: .pyc files, the kit's one-time installs
            layer.run(scratch)
            layer.walls.clear()
            layer.reported.clear()
        for round_ in range(ROUNDS):
            for layer in layers:
                layer.run(scratch)
                print(f"round {round_ + 1}: {layer.name} {layer.walls[-1]:.2f} s", flush=True)
        build = layers[-1]
        build.tests = unit_count(package)

    rows = []
    for layer in layers:
        wall = statistics.median(layer.walls)
        if layer.reported:
            own = statistics.median(layer.reported)
            rows.append([layer.what, layer.tests, f"{wall:.2f}", f"{own:.2f}",
                         f"{own / layer.tests:.3f}"])  # fmt: skip
        else:
            rows.append([layer.what, f"{layer.tests} (unit)", f"{wall:.2f}", "—", "—"])
    header = ["layer", "tests", f"wall clock, s (median of {ROUNDS})", "pytest's own, s",
              "per test, s"]  # fmt: skip
    per_test = {layer.name: statistics.median(layer.reported) / layer.tests for layer in layers
                if layer.reported}  # fmt: skip
    ratios = (
        f"Per test, an integration test costs {per_test['integration'] / per_test['unit']:.0f} "
        f"times a unit test, a contract test {per_test['contract'] / per_test['unit']:.0f} times."
    )
    line = stamp(["pytest", "pytest-xdist", "sanic", "ruff", "build"])
    write_results(RESULTS, markdown_table(header, rows) + "\n\n" + ratios, line, COMMAND)
