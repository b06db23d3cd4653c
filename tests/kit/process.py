"""The one process runner: start a program, wait until it is ready, stop it.

Examples, third-party daemons (Redis, PostgreSQL, HAProxy, Prometheus...) and the
benchmarks all start through `Process`. Its output goes to a log file, readiness
is a callable polled until true, and `stop()` sends a chosen signal and waits. No
child outlives the test session: every process started is remembered, and
`stop_all()` (called at session end and at interpreter exit) ends what is left.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx
import port_for

from kit import forkserver

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
# Generous for a loaded machine (two CPU hogs, a parallel suite); a healthy start takes < 1 s.
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


class StartupError(RuntimeError):
    pass


@functools.cache
def _good_ports() -> frozenset[int]:
    """Ports outside the ephemeral range, this test worker's share of them.

    Parallel workers (pytest-xdist) each take every Nth port, so two workers never
    pick the same one in the moment between picking it and binding it.
    """
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    return frozenset(p for p in port_for.available_good_ports() if p % count == index % count)


_given: set[int] = set()


def free_port() -> int:
    """A free TCP port on loopback, outside the kernel's ephemeral range.

    Ports the kernel hands out for outgoing connections (32768-60999 on Linux) are
    never chosen, so a server started on this port cannot collide with a client
    socket opened meanwhile. A port is never given twice in one process (it may be
    picked and not yet bound), nor to two parallel workers.
    """
    candidates = set(_good_ports()) - _given
    if len(candidates) < 100:  # a very long run: start over
        _given.clear()
        candidates = set(_good_ports())
    port = port_for.select_random(ports=candidates)
    _given.add(port)
    return port


def free_udp_port() -> int:
    """A free UDP port on loopback, outside the ephemeral range too."""
    for _ in range(100):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    raise StartupError("no free UDP port found")


def wait_until(check: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `check` until it returns something true; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise StartupError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.02)


def port_open(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str) -> Callable[[], bool]:
    """A readiness check: GET `url` answers 2xx."""

    def ready() -> bool:
        try:
            return httpx.get(url, timeout=1).is_success
        except httpx.TransportError:
            return False

    return ready


def http_started(url: str) -> Callable[[], bool]:
    """A readiness check for a service whose dependencies may be down: GET `url` (its
    /health) answers, and not 503 "starting", which every service says until its start-up
    is over (before then, a SIGTERM can be lost: docs/observability/health_checks.md)."""

    def ready() -> bool:
        try:
            response = httpx.get(url, timeout=5)  # its checks may take their own timeouts
        except httpx.TransportError:
            return False
        if response.status_code != 503:
            return True
        try:
            return response.json().get("status") != "starting"
        except ValueError:
            return True

    return ready


def udp_bound(port: int) -> bool:
    """A process listens on 127.0.0.1:port/udp (/proc/net/udp lists the socket once bound)."""
    local = f"0100007F:{port:04X}"
    lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    return any(line.split()[1] == local for line in lines)


def raw_exchange(port: int, payload: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes to a loopback port and read until the server closes or goes quiet."""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def connections_to(pid: int, port: int) -> int:
    """How many TCP connections process `pid` holds to `port` (connection reuse checks)."""
    import psutil  # only the tests that check connection reuse need it

    return sum(
        1
        for conn in psutil.Process(pid).net_connections(kind="tcp")
        if conn.raddr and conn.raddr.port == port
    )


_running: set[Process] = set()


class Process:
    """A program started from argv with its output in a log file.

    `env` is added to this process's environment; `user` runs it as that user
    (PostgreSQL refuses root). Each program gets its own session, so a Ctrl-C in
    the terminal is for pytest alone, and a stop that times out kills the group.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path = ROOT,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.env = dict(env or {})
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self.popen: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"Process({self.name!r}, pid={self.pid})"

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(
        self, ready: Callable[[], object] | None = None, timeout: float = STARTUP_TIMEOUT
    ) -> Process:
        """Start the program; with `ready`, return once it is true (or fail with the log)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        if forkserver.eligible(self.argv, self.env, self.user):
            # A fork of a Python that has imported sanic, pydantic...: see forkserver.py.
            self.popen = forkserver.spawn(self.argv, env, self.cwd, self.log_path)  # type: ignore[assignment]
        else:
            with self.log_path.open("ab") as log:
                self.popen = subprocess.Popen(
                    self.argv,
                    cwd=self.cwd,
                    env=env,
                    user=self.user,
                    group=self.user,
                    extra_groups=[] if self.user else None,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        _running.add(self)
        if ready is not None:

            def check() -> object:
                if not self.alive():
                    raise StartupError(
                        f"{self.name} exited with {self.returncode} before it was ready:\n"
                        f"{self.output()}"
                    )
                return ready()

            try:
                wait_until(check, timeout, f"{self.name} to be ready")
            except StartupError:
                self.kill()
                raise
        return self

    def stop(self, sig: int | None = None, timeout: float = STOP_TIMEOUT) -> int | None:
        """Send `sig` (the program's stop signal by default) and wait for the exit code.

        A program still running after `timeout` seconds is killed, with its whole
        process group, and StartupError names it: a clean stop is part of the contract.
        """
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig or self.stop_signal)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise StartupError(
                    f"{self.name} ignored {signal.Signals(sig or self.stop_signal).name} "
                    f"for {timeout:g}s and was killed. Output:\n{self.output()}"
                ) from None
        _running.discard(self)
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL the program and everything it started (its process group)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        self.popen.wait()
        _running.discard(self)


def stop_all() -> None:
    """End every process still running (the end of a session, or an interrupted run)."""
    for process in list(_running):
        try:
            process.stop(timeout=5)
        except StartupError:
            pass
        finally:
            if process.alive():
                process.kill()
    _running.clear()


atexit.register(stop_all)
