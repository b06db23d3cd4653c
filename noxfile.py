"""Sessions for the site and its examples.

`nox` runs lint, docs and tests. `nox -s serve` serves the site on
http://127.0.0.1:8000 and `nox -s bench` regenerates the figures the pages show.
"""

from __future__ import annotations

import os

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "docs", "tests"]

PYPROJECT = nox.project.load_toml("pyproject.toml")


def install_group(session: nox.Session, *groups: str) -> None:
    requirements: list[str] = []
    for group in groups:
        requirements += nox.project.dependency_groups(PYPROJECT, group)
    session.install(*requirements)


def quiet_mkdocs(session: nox.Session) -> dict[str, str]:
    # mkdocs-material 9.7+ prints a banner about MkDocs 2; this project pins mkdocs<2.
    return {"NO_MKDOCS_2_WARNING": "1"}


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over examples, tests, bench and this file."""
    install_group(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the site with --strict: a broken link, anchor or snippet fails."""
    install_group(session, "docs")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site", env=quiet_mkdocs(session))


@nox.session
def tests(session: nox.Session) -> None:
    """Every example against real services, every inline block, coverage of examples/."""
    install_group(session, "test")
    session.run("coverage", "erase")
    # One worker per core; a test module stays on one worker (its services and
    # module fixtures are shared by its tests). `-- -n 0` runs in one process.
    parallel = ["--numprocesses", "auto", "--dist", "loadfile"]
    session.run("coverage", "run", "-m", "pytest", *parallel, *session.posargs)
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "report")


@nox.session(default=False)
def serve(session: nox.Session) -> None:
    """Serve the site with live reload on http://127.0.0.1:8000."""
    install_group(session, "docs")
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
    install_group(session, "test")
    env = {"PYTHONUNBUFFERED": "1"}
    if os.environ.get("BENCH_DURATION"):
        env["BENCH_DURATION"] = os.environ["BENCH_DURATION"]
    session.run("python", "-m", "bench", *session.posargs, env=env)
