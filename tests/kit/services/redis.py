"""redis-server on a free loopback port, nothing persisted, in its own directory."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from kit import sysdeps
from kit.process import LOOPBACK, Process, free_port


class RedisServer:
    """A real Redis; `.stop()` and `.start()` again work mid-test (same port, no data kept)."""

    def __init__(self, workdir: Path) -> None:
        binary = sysdeps.require("redis-server")["redis-server"]
        self.port = free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        argv = [
            binary,
            "--bind", LOOPBACK,
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--protected-mode", "yes",
        ]  # fmt: skip
        self.process = Process("redis", argv, workdir / "redis.log", cwd=workdir)

    def _pong(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        self.process.start(self._pong)

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port, for one test."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def module_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for a whole test module (tests that leave it running)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()
