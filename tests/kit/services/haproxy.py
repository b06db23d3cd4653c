"""HAProxy started with a page's own cfg and script, on free ports.

Each `snippets/<chapter>/haproxy_*.cfg` is run by the one-line script beside it
(`haproxy -db -f snippets/scaling/haproxy_lb.cfg`: `-db` keeps it in the
foreground, so Ctrl-C stops it), from the repository root. The cfg reads its
ports from the environment (FRONTEND_PORT, STATS_PORT, BACKEND1_PORT...).
"""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kit import snippets, sysdeps
from kit.process import LOOPBACK, ROOT, Process, free_port, port_open


def haproxy_command(cfg: str) -> list[str]:
    """The command the page gives readers for a cfg: the one line of its .sh script."""
    env, argv = snippets.command(Path(cfg).with_suffix(".sh"))
    assert not env, env
    assert argv[0] == "haproxy", argv
    assert argv[-2:] == ["-f", cfg], argv
    return argv


class RunningHaproxy(Process):
    def __init__(self, cfg: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.cfg = cfg
        # SIGUSR1 is the soft stop: stop listening, finish open connections, exit 0.
        super().__init__("haproxy", argv, log_path, env=env, stop_signal=signal.SIGUSR1)

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self.popen is not None
        return self.popen

    @property
    def port(self) -> int:
        return int(self.env["FRONTEND_PORT"])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def stats(self) -> list[dict[str, str]]:
        """The stats page as CSV (`/stats;csv`): one dict per proxy and server row."""
        answer = httpx.get(f"http://{LOOPBACK}:{self.env['STATS_PORT']}/stats;csv", timeout=5)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain")
        text = answer.text.removeprefix("# ")  # the header line is "# pxname,svname,..."
        return list(csv.DictReader(io.StringIO(text)))

    def server(self, backend: str, name: str) -> dict[str, str]:
        rows = [r for r in self.stats() if r["pxname"] == backend and r["svname"] == name]
        assert len(rows) == 1, f"no server {backend}/{name} in the stats"
        return rows[0]

    def stop(self, sig: int | None = None, timeout: float = 10) -> int | None:
        """Soft stop; if clients keep connections open past `timeout`, a hard stop (SIGTERM)."""
        if self.alive():
            self.process.send_signal(sig or self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.terminate()
        return super().stop(signal.SIGTERM, timeout)


class StartHaproxy:
    """What the `haproxy` fixture gives a test: call it with a cfg path and env."""

    command = staticmethod(haproxy_command)

    def __init__(self, workdir: Path) -> None:
        self.binary = sysdeps.require("haproxy")["haproxy"]
        self.workdir = workdir
        self.started: list[RunningHaproxy] = []

    def __call__(self, cfg: str, env: dict[str, str] | None = None) -> RunningHaproxy:
        child_env = {
            "FRONTEND_PORT": str(free_port()),
            "STATS_PORT": str(free_port()),
            **(env or {}),
        }
        check = subprocess.run(
            [self.binary, "-c", "-f", cfg],
            cwd=ROOT,
            env={**os.environ, **child_env},
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, f"haproxy -c rejects {cfg}:\n{check.stdout}{check.stderr}"
        assert "Configuration file is valid" in check.stdout
        assert "WARNING" not in check.stdout + check.stderr, check.stdout + check.stderr
        argv = [self.binary, *haproxy_command(cfg)[1:]]
        log_path = self.workdir / f"haproxy.{len(self.started)}.log"
        running = RunningHaproxy(cfg, argv, child_env, log_path)
        self.started.append(running)
        running.start(lambda: port_open(running.port))
        return running


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[StartHaproxy]:
    """Start HAProxy with a cfg from snippets/, as the page says, on free ports.

    `haproxy("snippets/scaling/haproxy_lb.cfg", {"BACKEND1_PORT": "4123"})` checks the
    file with `haproxy -c` first (no warning allowed), runs the page's command with the
    environment given (FRONTEND_PORT and STATS_PORT get free ports unless set), and
    returns once the frontend accepts connections. Each one is soft-stopped at the end
    of the test and must exit with code 0.
    """
    start = StartHaproxy(tmp_path)
    yield start
    codes = {running.cfg: running.stop() for running in start.started}
    assert all(code == 0 for code in codes.values()), codes
