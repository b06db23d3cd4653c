"""Fixtures for the observability chapter: a real rsyslog collecting JSON logs over UDP."""

from __future__ import annotations

import json
import shlex
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sysdeps
from harness import LOOPBACK, ROOT, Service, wait_until

SNIPPETS = ROOT / "snippets" / "observability"


def script_command(script: str) -> tuple[dict[str, str], list[str]]:
    """The one command of a snippets/observability/*.sh script: its variables and argv."""
    lines = [
        line
        for line in (SNIPPETS / script).read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "mkdir "))
    ]
    assert len(lines) == 1, f"{script} should hold one command: {lines}"
    words = shlex.split(lines[0])
    env: dict[str, str] = {}
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    return env, words


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def udp_bound(port: int) -> bool:
    """rsyslog listens on 127.0.0.1:port (/proc/net/udp lists the socket once bound)."""
    local = f"0100007F:{port:04X}"
    return any(
        line.split()[1] == local for line in Path("/proc/net/udp").read_text().splitlines()[1:]
    )


@dataclass
class Collector:
    port: int
    file: Path
    service: Service

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def records(self) -> list[dict]:
        if not self.file.exists():
            return []
        text = self.file.read_text()
        complete = text[: text.rfind("\n") + 1]  # a line being written is read next time
        return [json.loads(line) for line in complete.splitlines()]

    def wait_for(self, predicate, what: str) -> list[dict]:
        """Records once one matches: UDP delivery and rsyslog's writes are asynchronous."""
        wait_until(lambda: any(predicate(r) for r in self.records()), 10, what)
        return self.records()


@pytest.fixture
def rsyslog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    """rsyslogd in the foreground with snippets/observability/rsyslog.conf, as the page
    starts it (snippets/observability/logging_rsyslog.sh), on a free UDP port."""
    rsyslogd = sysdeps.require("rsyslogd")["rsyslogd"]
    env, argv = script_command("logging_rsyslog.sh")
    assert argv[0] == "rsyslogd"
    assert argv[1:4] == [
        "-n",
        "-f",
        "snippets/observability/rsyslog.conf",
    ]
    assert set(env) == {"COLLECTOR_PORT", "COLLECTOR_FILE", "COLLECTOR_DIR"}, env
    port = free_udp_port()
    file = tmp_path / "collected.jsonl"
    # rsyslog reads $COLLECTOR_* from its own environment: Service passes ours on,
    # and monkeypatch takes the variables back once it has started.
    argv = [rsyslogd, "-n", "-f", str(SNIPPETS / "rsyslog.conf"), "-i", str(tmp_path / "pid")]
    service = Service("rsyslogd", argv, port, tmp_path, stop_signal=signal.SIGTERM)
    with monkeypatch.context() as patch:
        patch.setenv("COLLECTOR_PORT", str(port))
        patch.setenv("COLLECTOR_FILE", str(file))
        patch.setenv("COLLECTOR_DIR", str(tmp_path))
        service.start(lambda: udp_bound(port))
    yield Collector(port, file, service)
    service.stop()
