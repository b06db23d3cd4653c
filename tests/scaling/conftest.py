"""Fixtures for the scaling chapter's tests: a real HAProxy started with a page's cfg."""

from __future__ import annotations

import csv
import io
import os
import shlex
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sysdeps
from harness import (
    LOOPBACK,
    ROOT,
    STARTUP_TIMEOUT,
    STOP_TIMEOUT,
    StartupError,
    free_port,
    port_open,
    wait_until,
)


def haproxy_command(cfg: str) -> list[str]:
    """The command the page gives readers for a cfg: the one line of its .sh script.

    `snippets/scaling/haproxy_lb.cfg` is run by `snippets/scaling/haproxy_lb.sh`,
    `haproxy -db -f snippets/scaling/haproxy_lb.cfg` (`-db`: in the foreground,
    no daemon, so Ctrl-C stops it), from the repository root.
    """
    script = ROOT / Path(cfg).with_suffix(".sh")
    lines = [
        line
        for line in script.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(lines) == 1, f"{script.name} should hold one command: {lines}"
    argv = shlex.split(lines[0])
    assert argv[0] == "haproxy", argv
    assert argv[-2:] == ["-f", cfg], argv
    return argv


@dataclass
class RunningHaproxy:
    cfg: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.env["FRONTEND_PORT"])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

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

    def stop(self) -> int:
        """Soft stop (SIGUSR1): stop listening, finish open connections, exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.terminate()  # hard stop
                self.process.wait(STOP_TIMEOUT)
        return self.process.returncode


class StartHaproxy:
    """What the `haproxy` fixture gives a test: call it with a cfg path and env."""

    command = staticmethod(haproxy_command)

    def __init__(self, start: Callable[..., RunningHaproxy]) -> None:
        self._start = start

    def __call__(self, cfg: str, env: dict[str, str] | None = None) -> RunningHaproxy:
        return self._start(cfg, env)


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[StartHaproxy]:
    """Start HAProxy with a cfg from snippets/, as the page says, on free ports.

    `haproxy("snippets/scaling/haproxy_lb.cfg", {"BACKEND1_PORT": "4123"})`
    checks the file with `haproxy -c` first, then runs `haproxy -db -f <cfg>`
    from the repository root with the environment given (FRONTEND_PORT and
    STATS_PORT get free ports unless set), and returns once the frontend port
    accepts connections. Every HAProxy started is stopped at the end of the
    test and must exit with code 0.
    """
    binary = sysdeps.require("haproxy")["haproxy"]
    started: list[RunningHaproxy] = []

    def start(cfg: str, env: dict[str, str] | None = None) -> RunningHaproxy:
        child_env = {
            **os.environ,
            "FRONTEND_PORT": str(free_port()),
            "STATS_PORT": str(free_port()),
            **(env or {}),
        }
        argv = [binary, *haproxy_command(cfg)[1:]]
        check = subprocess.run(
            [binary, "-c", "-f", cfg],
            cwd=ROOT,
            env=child_env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, f"haproxy -c rejects {cfg}:\n{check.stdout}{check.stderr}"
        assert "Configuration file is valid" in check.stdout
        assert "WARNING" not in check.stdout + check.stderr, check.stdout + check.stderr
        log_path = tmp_path / f"haproxy.{len(started)}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=child_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        running = RunningHaproxy(cfg, process, child_env, log_path)
        started.append(running)

        def ready() -> bool:
            if process.poll() is not None:
                raise StartupError(f"haproxy exited with {process.returncode}:\n{running.output()}")
            return port_open(running.port)

        wait_until(ready, STARTUP_TIMEOUT, f"haproxy on port {running.port}")
        return running

    yield StartHaproxy(start)

    codes = {running.cfg: running.stop() for running in started}
    assert all(code == 0 for code in codes.values()), codes
