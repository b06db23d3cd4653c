"""Fixtures: example programs and real services on free loopback ports."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sysdeps
from harness import PostgresServer, RedisServer, RunningExample, start_example

StartExample = Callable[..., RunningExample]


@contextlib.contextmanager
def example_runner(log_dir: Path) -> Iterator[StartExample]:
    started: list[RunningExample] = []

    def start(example: str, **kwargs: object) -> RunningExample:
        running = start_example(example, log_dir, **kwargs)  # type: ignore[arg-type]
        started.append(running)
        return running

    yield start

    failures = []
    for running in started:
        if running.stopped:
            continue
        code = running.stop()
        if code != 0:
            failures.append(f"{running.example} exited with {code}:\n{running.output()}")
    assert not failures, "\n\n".join(failures)


@pytest.fixture
def run_example(tmp_path: Path) -> Iterator[StartExample]:
    """Start examples as their pages say; stop each with SIGTERM and check a clean exit.

    `run_example("why_distributed/recipe_api.py", env={...})` returns a
    RunningExample once GET /health answers 200 (or `ready="port"` for a
    non-HTTP program). At the end of the test every example still running gets
    SIGTERM and must exit with code 0 within the time limit.
    """
    with example_runner(tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def run_shared_example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartExample]:
    """Like run_example, for examples that a whole test module only reads from."""
    with example_runner(tmp_path_factory.mktemp("examples")) as start:
        yield start


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port; `.stop()` and `.start()` work mid-test."""
    programs = sysdeps.require("redis-server")
    server = RedisServer(programs["redis-server"], tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A real PostgreSQL cluster for the session, on a free loopback port."""
    programs = sysdeps.require("initdb", "postgres", "pg_isready")
    # Not under pytest's temporary root: that is private to root (0700), and as
    # root the server runs as the postgres user, who must reach its directory.
    workdir = Path(tempfile.mkdtemp(prefix="distributed-python-pg-"))
    server = PostgresServer(programs, workdir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
