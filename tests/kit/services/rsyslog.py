"""rsyslogd collecting JSON log lines over UDP, started as the page starts it.

The page runs `snippets/observability/logging_rsyslog.sh`: rsyslogd in the
foreground with the committed rsyslog.conf, which reads COLLECTOR_PORT,
COLLECTOR_FILE and COLLECTOR_DIR from its environment.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kit import snippets, sysdeps
from kit.process import LOOPBACK, Process, free_udp_port, udp_bound, wait_until

SCRIPT = "snippets/observability/logging_rsyslog.sh"
CONF = "snippets/observability/rsyslog.conf"


@dataclass
class Collector:
    port: int
    file: Path
    process: Process

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def records(self) -> list[dict]:
        if not self.file.exists():
            return []
        text = self.file.read_text()
        complete = text[: text.rfind("\n") + 1]  # a line being written is read next time
        return [json.loads(line) for line in complete.splitlines()]

    def wait_for(self, predicate: Callable[[dict], bool], what: str) -> list[dict]:
        """Records once one matches: UDP delivery and rsyslog's writes are asynchronous."""
        wait_until(lambda: any(predicate(r) for r in self.records()), 10, what)
        return self.records()


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Collector]:
    """rsyslogd with the page's config on a free UDP port, writing to a file under tmp_path."""
    rsyslogd = sysdeps.require("rsyslogd")["rsyslogd"]
    mkdir, line = snippets.commands(SCRIPT)
    assert mkdir.startswith("mkdir -p "), mkdir
    env, argv = snippets.split(line)
    assert argv[0] == "rsyslogd"
    assert argv[1:4] == ["-n", "-f", CONF]
    assert set(env) == {"COLLECTOR_PORT", "COLLECTOR_FILE", "COLLECTOR_DIR"}, env
    port = free_udp_port()
    file = tmp_path / "collected.jsonl"
    env = {"COLLECTOR_PORT": str(port), "COLLECTOR_FILE": str(file), "COLLECTOR_DIR": str(tmp_path)}
    assert argv[4] == "-i", argv  # its pid file, under the reader's directory
    argv = [rsyslogd, *argv[1:4], "-i", str(tmp_path / "rsyslogd.pid")]
    process = Process("rsyslogd", argv, tmp_path / "rsyslogd.log", env=env)
    process.start(lambda: udp_bound(port))
    yield Collector(port, file, process)
    process.stop()
