"""Start example programs by forking a warm Python instead of starting a cold one.

Most of an example's start is importing sanic, pydantic, httpx...: about 0.3 s of
CPU each time, over several hundred starts a run. The fork server is one Python
per test worker that has imported them once; each example is a fork of it that
then runs the script as `python script.py` would (`runpy.run_path` as
`__main__`, its own session, environment, working directory, argv and log file).
The test sees an object with Popen's methods (`pid`, `poll`, `wait`,
`send_signal`, `kill`, `returncode`) and the real exit status, which the server
reports when it reaps the child.

It is only used where it cannot change what is tested: a plain `python
script.py` with no interpreter options, no `PYTHON*` variable of its own and no
other user. It is off when coverage measures the run (`coverage run` sets up
each new interpreter, not forks), and `KIT_FORKSERVER=0` turns it off.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

SERVER = Path(__file__).with_name("_forkserver_main.py")


def enabled() -> bool:
    if os.environ.get("KIT_FORKSERVER", "1") == "0":
        return False
    with contextlib.suppress(ImportError):
        import coverage

        if coverage.Coverage.current() is not None:
            return False
    return not any(name.startswith("COVERAGE_") for name in os.environ)


def eligible(argv: Sequence[str], env: Mapping[str, str], user: str | None) -> bool:
    return (
        user is None
        and len(argv) >= 2
        and argv[0] == sys.executable
        and argv[1].endswith(".py")
        and not argv[1].startswith("-")
        and not any(k.startswith("PYTHON") and k != "PYTHONUNBUFFERED" for k in env)
        and enabled()
    )


class ForkedChild:
    """What subprocess.Popen gives, for a program the fork server started."""

    def __init__(self, args: list[str], connection: socket.socket) -> None:
        self.args = args
        self._connection = connection
        self._file = connection.makefile("r")
        self.pid: int = json.loads(self._file.readline())["pid"]
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def _collect(self, timeout: float) -> None:
        """Read the exit status if it comes within `timeout` s. Safe from several
        threads (a test waits while a watcher thread polls): one reads, all see it."""
        if self.returncode is not None:
            return
        try:
            ready, _, _ = select.select([self._connection], [], [], timeout)
        except (ValueError, OSError):  # another thread read it and closed the socket
            ready = [self._connection]
        if not ready:
            return
        with self._lock:
            if self.returncode is not None:
                return
            line = self._file.readline()
            # The server gone without a word: the child went with it (killed).
            self.returncode = json.loads(line)["exit"] if line else -signal.SIGKILL
            self._file.close()
            self._connection.close()

    def poll(self) -> int | None:
        self._collect(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        # In short slices: a status another thread reads meanwhile ends the wait too.
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self._collect(left)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="kit-forkserver-")
        self.address = os.path.join(self.directory, "socket")
        # Its stdin is a pipe from here: when this process ends, the server sees
        # end-of-file and kills what it started.
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), self.address],
            stdin=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        for _ in range(600):  # the server imports its modules first: up to 30 s on a busy machine
            if os.path.exists(self.address) or self.process.poll() is not None:
                break
            threading.Event().wait(0.05)
        if not os.path.exists(self.address):
            raise RuntimeError(f"the fork server did not start (exit {self.process.poll()})")

    def spawn(
        self,
        argv: list[str],
        env: Mapping[str, str],
        cwd: Path,
        log_path: Path,
        stderr_path: Path | None = None,
    ) -> ForkedChild:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(self.address)
        request = {"argv": argv, "env": dict(env), "cwd": str(cwd), "log": str(log_path)}
        if stderr_path is not None:
            request["stderr"] = str(stderr_path)
        connection.sendall(json.dumps(request).encode() + b"\n")
        return ForkedChild(argv, connection)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(OSError):
            os.unlink(self.address)
            os.rmdir(self.directory)


_server: ForkServer | None = None
_lock = threading.Lock()


def spawn(
    argv: list[str],
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    stderr_path: Path | None = None,
) -> ForkedChild:
    global _server
    with _lock:
        if _server is None or _server.process.poll() is not None:
            _server = ForkServer()
            atexit.register(_server.close)
        server = _server
    return server.spawn(argv, env, cwd, log_path, stderr_path)


def run(
    argv: list[str], *, env: Mapping[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """subprocess.run(argv, capture_output=True, text=True) for a one-shot program,
    forked when `eligible`: stdout and stderr apart, the exit status, the timeout."""
    extra = {k: v for k, v in env.items() if os.environ.get(k) != v}
    if not eligible(argv, extra, None):
        return subprocess.run(
            argv, cwd=cwd, env=dict(env), capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="kit-run-") as directory:
        out, err = Path(directory, "stdout"), Path(directory, "stderr")
        child = spawn(argv, env, cwd, out, err)
        try:
            code = child.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            raise
        read = lambda path: path.read_text(errors="replace") if path.exists() else ""  # noqa: E731
        return subprocess.CompletedProcess(argv, code, read(out), read(err))
