"""A throwaway PostgreSQL cluster on a free loopback port, once per test worker.

initdb refuses to run as root, so as root every server program runs as the
`postgres` user (what `runuser -u postgres --` does, without the extra process in
between) with a data directory that user owns. Not under pytest's temporary root:
that is private to root (0700), and the postgres user must reach its directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit import sysdeps
from kit.process import LOOPBACK, Process, StartupError, free_port


class PostgresServer:
    def __init__(self, workdir: Path) -> None:
        self.programs = sysdeps.require("initdb", "postgres", "pg_isready")
        self.port = free_port()
        self.workdir = workdir
        self.datadir = workdir / "data"
        self.socketdir = workdir / "socket"
        self.user = "postgres" if os.geteuid() == 0 else None
        self.url = f"postgresql://postgres@{LOOPBACK}:{self.port}/postgres"
        argv = [
            self.programs["postgres"],
            "-D", str(self.datadir),
            "-c", f"listen_addresses={LOOPBACK}",
            "-p", str(self.port),
            "-k", str(self.socketdir),
            "-c", "fsync=off",
            "-c", "full_page_writes=off",
            "-c", "synchronous_commit=off",
        ]  # fmt: skip
        # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM would wait for clients to leave.
        self.process = Process(
            "postgres",
            argv,
            workdir / "postgres.log",
            cwd=workdir,
            user=self.user,
            stop_signal=signal.SIGINT,
        )

    def init(self) -> None:
        self.socketdir.mkdir(parents=True)
        self.datadir.mkdir()
        if self.user:
            for path in (self.workdir, self.datadir, self.socketdir):
                shutil.chown(path, self.user)
            self.workdir.chmod(0o755)
        result = subprocess.run(
            [
                self.programs["initdb"],
                "--pgdata", str(self.datadir),
                "--username", "postgres",
                "--auth", "trust",
                "--no-sync",
                "--encoding", "UTF8",
            ],
            check=False,
            capture_output=True,
            text=True,
            cwd=self.workdir,
            user=self.user,
            group=self.user,
            extra_groups=[] if self.user else None,
        )  # fmt: skip
        if result.returncode != 0:
            raise StartupError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def _accepts(self) -> bool:
        # A connection during start-up gets "the database system is starting up";
        # pg_isready says when it really accepts.
        argv = [self.programs["pg_isready"], "-h", LOOPBACK, "-p", str(self.port), "-q"]
        return subprocess.run(argv, check=False).returncode == 0

    def start(self) -> None:
        self.process.start(self._accepts)

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL cluster for the whole worker, on a free loopback port.

    A test that stops it must start it again before it ends.
    """
    workdir = Path(tempfile.mkdtemp(prefix="distributed-python-pg-"))
    server = PostgresServer(workdir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
