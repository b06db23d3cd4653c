"""memcached on a free loopback port, TCP only, nothing kept between starts."""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit import sysdeps
from kit.process import LOOPBACK, Process, free_port, port_open


def _unprivileged_user() -> str | None:
    """memcached refuses to run as root without `-u USER`: the first user that exists."""
    if os.geteuid() != 0:
        return None
    for name in ("memcache", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and neither user memcache nor nobody exists")


class MemcachedServer:
    """A real memcached; `.stop()` and `.start()` again work mid-test (same port, empty)."""

    def __init__(self, workdir: Path, memory_mb: int = 16) -> None:
        binary = sysdeps.require("memcached")["memcached"]
        self.port = free_port()
        self.host = LOOPBACK
        argv = [binary, "-l", LOOPBACK, "-p", str(self.port), "-U", "0", "-m", str(memory_mb)]
        user = _unprivileged_user()
        if user:
            argv += ["-u", user]  # memcached drops to this user itself
        self.process = Process("memcached", argv, workdir / "memcached.log", cwd=workdir)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.process.start(lambda: port_open(self.port))

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def memcached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemcachedServer]:
    """A real memcached on a free loopback port, for one test (it may stop and start it)."""
    server = MemcachedServer(tmp_path_factory.mktemp("memcached"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_memcached(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemcachedServer]:
    """One memcached for a whole test module (tests that leave it running)."""
    server = MemcachedServer(tmp_path_factory.mktemp("memcached"))
    server.start()
    yield server
    server.stop()
